"""Samples from a loaded pipeline: the sampler walked over the denoiser stack, batch by batch.

Sample i has the seed ``seeds[i]`` and its own noise generator, so an image does not depend on
the batch size, the process count or the other samples drawn beside it.
"""
from __future__ import annotations

from typing import Callable, Iterator, Sequence

import torch
from torch import Tensor

from ..config import SampleConfig
from ..core.checks import check_float, check_int
from ..core.errors import SettingError
from ..core.seeding import candidate_seeds
from ..denoise.canvas import Canvas
from ..denoise.denoiser import bind_labels, inference_denoiser
from ..denoise.layout import canvas_region
from ..denoise.stack import Planes, build_denoiser
from ..diffusion import DEFAULT_SPACING, Diffusion, NoiseSource, get_sampler, respace

__all__ = ["sampling_settings", "sampling_diffusion", "iter_batches", "generate"]


def sampling_settings(config, steps: int | None = None, sampler: str | None = None, guidance: float | None = None,
                      batch_size: int | None = None) -> SampleConfig:
    """The sampling settings: the given ones (checked), else the model's (``config.sample``);
    ``steps`` at most the model's T."""
    from ..config import check_sampler
    if steps is not None:
        check_int("steps", steps, 1, config.diffusion.timesteps, SettingError)
    if sampler is not None:
        sampler = check_sampler("sampler", sampler)
    if guidance is not None:
        check_float("guidance", guidance, 0.0, 100.0, error=SettingError)
    if batch_size is not None:
        check_int("batch_size", batch_size, 1, 10 ** 6, SettingError)
    s = config.sample
    return SampleConfig(sampler=s.sampler if sampler is None else sampler, steps=s.steps if steps is None else steps,
                        guidance=s.guidance if guidance is None else guidance,
                        batch_size=s.batch_size if batch_size is None else batch_size, clip_denoised=s.clip_denoised)


def sampling_diffusion(diffusion: Diffusion, steps: int, sampler: str) -> Diffusion:
    """The schedule a sampler walks: ``diffusion`` respaced to ``steps`` with the sampler's spacing
    (``sampler`` a spec, ``config.SamplerSpec``)."""
    from ..config import SamplerSpec
    if steps == diffusion.num_timesteps:
        return diffusion
    return respace(diffusion, steps, DEFAULT_SPACING[SamplerSpec.parse(sampler).name])


@torch.no_grad()
def iter_batches(denoiser, labels: Sequence, seeds: Sequence[int], shape: Sequence[int], sampling: SampleConfig,
                 build: Callable, device=None, callback: Callable | None = None) -> Iterator[Tensor]:
    """Batches of samples in [0, 1], (n, *shape) float32 on the CPU, ``sampling.batch_size`` at a
    time; ``build(denoiser, seeds)`` is the stack for a batch's seeds (``build_denoiser``);
    ``callback(i, x_t, x0)`` is the sampler's (``diffusion.samplers``), at every step of every batch."""
    if len(labels) != len(seeds):
        raise ValueError("one seed per label is needed")
    fn = get_sampler(sampling.sampler)
    diffusion = sampling_diffusion(denoiser.diffusion, sampling.steps, sampling.sampler)
    for start in range(0, len(labels), sampling.batch_size):
        lab = torch.tensor(list(labels[start:start + sampling.batch_size]), device=device)   # (B,), or (B, 6): layout
        batch_seeds = seeds[start:start + sampling.batch_size]
        noise = NoiseSource(batch_seeds)
        x = noise.randn(tuple(shape), device=device)
        model = build(denoiser, batch_seeds)
        x0 = fn(bind_labels(model, lab), x, diffusion, noise, clip_denoised=sampling.clip_denoised, callback=callback)
        yield ((x0.float().clamp(-1, 1) + 1) / 2).cpu()


def generate(pipe, labels: Sequence, seeds: Sequence[int], sampling: SampleConfig, canvas: Canvas | None = None,
             targets=None, planes: Planes | None = None, mask=None, callback: Callable | None = None,
             tick: Callable[[], None] | None = None, position: Sequence[float] | None = None) -> Tensor:
    """Samples (N, C, *canvas.shape) in [0, 1] of a loaded pipeline; sample i has the class
    ``labels[i]`` (volumes: a class per axis, z, y, x) and depends on ``seeds[i]`` only.

    ``canvas``: default one training window; with ``planes`` the canvas is a volume. ``targets``
    (``targets.Targets``) steer every sample, and with ``targets.candidates`` K > 1 each sample
    is the draw of least ``Targets.penalties`` among K from its seed (``seeding.candidate_seeds``;
    the first on ties). ``mask``: known pixels (``mask.KnownImage``). ``tick()`` is called at
    every denoiser call; ``callback`` is ``iter_batches``'. A layout model's canvas is a whole
    source micrograph, or with ``position`` (row, column; fractions of the source) a canvas at
    the training scale centred there (``layout.canvas_region``)."""
    cfg = pipe.microdiff_config
    den = inference_denoiser(pipe.unet, cfg, len(pipe.class_names))
    window = cfg.model.image_size
    canvas = canvas or Canvas((window, window))
    if cfg.model.layout:
        region = canvas_region(canvas.shape, cfg.model.source_shape, position)
        labels = [(int(k), *region, 0) for k in labels]
    shape = (cfg.model.image_channels, *canvas.shape)

    def build(d, batch_seeds):
        return build_denoiser(d, batch_seeds, canvas, window, sampling.guidance, targets, planes, mask, tick)

    def draw(batch_seeds: Sequence[int]) -> Tensor:
        out = list(iter_batches(den, labels, batch_seeds, shape, sampling, build, pipe.unet.device, callback))
        return torch.cat(out) if out else torch.empty(0, *shape)
    k = targets.candidates if targets else 1
    if k == 1:
        return draw(seeds)
    best, least = None, None
    per_sample = [candidate_seeds(sd, k) for sd in seeds]
    for j in range(k):              # candidate j of every sample; a running best keeps two images per sample
        drawn = draw([c[j] for c in per_sample])
        penalty = targets.penalties(drawn)
        if best is None:
            best, least = drawn, penalty
        else:
            better = penalty < least                     # ties keep the earlier candidate
            best[better], least = drawn[better], torch.where(better, penalty, least)
    return best
