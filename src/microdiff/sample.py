"""Sampling: batching, per-sample seeds, guidance, sharding over processes, and writing
``OUT/<class>/NNNN.{png,npy}``.

Sample i of class c has the seed ``sample_seed(seed, c, i)`` and its own noise generator, so an
image does not depend on the batch size, the process count or the other classes sampled.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch
from torch import Tensor

from .denoiser import ClassifierFreeGuidance, Denoiser, bind_labels
from .diffusion import DEFAULT_SPACING, Diffusion, NoiseSource, get_sampler, respace
from .seeding import sample_seed

__all__ = ["sample_seed", "sampling_diffusion", "inference_denoiser", "sample_images", "generate",
           "write_sample", "sample_to_folder", "SampleResult"]


def sampling_diffusion(diffusion: Diffusion, steps: int, sampler: str) -> Diffusion:
    """The schedule a sampler walks: ``diffusion`` respaced to ``steps`` with the sampler's spacing."""
    if steps == diffusion.num_timesteps:
        return diffusion
    return respace(diffusion, steps, DEFAULT_SPACING[sampler])


def inference_denoiser(net, config, num_classes: int) -> Denoiser:
    """The network in eval mode as a denoiser; bf16 autocast on a CUDA device."""
    net = net.eval()
    param = next(net.parameters())
    autocast = None
    if param.device.type == "cuda":
        autocast = lambda: torch.autocast("cuda", dtype=torch.bfloat16)  # noqa: E731
    return Denoiser.from_config(net, config, num_classes, autocast=autocast, dtype=param.dtype)


@torch.no_grad()
def sample_images(denoiser, labels: Sequence[int], seeds: Sequence[int], shape: Sequence[int], steps: int,
                  sampler: str, guidance: float, batch_size: int, clip_denoised: bool = True,
                  device=None, progress: Callable[[int], None] | None = None) -> Tensor:
    """Images in [0, 1], shape (N, *shape), float32 on the CPU; sample i uses ``seeds[i]`` only."""
    if len(labels) != len(seeds):
        raise ValueError("one seed per label is needed")
    fn = get_sampler(sampler)
    diffusion = sampling_diffusion(denoiser.diffusion, steps, sampler)
    guided = ClassifierFreeGuidance(denoiser, guidance)
    out = []
    for start in range(0, len(labels), batch_size):
        lab = torch.tensor(list(labels[start:start + batch_size]), device=device)
        noise = NoiseSource(seeds[start:start + batch_size])
        x = noise.randn(tuple(shape), device=device)
        x0 = fn(bind_labels(guided, lab), x, diffusion, noise, clip_denoised=clip_denoised)
        out.append(((x0.float().clamp(-1, 1) + 1) / 2).cpu())
        if progress is not None:
            progress(len(lab))
    return torch.cat(out) if out else torch.empty(0, *shape)


def generate(pipe, labels: Sequence[int], seeds: Sequence[int], steps: int, sampler: str, guidance: float,
             batch_size: int | None = None, progress: Callable | None = None, clip_denoised: bool = True) -> Tensor:
    """``sample_images`` for a loaded pipeline (its network, config and class count)."""
    cfg = pipe.microdiff_config
    den = inference_denoiser(pipe.unet, cfg, len(pipe.class_names))
    shape = (cfg.model.image_channels, cfg.model.image_size, cfg.model.image_size)
    return sample_images(den, labels, seeds, shape, steps, sampler, guidance, batch_size or cfg.sample.batch_size,
                         clip_denoised, pipe.unet.device, progress)


def write_sample(out_dir: Path, class_name: str, index: int, image: Tensor) -> list[Path]:
    """``OUT/<class>/NNNN.png`` (8-bit gray, or RGB for 3 channels) and ``NNNN.npy`` (float32 in
    [0, 1], HxW or HxWxC)."""
    from .data.io import save_npy, save_png
    d = Path(out_dir) / class_name
    d.mkdir(parents=True, exist_ok=True)
    arr = image.float().clamp(0, 1).numpy()
    arr = arr[0] if arr.shape[0] == 1 else np.moveaxis(arr, 0, -1)
    files = [d / f"{index:04d}.npy", d / f"{index:04d}.png"]
    save_npy(files[0], arr.astype(np.float32))
    save_png(files[1], arr)
    return files


@dataclass
class SampleResult:
    out_dir: Path
    files: list[Path] = field(default_factory=list)

    @property
    def count(self) -> int:
        """Samples written (each is an .npy and a .png)."""
        return len([f for f in self.files if f.suffix == ".npy"])


def sample_to_folder(pipe, class_names: Sequence[str] | None, num: int, out_dir: str | Path,
                     steps: int | None = None, sampler: str | None = None, guidance: float | None = None,
                     seed: int = 0, batch_size: int | None = None, overwrite: bool = False,
                     show_progress: bool = True) -> SampleResult:
    """Sample ``num`` images of each class of a loaded pipeline (default: all) into ``out_dir``.

    Under torchrun / accelerate (WORLD_SIZE > 1) process r writes the sample numbers r, r + W, ...:
    the same images as one process. Unset sampling settings come from the model's config.
    """
    from .files import check_output_free
    from .launch import distributed_state
    state = distributed_state()
    classes = list(class_names or pipe.class_names)
    for c in classes:
        pipe.class_index(c)
    check_output_free(out_dir, overwrite, "files")
    if state is not None:
        state.wait_for_everyone()          # every process checked the folder before any writes
    s = pipe.microdiff_config.sample
    rank, world = (state.process_index, state.num_processes) if state is not None else (0, 1)
    result = _sample_indices(pipe, classes, range(rank, num, world), Path(out_dir), steps or s.steps,
                             sampler or s.sampler, s.guidance if guidance is None else guidance, seed,
                             batch_size or s.batch_size, show_progress and rank == 0)
    if state is not None:
        state.wait_for_everyone()
    return result


def _sample_indices(pipe, classes: Sequence[str], indices: Sequence[int], out_dir: Path, steps: int,
                    sampler: str, guidance: float, seed: int, batch_size: int, show_progress: bool) -> SampleResult:
    from tqdm.auto import tqdm
    jobs = [(pipe.class_index(c), c, i) for c in classes for i in indices]
    bar = tqdm(total=len(jobs), desc=f"sampling ({sampler}, {steps} steps)", unit="img", disable=not show_progress)
    result = SampleResult(out_dir)
    for start in range(0, len(jobs), batch_size):
        chunk = jobs[start:start + batch_size]
        imgs = generate(pipe, [j[0] for j in chunk], [sample_seed(seed, j[0], j[2]) for j in chunk],
                        steps, sampler, guidance, batch_size=batch_size)
        for (_, name, i), img in zip(chunk, imgs):
            result.files += write_sample(out_dir, name, i, img)
        bar.update(len(chunk))
    bar.close()
    return result
