"""``microdiff sample3d``: 3D volumes from a 2D model, every planar section like a class.

The trained 2D denoiser is applied to all sections of a volume normal to one axis at a time
(``denoise.volume.PlanarVolumeDenoiser``, after Micro3Diff's multi-plane denoising): ``product``
(the default) adds the three axes' evidence at every step, beyond what a voxel's own value says
under the voxels' marginal, and rank-maps the result onto the gray levels 2D samples had at that
step (``voxel_marginal``); ``alternate`` turns the axis at every sampler step (a third of the
cost, smeared volumes); ``fuse`` averages the three axes' predictions at every step. Samplers,
classifier-free guidance, windows (sections larger than the training size, periodic volumes)
and per-sample seeding are those of images: volume i has the seed ``seeding.volume_seed(seed,
classes, i)``, and section j normal to axis a its window offsets from ``derive_seed(volume
seed, STREAM_PLANES, a, j)``. Arrays are (Z, Y, X); the files are ``writers.VolumeWriter``'s.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
from torch import Tensor

from ..core.errors import NO_VALUE, SettingError, UsageError, setting
from ..denoise.canvas import Canvas
from ..denoise.stack import Planes
from ..denoise.volume import PhasePrior, VoxelPrior
from .driver import GenerationResult, run_to_folder
from .records import Item, VolumeRun
from .sampling import generate, sampling_diffusion, sampling_settings
from .settings import VolumeSettings, settings_of
from .writers import VolumeWriter

BYTES_PER_VOXEL = 160          # sampler state, sections, window gathers and fusion (see ``memory_estimate``)
NETWORK_BYTES = 1 << 30        # activations of one chunk of windows through the network
CHUNK = 64                     # sections (or windows) per network call unless batch_size says otherwise
MARGINAL_SAMPLES, MARGINAL_BINS = 8, 128
PHASE_MARGINAL_SAMPLES = 64    # a phase model's 2D samples per axis class: the shares its volumes' labels are fixed to
GOLDEN = (5 ** 0.5 - 1) / 2    # scatter_normal: the step of the volumes' quasi-random fraction draws
MAX_LEVELS = 1 << 16           # sorted x0 values kept per step for the rank map (a 256^2 model's 8 samples: 524288)


def memory_estimate(canvas: Canvas, channels: int = 1) -> int:
    """Bytes a volume needs while sampling: BYTES_PER_VOXEL per voxel and channel (the peak
    measured at 64^3 to 128^3 with the cpu preset on the CPU, rounded up) plus the network's chunk."""
    return canvas.voxels * channels * BYTES_PER_VOXEL + NETWORK_BYTES


def check_memory(canvas: Canvas, channels: int, device: str) -> None:
    """Refuse up front a volume that would not fit, with the estimate."""
    import os

    from ..core.launch import available_memory
    share = max(1, int(os.environ.get("LOCAL_WORLD_SIZE", 1)))     # processes on this machine share its memory
    need, have = memory_estimate(canvas, channels), available_memory(device) // share
    if need > have:
        raise SettingError("size", canvas.text(), f"sampling this volume needs about {need / 1e9:.1f} GB but "
                           f"{device} has {have / 1e9:.1f} GB available; choose a smaller size")


def generate_volumes(pipe, classes: Sequence[tuple[int, int, int]], seeds: Sequence[int], canvas: Canvas,
                     sampling, planes: Planes, targets=None, tick: Callable[[], None] | None = None) -> Tensor:
    """Volumes (N, C, Z, Y, X) in [0, 1], one at a time; volume i has the classes ``classes[i]``
    (of the sections normal to z, y, x) and depends on ``seeds[i]`` only. ``targets`` steer each
    network call's sections as one field; a ``product`` without a prior takes ``voxel_marginal``
    of the first volume's classes."""
    if planes.mode == "product" and planes.prior is None:
        planes = dataclasses.replace(planes, prior=voxel_marginal(pipe, classes[0], 0, sampling, targets))
    one = sampling_settings(pipe.microdiff_config, sampling.steps, sampling.sampler, sampling.guidance, 1)
    volumes = generate(pipe, [tuple(c) for c in classes], list(seeds), one, canvas, targets=targets, planes=planes,
                       tick=tick)
    if planes.mode == "product" and isinstance(planes.prior, PhasePrior):
        volumes = label_shares_fixed(volumes, planes.prior.fractions)
    return volumes


