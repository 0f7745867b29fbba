"""What every target shares: the phase it reads and its soft and hard indicators.

A target is a small frozen object with a differentiable ``loss`` of the predicted field x in
[0, 1], shape (B, H, W) (or (B, Z, Y, X)), and a ``measure`` of a finished image by the hard
descriptor (the number a user checks; ``metrics.registry``). The losses are Gaussian
log-likelihoods -log p(target | x_0) with a tolerance ``tol``: L = weight * d(x)^2 / (2 tol^2),
so the guidance strength 1 is the posterior score of a measurement with that noise. A phase's
soft indicator is m = sigmoid((x - t) / TEMPERATURE) between the segmentation's thresholds t
(computed on the detached x_0 by the same method that labels the finished sample).

On a phase model (``labels`` = K phases, one-hot channels) no segmentation is involved: the field
is the K phases' probabilities (B, K, H, W) (``denoise.shares.phase_probabilities``), the soft indicator of
phase k is its probability and the hard one the arg-max label, as the written label maps have it.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from ..core.checks import check_float
from ..core.errors import NO_VALUE, SettingError, setting
from ..metrics.segmentation import Segmentation

TEMPERATURE = 0.02          # width of the soft phase boundary, in gray levels of [0, 1]


def soft_phase(x: Tensor, seg: Segmentation, phase: int) -> Tensor:
    """Soft indicator of phase ``phase`` (B, H, W) or (B, Z, Y, X): the segmentation's thresholds
    per image or volume (on the detached field), each crossed by a sigmoid of width TEMPERATURE."""
    xd = x.detach().cpu().double().numpy()
    ts = torch.tensor(np.stack([seg.thresholds_for(np.clip(im, 0, 1)) for im in xd]), dtype=x.dtype, device=x.device)
    ts = ts.view(*ts.shape, *[1] * (x.ndim - 1))
    above = torch.sigmoid((x[:, None] - ts) / TEMPERATURE)                        # (B, K-1, H, W)
    ones, zeros = torch.ones_like(x[:, None]), torch.zeros_like(x[:, None])
    levels = torch.cat([ones, above, zeros], dim=1)                                # P(x above t_{k-1}), k = 0..K
    return levels[:, phase] - levels[:, phase + 1]


def hard_phase(image: np.ndarray, seg: Segmentation, phase: int) -> np.ndarray:
    labels, _ = seg.labels(np.clip(image, 0, 1))
    return (labels == phase).astype(np.float64)


@dataclass(frozen=True)
class Target:
    """Shared fields: the weight of this target's loss and the segmentation it reads phases with."""
    weight: float = 1.0
    segment: str = "otsu"
    phase: int = -1                         # -1: the brightest phase
    labels: int = 0                         # a phase model's K phases (0: a gray model, read by ``segment``)

    def seg(self) -> Segmentation:
        return Segmentation.parse(self.segment)

    def phase_index(self) -> int:
        if self.labels:
            return self.phase
        return self.phase if self.phase >= 0 else self.seg().phases - 1

    def soft(self, x: Tensor) -> Tensor:
        """The soft indicator of the phase: of a gray field x in [0, 1] (B, H, W) or (B, Z, Y, X),
        or on a phase model its probability in x = the phases' probabilities (B, K, H, W)."""
        return x[:, self.phase] if self.labels else soft_phase(x, self.seg(), self.phase_index())

    def hard(self, image: np.ndarray) -> np.ndarray:
        """The phase's indicator (float64) in a finished image: gray in [0, 1], or on a phase model
        its probabilities (K, H, W), read as the arg-max labels."""
        if self.labels:
            return (np.asarray(image).argmax(0) == self.phase).astype(np.float64)
        return hard_phase(image, self.seg(), self.phase_index())

    def phase_record(self) -> dict:
        """How the record names the phase: with its segmentation, or as a phase id of the model."""
        if self.labels:
            return {"phase": self.phase, "phases": self.labels}
        return {"phase": self.phase_index(), "segment": self.segment}

    def check_common(self) -> None:
        check_float("targets.weights", self.weight, 0.0, 1e6, error=SettingError)
        if self.labels:
            if not 0 <= self.phase < self.labels:
                raise SettingError("targets.phase", self.phase if self.phase >= 0 else NO_VALUE,
                                   f"this model makes label maps of {self.labels} phases: say which phase "
                                   f"0..{self.labels - 1} the target is of ({setting('targets.phase')})")
            return
        if not -1 <= self.phase < self.seg().phases:
            raise SettingError("targets.phase", self.phase, f"the segmentation {self.segment} has phases "
                               f"0..{self.seg().phases - 1}")
