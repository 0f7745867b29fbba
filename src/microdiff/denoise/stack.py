"""``build_denoiser``: the one place where the sampling-time stack is put together.

Every layer takes a denoiser and returns one (``DenoiserWrapper``), so the samplers see one
denoiser whatever the domain, guidance or targets. The order, innermost first, and why:

1. the network (``Denoiser``: time input, preconditioning, x_0 / epsilon conversions);
2. classifier-free guidance (the conditional and null passes as one batch);
3. a class mixture that reaches a volume fraction (``Targets.mixture``): it mixes whole network
   passes, so it sits where the network's windows are, inside any canvas;
4. the domain:
   - an image: its canvas (overlapping windows, a torus; ``canvas.WindowedDenoiser``), then the
     targets' guidance on the whole canvas (a target is a property of the sample, not of a window);
   - a volume: per axis, the targets' guidance on each network call's sections pooled as one
     field, those calls in chunks, the section's canvas; then the planes combined
     (``volume.PlanarVolumeDenoiser``);
5. known pixels (``mask.KnownImage``: inpainting): their gradient, then the projection that puts
   them into x_0, outermost, so the sampler's x_0 holds them exactly;
6. a progress tick per call.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

from .canvas import Canvas, ChunkedDenoiser
from .denoiser import ClassifierFreeGuidance, DenoiserWrapper


@dataclass(frozen=True)
class Planes:
    """How a volume is denoised plane by plane (``volume.PlanarVolumeDenoiser``): ``mode``
    (product | alternate | fuse), the voxels' ``prior`` for ``product`` (a ``VoxelPrior``) and
    ``chunk`` sections (or windows) per network call; ``fractions``: the bright phase's share of
    each volume of the batch (``product`` with a prior's fraction; None: the prior's)."""
    mode: str = "product"
    prior: object = None
    chunk: int = 64
    fractions: tuple[float, ...] | None = None


class Ticking(DenoiserWrapper):
    """The wrapped denoiser, calling ``tick()`` after each call (progress of long samples)."""

    def __init__(self, inner, tick: Callable[[], None]):
        super().__init__(inner)
        self.tick = tick

    def __call__(self, x, t, y):
        out = self.inner(x, t, y)
        self.tick()
        return out


def build_denoiser(denoiser, seeds: Sequence[int], canvas: Canvas, window: int, guidance: float = 1.0,
                   targets=None, planes: Planes | None = None, mask=None, tick: Callable[[], None] | None = None):
    """The stack for one batch of samples with ``seeds`` on ``canvas`` (an image, or with
    ``planes`` a volume), in the order of the module's doc. ``targets``: a ``targets.Targets``;
    ``mask``: a ``mask.KnownImage``; ``window``: the network's training size."""
    out = ClassifierFreeGuidance(denoiser, guidance)
    if targets:
        out = targets.mixture(out)
    if planes is not None:
        out = _volume(out, seeds, canvas, window, targets, planes)
    else:
        out = canvas.wrap(out, seeds, window)
        if targets:
            out = targets.guide(out)
    if mask is not None:
        out = mask.wrap(out)
    return out if tick is None else Ticking(out, tick)


def _volume(inner, seeds: Sequence[int], canvas: Canvas, window: int, targets, planes: Planes):
    """Step 4 for a volume: each axis's sections, seeded per section, as ``Canvas.wrap`` makes them."""
    from ..core.seeding import STREAM_PLANES, derive_seed
    from .volume import PlanarVolumeDenoiser
    per_axis = []
    for axis in range(3):
        n = canvas.shape[axis]
        plane_seeds = [derive_seed(int(s), STREAM_PLANES, axis, j) for s in seeds for j in range(n)]
        steered = targets.guide(inner, pooled=True) if targets else inner     # one field per network call
        per_axis.append(canvas.section(axis).wrap(ChunkedDenoiser(steered, planes.chunk), plane_seeds, window))
    return PlanarVolumeDenoiser(per_axis, planes.mode, prior=planes.prior, fractions=planes.fractions,
                                periodic=canvas.periodic)