def label_shares_fixed(volumes: Tensor, fractions: Tensor, floor: float = 1e-4) -> Tensor:
    """A phase model's finished volumes (N, K, Z, Y, X), probabilities in [0, 1], shifted by one
    log-odds offset per volume and phase so that each phase's share of the arg-max labels is
    ``fractions`` (``denoise.shares.match_label_shares``): during sampling ``phase_product`` fixes
    the shares of the mean probabilities, which the labels a volume is read as do not keep."""
    import torch

    from ..denoise.shares import match_label_shares, phase_probabilities
    logp = match_label_shares(phase_probabilities(volumes.double(), floor).log(), fractions)
    return torch.softmax(logp, dim=1).to(volumes.dtype)


def voxel_marginal(pipe, classes: Sequence[int], seed: int, sampling, targets=None):
    """What ``product`` knows of one voxel (a ``denoise.volume.VoxelPrior``), from
    MARGINAL_SAMPLES 2D samples of the model per distinct axis class, the same sampler and steps,
    seeds derive_seed(seed, STREAM_MARGINAL, class, i), each class counting once per axis that
    uses it: the gray-level marginal it divides out (the histogram of the finished samples,
    MARGINAL_BINS bins over [-1, 1] as bin centres and weights) and the levels it rank-maps onto
    (the sorted x_0 the sampler used at each step, keyed by timestep). The model's own samples
    rather than a Gaussian: a two-phase micrograph's marginal is bimodal, and a Gaussian in its
    place favours the phase farther from the mean. It also holds the bright phase's share of the
    final levels and the samples' S2 of it (radial, periodic), each class weighted as above, from
    which a volume's fraction scatter is predicted (``VoxelPrior.fraction_std``). With ``targets``
    the 2D samples are steered,
    each on its own (the volume's sections are steered per network call as one field: the same
    target, the same strength). ``sampling``: its batch size is the model's."""
    import torch

    from ..core.seeding import STREAM_MARGINAL, derive_seed
    from ..denoise.denoiser import inference_denoiser
    from ..denoise.volume import VoxelPrior, even_ranks
    if pipe.encoding.kind == "phases":
        return phase_marginal(pipe, classes, seed, sampling, targets)
    s = sampling_settings(pipe.microdiff_config, sampling.steps, sampling.sampler, sampling.guidance, None)
    walk = sampling_diffusion(inference_denoiser(pipe.unet, pipe.microdiff_config, len(pipe.class_names)).diffusion,
                              s.steps, s.sampler)
    from ..metrics.descriptors import two_point_radial
    from ..metrics.segmentation import multi_otsu_thresholds
    counts, levels, finished = 0, {}, []
    for c in sorted({int(c) for c in classes}):
        weight = list(classes).count(c)
        seen: dict[int, Tensor] = {}

        def record(i, x_t, x0):                      # every batch of the class adds its samples
            v = x0[:, 0].detach().flatten().float().cpu()
            seen[i] = torch.cat([seen[i], v]) if i in seen else v
        seeds = [derive_seed(int(seed), STREAM_MARGINAL, c, i) for i in range(MARGINAL_SAMPLES)]
        x = generate(pipe, [c] * MARGINAL_SAMPLES, seeds, s, targets=targets, callback=record)[:, 0] * 2 - 1
        counts = counts + weight * torch.histc(x.double(), MARGINAL_BINS, -1.0, 1.0)
        finished.append((weight, (x + 1) / 2))
        for i, v in seen.items():
            t = int(walk.timesteps_at(i, v[:1])[0])
            levels[t] = torch.cat([levels.get(t, v[:0]), v.repeat(weight)])
    edges = torch.linspace(-1, 1, MARGINAL_BINS + 1, dtype=torch.float64)
    final = levels[min(levels)].double()                                 # the finished samples' values
    cut = float(multi_otsu_thresholds(((final + 1) / 2).numpy(), 2)[0]) * 2 - 1
    s2 = sum(w * two_point_radial(x, threshold=(cut + 1) / 2).mean(0) for w, x in finished) / len(classes)
    return VoxelPrior((edges[:-1] + edges[1:]) / 2, counts / counts.sum(),
                      {t: even_ranks(v.sort().values, min(v.numel(), MAX_LEVELS)) for t, v in levels.items()},
                      float((final > cut).double().mean()), s2.double(), cut)


