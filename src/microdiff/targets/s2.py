"""A reference micrograph's two-point correlation S2(r) as a target (``s2``)."""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from ..core.errors import SettingError, setting
from ..metrics.registry import get
from ..metrics.segmentation import Segmentation
from .base import Target, hard_phase

S2 = get("s2")


@dataclass(frozen=True)
class TwoPoint(Target):
    """S2(r) of one phase of a reference micrograph (the same size as the samples)."""
    curve: tuple[float, ...] = ()
    source: str = ""
    sha256: str = ""
    tol: float = 0.002
    kind: str = field(default="s2", init=False)

    @classmethod
    def from_image(cls, path, weight: float = 1.0, segment: str = "otsu", phase: int = -1,
                   labels: int = 0) -> "TwoPoint":
        """The S2 of ``phase`` in the reference ``path``: a gray micrograph read by ``segment``, or
        for a phase model of ``labels`` phases a label map of its phase ids."""
        if labels:
            cls(weight, phase=phase, labels=labels).check_common()
            ids = read_label_reference(path, labels)
            curve = S2.hard_form()((ids == phase).astype(np.float64))
            return cls(weight, phase=phase, labels=labels, curve=tuple(float(v) for v in curve), source=str(path),
                       sha256=hashlib.sha256(Path(path).read_bytes()).hexdigest())
        image = read_reference(path, "targets.s2")
        seg = Segmentation.parse(segment)
        ph = phase if phase >= 0 else seg.phases - 1
        curve = hard_s2(image, seg, ph)
        digest = hashlib.sha256(Path(path).read_bytes()).hexdigest()
        return cls(weight, str(seg), phase, curve=tuple(float(v) for v in curve), source=str(path), sha256=digest)

    def check(self, size) -> "TwoPoint":
        self.check_common()
        r = min(size) // 2
        if len(self.curve) != r:
            raise SettingError("targets.s2", self.source, f"its S2 has {len(self.curve)} radii (an image of side "
                               f"{2 * len(self.curve)}), but the samples are {size[1]}x{size[0]} ({r} radii); "
                               f"set {setting('size')} to match the reference, or crop the reference to "
                               f"{size[1]}x{size[0]}")
        return self

    def loss(self, x: Tensor) -> Tensor:
        s2 = S2.soft_form()(self.soft(x))
        ref = torch.tensor(self.curve, dtype=s2.dtype, device=s2.device)
        err2 = (s2 - ref) ** 2
        err2 = err2[:, 1:].mean(dim=1) + err2[:, 0]        # S2(0) = the phase's fraction weighs as all r > 0
        return self.weight * err2 / (2 * self.tol ** 2)

    def measure(self, image: np.ndarray) -> dict:
        return {"rmse": round(self.rmse(image), 6)}

    def rmse(self, image: np.ndarray) -> float:
        s2 = np.asarray(S2.hard_form()(self.hard(image)))
        return float(np.sqrt(np.mean((s2 - np.asarray(self.curve)) ** 2)))

    def penalty(self, image: np.ndarray) -> float:
        """The hard S2's root-mean-square error over all radii (the number ``measure`` reports),
        in the loss's Gaussian form."""
        return self.weight * self.rmse(image) ** 2 / (2 * self.tol ** 2)

    def record(self) -> dict:
        return {"kind": "s2", "image": self.source, "sha256": self.sha256, **self.phase_record(),
                "weight": self.weight}


def hard_s2(image: np.ndarray, seg: Segmentation, phase: int) -> np.ndarray:
    """S2(r) of one phase of a gray image (the registry's ``s2`` of its indicator)."""
    return np.asarray(S2.hard_form()(hard_phase(image, seg, phase)))


def read_reference(path, name: str) -> np.ndarray:
    """A reference micrograph for the target setting ``name``, or one line naming the setting."""
    from ..core.errors import MicrodiffError
    from ..data.io import read_image
    try:
        return read_image(path, allow_rgb=False)
    except MicrodiffError as e:
        reason = getattr(e, "reason", None) or str(e)
        raise SettingError(name, str(path), f"{reason}; give a grayscale micrograph (PNG, TIFF, JPEG, BMP or "
                           "a 2-D .npy) of the samples' size") from None


def read_label_reference(path, phases: int) -> np.ndarray:
    """A reference label map (phase ids) of a phase model with ``phases`` phases, or one line naming the setting."""
    from ..core.errors import MicrodiffError
    from ..data.io import read_labels
    try:
        ids = read_labels(path, phases)
    except MicrodiffError as e:
        reason = getattr(e, "reason", None) or str(e)
        raise SettingError("targets.s2", str(path), f"{reason}; give a label map of this model's phase ids "
                           "(.npy or a label PNG) of the samples' size") from None
    if int(ids.max()) >= phases:
        raise SettingError("targets.s2", str(path), f"it holds phase id {int(ids.max())}; this model has {phases} "
                           f"phases (0..{phases - 1})")
    return ids
