"""Known pixels of an image kept while the rest is generated (inpainting, outpainting).

Method (MCG, Chung et al. 2022: a gradient step and a projection at every step): the gradient
of the known pixels' error of the predicted x_0 steers x_t (``guidance.GradientGuidance``,
strength ``consistency``), then the predicted x_0 is replaced by the image where it is known
and epsilon made consistent with it (``MaskedDenoiser``, a data-consistency projection as in
DDNM). It works with every sampler at its normal step count; the projection alone leaves seams
at the mask edge, which the gradient removes (BENCHMARKS.md). RePaint's resampling would need
about ten times the steps and the ancestral sampler.
"""
from __future__ import annotations

import torch
from torch import Tensor

from .denoiser import DenoiserOutput, DenoiserWrapper


class MaskedDenoiser(DenoiserWrapper):
    """Known pixels kept: x_0 = known where ``mask`` is 0 (known), the prediction where it is 1
    (generate); epsilon is recomputed from that x_0 so the sampler's x_t stays consistent."""

    def __init__(self, inner, known: Tensor, mask: Tensor):
        super().__init__(inner)
        self.known, self.mask = known, mask                 # (B or 1, C, H, W), known in [-1, 1]

    def __call__(self, x: Tensor, t: Tensor, y: Tensor) -> DenoiserOutput:
        out = self.inner(x, t, y)
        m = self.mask.to(x.device, x.dtype)
        x0 = m * out.x0 + (1 - m) * self.known.to(x.device, x.dtype)
        return self.output_from_x0(x, t, x0, out.v)


class KnownImage:
    """An image whose pixels outside ``generate`` are known: ``image`` (H, W) or (C, H, W) in
    [0, 1] as read (a phase model's: the one-hot phases, so known labels stay exact),
    ``generate`` (H, W) boolean (True = generate), ``consistency`` the strength of the known
    pixels' gradient (0: the projection alone)."""

    def __init__(self, image: Tensor, generate: Tensor, consistency: float = 30.0):
        image = image.to(torch.float32)
        self.original = image[None, None] if image.ndim == 2 else image[None]
        self.mask = generate.to(torch.float32)[None, None]
        self.known = self.original * 2 - 1
        self.consistency = float(consistency)

    def error(self, x0: Tensor) -> Tensor:
        """The known pixels' squared error of a predicted x_0 in [-1, 1], per sample."""
        return (((x0 - self.known.to(x0.device)) ** 2) * (1 - self.mask.to(x0.device))).sum((1, 2, 3))

    def wrap(self, inner):
        """The stack's outermost layer: gradient of the known pixels' error, then their projection."""
        from .guidance import GradientGuidance
        return MaskedDenoiser(GradientGuidance(inner, self.error, self.consistency), self.known, self.mask)

    def keep(self, images: Tensor) -> Tensor:
        """Finished images (N, C, H, W) in [0, 1] with the known pixels exactly as read."""
        return torch.where(self.mask.bool(), images, self.original)