def phase_marginal(pipe, classes: Sequence[int], seed: int, sampling, targets=None):
    """What ``product`` knows of one voxel of a phase model (``denoise.volume.PhasePrior``): the
    phases' shares in the training images of the axes' classes, which the model keeps
    (``data.channels.class_shares``), so that a model whose samples are a few points off its data
    does not pass that on to every volume. A model trained before it kept them: the shares in
    PHASE_MARGINAL_SAMPLES 2D samples per distinct axis class (seeds and class
    weights as ``voxel_marginal``), averaged over their per-phase probabilities. More samples than
    a gray model's marginal: the shares are what every volume's labels are fixed to, and the
    fraction of one training-size sample scatters by several points where the phases' regions
    are large (64 samples: the standard error is an eighth of one sample's spread)."""
    import torch

    from ..core.seeding import STREAM_MARGINAL, derive_seed
    from ..data.channels import class_shares
    from ..data.encoding import probabilities
    from ..denoise.volume import PhasePrior
    shares = class_shares(getattr(pipe, "data_statistics", None), [pipe.class_names[int(c)] for c in classes])
    if shares is not None and not targets:
        return PhasePrior(torch.from_numpy(shares), source="training data")
    s = sampling_settings(pipe.microdiff_config, sampling.steps, sampling.sampler, sampling.guidance, None)
    total = 0
    for c in sorted({int(c) for c in classes}):
        seeds = [derive_seed(int(seed), STREAM_MARGINAL, c, i) for i in range(PHASE_MARGINAL_SAMPLES)]
        x = generate(pipe, [c] * PHASE_MARGINAL_SAMPLES, seeds, s, targets=targets)
        total = total + list(classes).count(c) * probabilities(x.numpy(), axis=1).mean((0, 2, 3))
    return PhasePrior(torch.from_numpy(np.asarray(total / len(classes), dtype=np.float64)))


def product_method(phases: bool = False, from_data: bool = False) -> str:
    """What ``product`` does, recorded so that resuming refuses a folder of volumes made by an
    earlier version of it; ``from_data``: the phases' shares are the training data's."""
    from ..denoise.volume import EVIDENCE, NORMAL_FADE, NORMAL_FLOOR, NORMAL_STD, PHASE_NORMAL_FADE
    fade, floor = (PHASE_NORMAL_FADE, 0.0) if phases else (NORMAL_FADE, NORMAL_FLOOR)
    share = f"s^2 / (s^2 + {fade:g}^2)" if floor <= 0 else f"max({floor:g}, s^2 / (s^2 + {fade:g}^2))"
    smoothing = f"smoothed along each plane's normal (std {NORMAL_STD:g}" + (f" times {share})" if fade > 0 else ")")
    source = "training data" if from_data else "2D samples"
    if phases:
        return f"geometric mean of the planes' phase probabilities, each plane's log p {smoothing}, " \
            f"each phase's share fixed to the {source}' (of the mean probabilities at every step, " \
            "of the arg-max labels at the end)"
    centred = ", fractions centred on the training data's" if from_data else ""
    return f"evidence {EVIDENCE:g}, {smoothing}, rank-mapped onto 2D levels per step{centred}, " \
        "drawn fractions quasi-random by volume index"


def volume_axes(pipe, s: VolumeSettings) -> tuple[str, str, str]:
    """(CX, CY, CZ): ``class_name`` for all three, or ``axes``; every class checked against the model."""
    if s.axes is not None:
        names = tuple(s.axes)
    elif s.class_name is not None:
        names = (s.class_name,) * 3
    elif len(pipe.class_names) == 1:
        names = (pipe.class_names[0],) * 3
    else:
        raise SettingError("class_name", NO_VALUE, f"choose the class (one of: {', '.join(pipe.class_names)}) or the "
                           "classes per axis CX,CY,CZ")
    for c in names:
        pipe.class_index(c)
    return names


