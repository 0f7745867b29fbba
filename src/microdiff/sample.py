"""Sampling: batching, per-sample seeds, guidance, and writing ``OUT/<class>/NNNN.{png,npy}``."""
from __future__ import annotations

from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch
from torch import Tensor

from .diffusion import DEFAULT_SPACING, Diffusion, NoiseSource, classifier_free_guidance, get_sampler, respace
from .model import unet_forward
from .seeding import derive_seed


def sample_seed(seed: int, class_index: int, index: int) -> int:
    """The seed of sample ``index`` of a class: independent of batch size, process count and of
    which other classes are sampled in the same run."""
    return derive_seed(seed, class_index, index)


def sampling_diffusion(config, steps: int, spacing: str = "uniform") -> Diffusion:
    base = Diffusion.from_config(config.diffusion.schedule, config.diffusion.timesteps)
    return base if steps == base.num_timesteps else respace(base, steps, spacing)


@torch.no_grad()
def generate(pipe, labels: Sequence[int], seeds: Sequence[int], steps: int, sampler: str,
             guidance: float, batch_size: int | None = None, progress: Callable | None = None,
             clip_denoised: bool = True) -> Tensor:
    """Images in [0, 1], shape (N, C, H, W), float32 on the CPU; sample i uses ``seeds[i]`` only."""
    cfg = pipe.microdiff_config
    if len(labels) != len(seeds):
        raise ValueError("one seed per label is needed")
    fn = get_sampler(sampler)
    diff = sampling_diffusion(cfg, steps, DEFAULT_SPACING[sampler])
    unet = pipe.unet.eval()
    device = unet.device
    dtype = unet.dtype
    bs = batch_size or cfg.sample.batch_size
    shape = (cfg.model.image_channels, cfg.model.image_size, cfg.model.image_size)
    null = len(pipe.class_names)
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda" else _nullctx()

    base_acp = Diffusion.from_config(cfg.diffusion.schedule, cfg.diffusion.timesteps).alphas_cumprod
    scale = cfg.diffusion.timesteps / 1000.0

    def net(x, tau, y):
        acp = base_acp[torch.round(tau.detach().cpu().double() * scale).long()]
        with autocast:
            return unet_forward(unet, x.to(dtype), tau, y, acp, cfg.model.eps_skip_sigma).float()

    out = []
    for start in range(0, len(labels), bs):
        lab = torch.tensor(list(labels[start:start + bs]), device=device)
        noise = NoiseSource(seeds[start:start + bs])
        x = noise.randn(shape, device=device)
        model = classifier_free_guidance(net, lab, null, guidance, cfg.model.image_channels)
        x0 = fn(model, x, diff, noise, clip_denoised=clip_denoised)
        out.append(((x0.float().clamp(-1, 1) + 1) / 2).cpu())
        if progress is not None:
            progress(len(lab))
    return torch.cat(out) if out else torch.empty(0, *shape)


class _nullctx:
    def __enter__(self):
        return None

    def __exit__(self, *a):
        return False


def write_sample(out_dir: Path, class_name: str, index: int, image: Tensor) -> None:
    """``OUT/<class>/NNNN.png`` (8-bit gray, or RGB for 3 channels) and ``NNNN.npy`` (float32 in [0, 1], HxW or HxWxC)."""
    from .data.io import save_png
    d = out_dir / class_name
    d.mkdir(parents=True, exist_ok=True)
    arr = image.float().clamp(0, 1).numpy()
    arr = arr[0] if arr.shape[0] == 1 else np.moveaxis(arr, 0, -1)
    np.save(d / f"{index:04d}.npy", arr.astype(np.float32))
    save_png(d / f"{index:04d}.png", arr)


def sample_to_folder(pipe, class_names: Sequence[str], num: int, out_dir: Path, steps: int,
                     sampler: str, guidance: float, seed: int, batch_size: int | None = None,
                     indices: Sequence[int] | None = None, show_progress: bool = True) -> int:
    """Sample ``num`` images of each class into ``out_dir``; ``indices`` restricts to a subset of
    sample numbers (sharding over processes). Returns the number written."""
    from tqdm.auto import tqdm
    jobs = [(pipe.class_index(c), c, i) for c in class_names for i in (indices if indices is not None else range(num))]
    bar = tqdm(total=len(jobs), desc=f"sampling ({sampler}, {steps} steps)", unit="img",
               disable=not show_progress)
    bs = batch_size or pipe.microdiff_config.sample.batch_size
    written = 0
    for start in range(0, len(jobs), bs):
        chunk = jobs[start:start + bs]
        imgs = generate(pipe, [j[0] for j in chunk], [sample_seed(seed, j[0], j[2]) for j in chunk],
                        steps, sampler, guidance, batch_size=bs)
        for (ci, name, i), img in zip(chunk, imgs):
            write_sample(out_dir, name, i, img)
            written += 1
        bar.update(len(chunk))
    bar.close()
    return written