def volume_run(pipe, s: VolumeSettings, targets: dict | None = None) -> VolumeRun:
    """The settings of a 3D run, checked against the model (the volume is refused here if it
    would not fit in the device's memory)."""
    cfg = pipe.microdiff_config
    phases = pipe.encoding.kind == "phases"
    if pipe.encoding.kind == "rgb":
        raise UsageError("volumes are made by gray or phase models; this model reads colour (RGB) images")
    if cfg.model.layout:
        raise UsageError("this model places its images in a source micrograph (model.layout), a plane with a top "
                         "and a bottom; volumes are built from stationary sections: train a model without --layout")
    if phases and s.segment:
        raise SettingError("segment", s.segment, f"this model makes label volumes of {pipe.encoding.phases} phases "
                           "itself; leave it out (it splits the gray volumes of gray models)")
    if phases and (s.fractions == "scatter" or s.targets):
        raise SettingError("fractions" if s.fractions == "scatter" else "targets", s.fractions or "vf",
                           "volumes of a phase model take the phases' shares of its 2D samples (representative); "
                           "drawn fractions and volume-fraction targets are for gray models")
    if s.abaqus and not (s.segment or phases):
        raise SettingError("abaqus", True, f"an Abaqus mesh holds phases: give {setting('segment')} too")
    sampling = sampling_settings(cfg, s.steps, s.sampler, s.guidance, 1)
    canvas = Canvas.of(s.size, cfg.model.image_size, 3, s.periodic, s.overlap)
    check_memory(canvas, cfg.model.image_channels, str(pipe.unet.device))
    from_data = getattr(pipe, "data_statistics", None) is not None and not targets
    method = product_method(bool(phases), from_data) if s.planes == "product" else ""
    return VolumeRun(volume_axes(pipe, s), s.num, s.seed, sampling.sampler, sampling.steps, sampling.guidance,
                     canvas.shape, canvas.periodic, canvas.overlap, s.planes, s.segment or "", pipe.fingerprint(),
                     str(getattr(pipe, "model_dir", "")), targets, method, s.abaqus,
                     "representative" if phases else s.fraction_mode)


class VolumeProducer:
    """One volume per call, its progress ticked per denoiser call; a ``product`` without a prior
    takes ``voxel_marginal`` of the run's classes and seed at the first call (so a run whose
    volumes are all complete makes none)."""
    batch_size = 1

    def __init__(self, pipe, run: VolumeRun, targets, planes: Planes):
        self.pipe, self.run, self.targets, self.planes = pipe, run, targets, planes
        self.sampling = sampling_settings(pipe.microdiff_config, run.steps, run.sampler, run.guidance, 1)
        self.units = run.steps
        self.label = f"volumes ({run.canvas.text()}, {run.sampler}, {run.steps} steps)"
        self.std: float | None = None
        self.center: tuple[float, str] | None = None   # the class's bright fraction and where it is from

    def prepare(self) -> None:
        """Before the first volume (untimed): the voxels' prior for ``product``, the class's bright
        fraction (``class_fraction``), and with scatter the fraction's predicted standard deviation
        (also for a prior given in advance)."""
        if self.planes.mode == "product" and self.planes.prior is None:
            prior = voxel_marginal(self.pipe, self.run.class_indices(self.pipe), self.run.seed, self.sampling,
                                   self.targets)
            self.planes = dataclasses.replace(self.planes, prior=prior)
        prior = self.planes.prior
        if self.center is None and isinstance(prior, VoxelPrior) and prior.fraction is not None:
            self.center = self.class_fraction(prior)
        if self.run.fractions == "scatter" and self.std is None and isinstance(prior, VoxelPrior):
            self.std = prior.fraction_std(self.run.canvas.shape)

    def class_fraction(self, prior: VoxelPrior) -> tuple[float, str]:
        """The bright phase's share that volumes are centred on: that of the training images of the
        axes' classes above the 2D samples' Otsu cut, which the model keeps
        (``data.channels.share_above``), so that a model whose samples are a few points off its data
        does not pass that on to every volume; the 2D samples' own share for a model trained before
        it kept them, or where a volume-fraction target sets the fraction."""
        from ..data.channels import share_above
        names = [self.pipe.class_names[c] for c in self.run.class_indices(self.pipe)]
        data = None if self.targets or prior.cut is None else \
            share_above(getattr(self.pipe, "data_statistics", None), names, (prior.cut + 1) / 2)
        if data is None:
            return prior.fraction, "2D samples"
        return float(np.clip(data, 0.005, 0.995)), "training data"

    def __call__(self, items: Sequence[Item], tick: Callable[[], None]) -> Tensor:
        self.prepare()
        planes = self.planes
        if self.run.fractions == "scatter":
            planes = dataclasses.replace(planes, fractions=tuple(self.fraction(it) for it in items))
        elif self.center is not None and self.center[0] != planes.prior.fraction:
            planes = dataclasses.replace(planes, fractions=(self.center[0],) * len(items))
        return generate_volumes(self.pipe, [it.label for it in items], [it.seed for it in items], self.run.canvas,
                                self.sampling, planes, self.targets, tick)

    def fraction(self, item: Item) -> float:
        """The bright phase's share drawn for a volume: the class's, plus the predicted scatter of
        volumes of this shape times the volume's normal number (``scatter_normal`` of the run's
        seed and the volume's index)."""
        z = scatter_normal(self.run.seed, item.index)
        return float(np.clip(self.center[0] + self.std * z, 0.005, 0.995))

    def annotate(self, item: Item, volume: Tensor, seconds: float) -> dict:
        out: dict = {"seconds": round(seconds, 2)}
        if isinstance(self.planes.prior, PhasePrior):
            prior = self.planes.prior
            out["phase_prior"] = {"from": prior.source, "fractions": [round(float(f), 6) for f in prior.fractions]}
            if prior.source == "2D samples":
                out["phase_prior"]["samples_per_axis"] = PHASE_MARGINAL_SAMPLES
        elif self.planes.prior is not None:
            from ..denoise.volume import EVIDENCE
            prior = self.planes.prior
            out["voxel_marginal"] = {"samples_per_axis": MARGINAL_SAMPLES, "bins": MARGINAL_BINS,
                                     "rank_mapped_steps": len(prior.levels), "evidence": round(EVIDENCE, 6),
                                     "bright_fraction": round(prior.fraction, 6)}
            if self.center is not None:
                out["class_fraction"] = {"value": round(self.center[0], 6), "from": self.center[1]}
            if self.run.fractions == "scatter":
                out["fraction"] = {"mode": "scatter", "drawn": round(self.fraction(item), 6),
                                   "predicted_std": round(self.std, 6),
                                   "cut": round((prior.cut + 1) / 2, 6)}
        if self.targets:
            out["targets"] = self.targets.measure(volume.numpy())
        return out


def scatter_normal(run_seed: int, index: int) -> float:
    """Volume ``index``'s normal number for its drawn fraction: z = Phi^-1(u), u = frac(u_0 +
    (index + 1/2) g) with g = (sqrt 5 - 1) / 2 (the golden-ratio Kronecker sequence) and u_0
    uniform from the run's seed (``STREAM_FRACTION``). Quasi-random rather than independent
    draws so that a handful of volumes already shows the spread they are meant to: every run of
    consecutive volumes covers the normal evenly, so the sample standard deviation of 8 of them
    stays close to 1 whatever u_0, where that of 8 independent ones often misses by a third
    (BENCHMARKS.md, "Real micro-CT"). Each volume's
    number still depends on the run's seed and its own index only, not on the count, the batch
    or the process that makes it."""
    from statistics import NormalDist

    from ..core.seeding import STREAM_FRACTION, derive_seed
    u0 = derive_seed(int(run_seed), STREAM_FRACTION) / 2.0 ** 63
    u = (u0 + (int(index) + 0.5) * GOLDEN) % 1.0
    return NormalDist().inv_cdf(min(max(u, 1e-9), 1 - 1e-9))


def sample3d_to_folder(pipe, out_dir: str | Path, settings: VolumeSettings | None = None, overwrite: bool = False,
                       resume: bool = False, show_progress: bool = True, **fields) -> GenerationResult:
    """``settings.num`` volumes into ``out_dir`` (``OUT/NNNN/``, ``writers.VolumeWriter``), or
    the settings' fields as keywords. ``resume`` keeps complete volumes and makes the rest
    exactly as an uninterrupted run would; several processes share the volumes out."""
    s = settings_of(VolumeSettings, settings, fields)
    goal = None
    if s.targets:
        from ..targets import make_targets
        goal = make_targets(s.targets, s.strength, None, segment=s.segment)
        other = sorted({t.kind for t in goal.items} - {"vf"})
        if other or goal.candidates > 1 or goal.mixed() is not None:
            what = ", ".join(other) or ("candidates" if goal.candidates > 1 else "a class mixture")
            raise SettingError("targets", NO_VALUE, f"volumes are steered to a volume fraction (vf) only, not {what}")
    chunk = s.batch_size or CHUNK
    run = volume_run(pipe, s, {**goal.record(), "pooled_sections": chunk} if goal else None)
    producer = VolumeProducer(pipe, run, goal, Planes(s.planes, None, chunk))
    writer = VolumeWriter(run.segment, run.abaqus, pipe.encoding)
    return run_to_folder(pipe, run, Path(out_dir), producer, writer, overwrite, resume, show_progress)
