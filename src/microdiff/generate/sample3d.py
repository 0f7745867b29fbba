"""3D volumes from a 2D model (``microdiff sample3d``): every planar section looks like a class.

The trained 2D denoiser is applied to all sections of a volume normal to one axis at a time
(``domains.PlanarVolumeDenoiser``, after Micro3Diff's multi-plane denoising): ``product`` (the
default) adds the three axes' evidence at every step, beyond what a voxel's own value says
under the voxels' marginal, and rank-maps the result onto the gray levels 2D samples had at that
step (``voxel_marginal``: 2D samples of the model, a ``domains.VoxelPrior``); ``alternate`` turns the
axis at every sampler step (a third of the cost, smeared volumes); ``fuse`` averages the three
axes' predictions at every step. The samplers, classifier-free guidance, window machinery (sections
larger than the training size, periodic volumes) and per-sample seeding are those of 2D
sampling: volume i has the seed ``seeding.volume_seed(seed, classes, i)``, and section j normal
to axis a its window offsets from ``derive_seed(volume seed, STREAM_PLANES, a, j)``.

Arrays are (Z, Y, X); ``--size`` is "S" (a cube) or "XxYxZ"; the classes per axis are given as
``--axes CX,CY,CZ`` (the class of the sections normal to x, y and z).

Each volume is a folder ``OUT/NNNN/``: ``volume.npy`` (float32 in [0, 1]), ``volume.tif`` (a
multi-page TIFF stack, ImageJ/Fiji hyperstack metadata), ``volume.vti`` (VTK image data, one
cell per voxel, for ParaView), with ``--segment`` the phase labels ``labels.{npy,tif,vti}``
(uint8), ``slices.png`` (the three mid-planes) and ``volume.json`` (how it was made; written
last, so a volume is complete when its JSON exists). ``OUT/sample3d.json`` records the run.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
from torch import Tensor

from ..core.checks import check_float, check_int
from ..core.errors import UsageError
from .sample import RunSettings

VOLUME_JSON = "volume.json"
RUN_JSON = "sample3d.json"
BYTES_PER_VOXEL = 160          # sampler state, sections, window gathers and fusion (see ``memory_estimate``)
NETWORK_BYTES = 1 << 30        # activations of one chunk of windows through the network


@dataclass(frozen=True)
class VolumeShape:
    """A volume of ``depth`` x ``height`` x ``width`` voxels (Z, Y, X), each at least the training
    window; a 3-torus when ``periodic``. Sections larger than the window are denoised as
    overlapping windows (``overlap``: their minimum overlap, a fraction of the window)."""
    depth: int
    height: int
    width: int
    periodic: bool = False
    overlap: float = 0.2

    @classmethod
    def of(cls, size, window: int, periodic: bool = False, overlap: float = 0.2) -> "VolumeShape":
        """``size``: None (a cube of the window), an int (a cube), (Z, Y, X), or "S" / "XxYxZ"."""
        if size is None:
            z = y = x = window
        elif isinstance(size, str):
            z, y, x = parse_volume_size(size)
        elif isinstance(size, int):
            z = y = x = size
        else:
            z, y, x = (int(v) for v in size)
        for name, v in (("x", x), ("y", y), ("z", z)):
            if v < window:
                raise UsageError(f"--size: {name} = {v} is below the model's training size {window}; every side "
                                 f"must be at least {window} voxels")
            check_int(f"--size ({name})", v, window, 4096, UsageError)
        check_float("--overlap", overlap, 0.0, 0.9, error=UsageError)
        return cls(z, y, x, bool(periodic), float(overlap))

    @property
    def shape(self) -> tuple[int, int, int]:
        return self.depth, self.height, self.width

    @property
    def voxels(self) -> int:
        return self.depth * self.height * self.width

    def section(self, axis: int) -> tuple[int, int]:
        """(height, width) of the sections normal to array axis ``axis``."""
        return tuple(n for k, n in enumerate(self.shape) if k != axis)

    def text(self) -> str:
        return f"{self.width}x{self.height}x{self.depth}"


def parse_volume_size(text: str) -> tuple[int, int, int]:
    """(Z, Y, X) of "S" or "XxYxZ"."""
    parts = str(text).lower().replace(" ", "").split("x")
    try:
        nums = [int(p) for p in parts]
    except ValueError:
        nums = []
    if len(nums) == 1:
        return nums[0], nums[0], nums[0]
    if len(nums) == 3:
        return nums[2], nums[1], nums[0]
    raise UsageError(f"--size {text!r}: expected a cube side in voxels (64) or XxYxZ (96x64x64)")


def memory_estimate(shape: VolumeShape, channels: int = 1) -> int:
    """Bytes a volume needs while sampling: ~160 bytes per voxel and channel (measured peak
    at 64^3 to 128^3 with the cpu preset on the CPU, rounded up) plus the network's chunk."""
    return shape.voxels * channels * BYTES_PER_VOXEL + NETWORK_BYTES


def check_memory(shape: VolumeShape, channels: int, device: str) -> None:
    """Refuse up front a volume that would not fit, with the estimate."""
    from ..core.launch import available_memory
    need, have = memory_estimate(shape, channels), available_memory(device)
    if need > have:
        raise UsageError(f"--size {shape.text()}: sampling this volume needs about {need / 1e9:.1f} GB but "
                         f"{device} has {have / 1e9:.1f} GB available; choose a smaller --size")


def plane_denoisers(denoiser, shape: VolumeShape, seeds: Sequence[int], window: int, chunk: int = 64,
                    targets=None) -> list:
    """The 2D denoiser on the sections normal to z, y and x of a batch of volumes with ``seeds``:
    windows and tori as ``sample.Canvas`` makes them, seeded per section; with ``targets`` the
    sections (or windows) of each network call, ``chunk`` of them, are steered as one field
    (``Targets.guide(pooled=True)``): for a cube of the training size and the default chunk 64,
    all of an axis's sections together; in larger volumes or with smaller chunks, slabs of the
    volume (so the chunk is recorded with the targets). Section by section, every section's own
    fraction would be pinned to the target and stripe the volume (measured)."""
    from ..denoise.domains import ChunkedDenoiser
    from .sample import Canvas
    from ..core.seeding import STREAM_PLANES, derive_seed
    out = []
    for axis in range(3):
        h, w = shape.section(axis)
        n = shape.shape[axis]
        canvas = Canvas(h, w, shape.periodic, shape.overlap)
        plane_seeds = [derive_seed(int(s), STREAM_PLANES, axis, j) for s in seeds for j in range(n)]
        inner = denoiser if targets is None else targets.guide(denoiser, pooled=True)   # one field per chunk
        out.append(canvas.wrap(ChunkedDenoiser(inner, chunk), plane_seeds, window))
    return out


def generate_volumes(pipe, classes: Sequence[tuple[int, int, int]], seeds: Sequence[int], shape: VolumeShape,
                     steps: int | None = None, sampler: str | None = None, guidance: float | None = None,
                     planes: str = "product", progress: Callable[[], None] | None = None,
                     targets=None, chunk: int = 64, prior=None) -> Tensor:
    """Volumes (N, C, Z, Y, X) in [0, 1] for a loaded pipeline, one at a time; volume i has the
    classes ``classes[i]`` (for the sections normal to z, y, x) and depends on ``seeds[i]`` only.
    ``progress()`` is called at every denoiser call; ``targets`` steer each chunk of sections as
    one field (``plane_denoisers``) and the product's prior comes from steered 2D samples;
    ``chunk`` sections (or windows) go through the network per call; ``prior``: the voxels'
    marginal for ``planes="product"`` (default: ``voxel_marginal`` of the first volume's classes)."""
    from ..denoise.domains import PlanarVolumeDenoiser
    from .sample import inference_denoiser, resolve_settings, sample_images
    cfg = pipe.microdiff_config
    s = resolve_settings(cfg, steps, sampler, guidance, 1)
    den = inference_denoiser(pipe.unet, cfg, len(pipe.class_names))
    window = cfg.model.image_size
    if planes == "product" and prior is None:
        prior = voxel_marginal(pipe, classes[0], 0, s.steps, s.sampler, s.guidance, targets)

    def wrap(guided, batch_seeds):
        vol = PlanarVolumeDenoiser(plane_denoisers(guided, shape, batch_seeds, window, chunk, targets), planes,
                                   prior=prior)
        return vol if progress is None else _Ticking(vol, progress)
    return sample_images(den, [tuple(c) for c in classes], list(seeds), (cfg.model.image_channels, *shape.shape),
                         s.steps, s.sampler, s.guidance, 1, cfg.sample.clip_denoised, pipe.unet.device, wrap=wrap)


MARGINAL_SAMPLES, MARGINAL_BINS = 8, 128
MAX_LEVELS = 1 << 16           # sorted x0 values kept per step for the rank map (a 256^2 model's 8 samples: 524288)


def voxel_marginal(pipe, classes: Sequence[int], seed: int, steps: int | None = None, sampler: str | None = None,
                   guidance: float | None = None, targets=None):
    """What ``--planes product`` knows of one voxel (a ``domains.VoxelPrior``), from
    MARGINAL_SAMPLES 2D samples of the model per distinct axis class, the same sampler and steps,
    seeds derive_seed(seed, STREAM_MARGINAL, class, i), each class counting once per axis that
    uses it: the gray-level marginal it divides out (the histogram of the finished samples,
    MARGINAL_BINS bins over [-1, 1] as bin centres and weights) and the levels it rank-maps onto
    (the sorted x_0 the sampler used at each step, keyed by timestep). The model's own samples
    rather than a Gaussian: a two-phase micrograph's marginal is bimodal, and a Gaussian in its
    place favours the phase farther from the mean (measured: +9 points of the bright phase).
    With ``targets`` the 2D samples are steered, each on its own (the volume's sections are
    steered per chunk as one field: the same target, the same strength)."""
    import torch

    from ..denoise.domains import VoxelPrior, even_ranks
    from .sample import generate, inference_denoiser, resolve_settings, sampling_diffusion
    from ..core.seeding import STREAM_MARGINAL, derive_seed
    cfg = pipe.microdiff_config
    s = resolve_settings(cfg, steps, sampler, guidance, None)
    walk = sampling_diffusion(inference_denoiser(pipe.unet, cfg, len(pipe.class_names)).diffusion, s.steps, s.sampler)
    counts, levels = 0, {}
    for c in sorted({int(c) for c in classes}):
        weight = list(classes).count(c)
        seen: dict[int, Tensor] = {}

        def record(i, x_t, x0):                      # every batch of the class adds its samples
            v = x0[:, 0].detach().flatten().float().cpu()
            seen[i] = torch.cat([seen[i], v]) if i in seen else v
        seeds = [derive_seed(int(seed), STREAM_MARGINAL, c, i) for i in range(MARGINAL_SAMPLES)]
        x = generate(pipe, [c] * MARGINAL_SAMPLES, seeds, s.steps, s.sampler, s.guidance, targets=targets,
                     callback=record)[:, 0] * 2 - 1
        counts = counts + weight * torch.histc(x.double(), MARGINAL_BINS, -1.0, 1.0)
        for i, v in seen.items():
            t = int(walk.timesteps_at(i, v[:1])[0])
            levels[t] = torch.cat([levels.get(t, v[:0]), v.repeat(weight)])
    edges = torch.linspace(-1, 1, MARGINAL_BINS + 1, dtype=torch.float64)
    return VoxelPrior((edges[:-1] + edges[1:]) / 2, counts / counts.sum(),
                      {t: even_ranks(v.sort().values, min(v.numel(), MAX_LEVELS)) for t, v in levels.items()})


class _Ticking:
    """A denoiser that reports each call (progress of a long volume)."""

    def __init__(self, inner, tick: Callable[[], None]):
        self.inner, self.tick = inner, tick

    def __call__(self, x, t, y):
        out = self.inner(x, t, y)
        self.tick()
        return out


@dataclass(frozen=True)
class VolumeRun(RunSettings):
    """The settings every volume in a folder was made with (``OUT/sample3d.json``)."""
    axes: tuple[str, str, str]        # classes of the sections normal to x, y, z (as --axes gives them)
    num: int
    seed: int
    sampler: str
    steps: int
    guidance: float
    size: tuple[int, int, int]        # (Z, Y, X)
    periodic: bool
    overlap: float
    planes: str
    segment: str
    model_sha256: str
    model: str = ""
    targets: dict | None = None
    method: str = ""                  # how ``product`` combines the planes (``product_method``); "" before session 6
    TUPLES = ("axes", "size")

    @property
    def shape(self) -> VolumeShape:
        return VolumeShape(*self.size, self.periodic, self.overlap)

    def class_indices(self, pipe) -> tuple[int, int, int]:
        """Class indices for the sections normal to z, y, x (array-axis order)."""
        cx, cy, cz = (pipe.class_index(c) for c in self.axes)
        return cz, cy, cx

    def record(self, pipe, index: int) -> dict:
        from .. import __version__
        from ..core.seeding import volume_seed
        return {"model": self.model, "model_sha256": self.model_sha256, "index": index,
                "axes": {"x": self.axes[0], "y": self.axes[1], "z": self.axes[2]},
                "seed": volume_seed(self.seed, self.class_indices(pipe), index), "run_seed": self.seed,
                "shape_zyx": list(self.size), "periodic": self.periodic, "overlap": self.overlap,
                "planes": self.planes, "sampler": self.sampler, "steps": self.steps, "guidance": self.guidance,
                "microdiff_version": __version__}


def parse_axes(pipe, class_name: str | None, axes: str | Sequence[str] | None) -> tuple[str, str, str]:
    """(CX, CY, CZ) from ``--class C`` (all three) or ``--axes CX,CY,CZ``; classes checked."""
    if axes is not None and class_name is not None:
        raise UsageError("give either --class (isotropic) or --axes CX,CY,CZ (a class per axis), not both")
    if axes is None:
        if class_name is None:
            if len(pipe.class_names) != 1:
                raise UsageError(f"choose the class with --class (one of: {', '.join(pipe.class_names)}) or the "
                                 "classes per axis with --axes CX,CY,CZ")
            class_name = pipe.class_names[0]
        names = (class_name,) * 3
    else:
        names = tuple(c.strip() for c in axes.split(",")) if isinstance(axes, str) else tuple(axes)
        if len(names) != 3 or not all(names):
            raise UsageError(f"--axes {','.join(names)!r}: expected three classes CX,CY,CZ (for the sections normal "
                             f"to x, y and z), got {len(names)}")
    for c in names:
        pipe.class_index(c)
    return names


def volume_run(pipe, class_name=None, axes=None, num: int = 1, seed: int = 0, steps=None, sampler=None,
               guidance=None, size=None, periodic: bool = False, overlap: float = 0.2, planes: str = "product",
               segment: str | None = None, device: str = "cpu", targets: dict | None = None) -> VolumeRun:
    """The checked settings of a 3D sampling run (the volume is refused here if it would not fit)."""
    from ..denoise.domains import PLANE_MODES
    from .sample import resolve_settings
    check_int("--num", num, 1, 10 ** 6, UsageError)
    check_int("--seed", seed, 0, 2 ** 63 - 1, UsageError)
    if planes not in PLANE_MODES:
        raise UsageError(f"--planes {planes!r}: choose one of {', '.join(PLANE_MODES)}")
    _check_writers()
    cfg = pipe.microdiff_config
    if cfg.model.image_channels != 1:
        raise UsageError(f"sample3d makes gray volumes; this model has {cfg.model.image_channels} channels")
    s = resolve_settings(cfg, steps, sampler, guidance, 1)
    shape = VolumeShape.of(size, cfg.model.image_size, periodic, overlap)
    check_memory(shape, cfg.model.image_channels, device)
    if segment:
        from ..metrics.segmentation import Segmentation
        segment = str(Segmentation.parse(segment))
    return VolumeRun(parse_axes(pipe, class_name, axes), num, seed, s.sampler, s.steps, s.guidance, shape.shape,
                     shape.periodic, shape.overlap, planes, segment or "", pipe.fingerprint(),
                     str(getattr(pipe, "model_dir", "")), targets, product_method() if planes == "product" else "")


def product_method() -> str:
    """What ``--planes product`` does, recorded so that ``--resume`` refuses a folder of volumes
    made by an earlier version of it."""
    from ..denoise.domains import EVIDENCE
    return f"evidence {EVIDENCE:g}, rank-mapped onto 2D levels per step"


# ----------------------------------------------------------------------------- files

def _check_writers() -> None:
    """The TIFF and VTK writers are there (checked before any sampling, so no work is lost)."""
    import importlib.util
    missing = [m for m in ("tifffile", "pyevtk") if importlib.util.find_spec(m) is None]
    if missing:
        raise UsageError(f"sample3d writes TIFF stacks and .vti files and needs {' and '.join(missing)}: "
                         "pip install 'microdiff[volume]'")


def save_tiff(path: Path, volume: np.ndarray) -> None:
    """A (Z, Y, X) stack as a multi-page TIFF with ImageJ hyperstack metadata, atomically."""
    import tifffile

    from ..core.files import atomic_path
    with atomic_path(path) as tmp:
        tifffile.imwrite(tmp, volume, imagej=True, metadata={"axes": "ZYX", "unit": "voxel"})


def save_vti(path: Path, volume: np.ndarray, name: str) -> None:
    """A (Z, Y, X) array as VTK XML image data (.vti), one cell per voxel, x fastest, atomically."""
    from pyevtk.hl import imageToVTK

    from ..core.files import atomic_path
    with atomic_path(path) as tmp:
        imageToVTK(str(tmp.with_suffix("")), cellData={name: np.ascontiguousarray(volume.transpose(2, 1, 0))})
        tmp.with_suffix(".vti").replace(tmp)


def write_volume(folder: Path, volume: np.ndarray, record: dict, segment: str = "") -> list[Path]:
    """``folder/volume.{npy,tif,vti}``, with ``segment`` ``labels.{npy,tif,vti}``, ``slices.png``
    and last ``volume.json``. ``volume``: (Z, Y, X) float32 in [0, 1]."""
    from ..data.io import save_npy, save_png
    from ..data.figures import orthogonal_slices
    from ..core.files import write_text_atomic
    folder.mkdir(parents=True, exist_ok=True)
    vol = np.clip(volume, 0, 1).astype(np.float32)
    files = [folder / "volume.npy", folder / "volume.tif", folder / "volume.vti"]
    save_npy(files[0], vol)
    save_tiff(files[1], vol)
    save_vti(files[2], vol, "gray")
    labels = None
    if segment:
        from ..metrics.segmentation import Segmentation, phase_fractions
        seg = Segmentation.parse(segment)
        labels, thresholds = seg.labels(vol)
        files += [folder / "labels.npy", folder / "labels.tif", folder / "labels.vti"]
        save_npy(files[3], labels)
        save_tiff(files[4], labels)
        save_vti(files[5], labels, "phase")
        record = {**record, "segment": str(seg), "thresholds": [round(float(t), 6) for t in thresholds],
                  "phase_fractions": [round(float(f), 6) for f in phase_fractions(labels, seg.phases)]}
    files.append(folder / "slices.png")
    save_png(files[-1], orthogonal_slices(vol, labels))
    files.append(folder / VOLUME_JSON)
    write_text_atomic(files[-1], json.dumps({**record, "files": [f.name for f in files[:-1]]}, indent=1))
    return files


def volume_complete(out_dir: Path, index: int) -> bool:
    return (Path(out_dir) / f"{index:04d}" / VOLUME_JSON).is_file()


@dataclass
class VolumeResult:
    out_dir: Path
    folders: list[Path] = field(default_factory=list)   # volumes written by this call
    skipped: int = 0                                     # complete volumes found (--resume)
    seconds: list[float] = field(default_factory=list)   # sampling time per volume written

    @property
    def count(self) -> int:
        return len(self.folders)


def sample3d_to_folder(pipe, out_dir: str | Path, class_name: str | None = None, axes=None, num: int = 1,
                       steps: int | None = None, sampler: str | None = None, guidance: float | None = None,
                       seed: int = 0, size=None, periodic: bool = False, overlap: float = 0.2,
                       planes: str = "product", segment: str | None = None, overwrite: bool = False,
                       resume: bool = False, show_progress: bool = True, targets=None,
                       target_strength: float = 3.0, batch_size: int | None = None) -> VolumeResult:
    """``num`` volumes into ``out_dir`` (``OUT/NNNN/``, see the module's doc). ``class_name``: one
    class for every section; ``axes``: "CX,CY,CZ", the classes of the sections normal to x, y and
    z. ``size``: a cube side, "XxYxZ" or (Z, Y, X). ``planes``: product | alternate | fuse. ``targets``
    ({"vf": 0.45}) steer each whole volume's volume fraction. ``resume`` keeps complete volumes
    and makes the rest exactly as an uninterrupted run would. ``batch_size``: sections (or
    windows) per network call (default 64; less memory when smaller)."""
    import time

    from tqdm.auto import tqdm

    from .sample import prepare_sample_dir
    from ..core.seeding import volume_seed
    goal = None
    if targets:
        from ..targets.targets import make_targets
        goal = make_targets(targets, target_strength, None)
        other = sorted({t.kind for t in goal.items} - {"vf"})
        if other:
            raise UsageError(f"sample3d steers the volume fraction (--target-vf) only, not {', '.join(other)}")
        if goal.candidates > 1:
            raise UsageError(f"sample3d: --target-candidates {goal.candidates} is for 2D samples (each candidate "
                             "would be a whole volume); steer volumes with --target-vf alone")
        if goal.mixed() is not None:
            raise UsageError("sample3d: a volume fraction by class mixture (mix) is for 2D samples; "
                             "steer volumes with --target-vf alone")
    run = volume_run(pipe, class_name, axes, num, seed, steps, sampler, guidance, size, periodic, overlap, planes,
                     segment, str(pipe.unet.device),
                     {**goal.record(), "pooled_sections": batch_size or 64} if goal else None)
    out_dir = Path(out_dir)
    prepare_sample_dir(out_dir, run, overwrite, resume, RUN_JSON)
    classes = run.class_indices(pipe)
    prior = (voxel_marginal(pipe, classes, seed, run.steps, run.sampler, run.guidance, goal)
             if planes == "product" else None)
    result = VolumeResult(out_dir)
    for i in range(num):
        if volume_complete(out_dir, i):
            result.skipped += 1
            continue
        bar = tqdm(total=run.steps, desc=f"volume {i + 1}/{num} ({run.shape.text()}, {run.sampler})", unit="step",
                   disable=not show_progress)
        start = time.perf_counter()
        vol = generate_volumes(pipe, [classes], [volume_seed(seed, classes, i)], run.shape, run.steps, run.sampler,
                               run.guidance, planes, progress=lambda: bar.update(1), targets=goal,
                               chunk=batch_size or 64, prior=prior)
        bar.close()
        result.seconds.append(time.perf_counter() - start)
        record = {**run.record(pipe, i), "seconds": round(result.seconds[-1], 2)}
        if prior is not None:
            from ..denoise.domains import EVIDENCE
            record["voxel_marginal"] = {"samples_per_axis": MARGINAL_SAMPLES, "bins": MARGINAL_BINS,
                                        "rank_mapped_steps": len(prior.levels), "evidence": round(EVIDENCE, 6)}
        if goal:
            record["targets"] = goal.measure(vol[0, 0].numpy())
        folder = out_dir / f"{i:04d}"
        write_volume(folder, vol[0, 0].numpy(), record, run.segment)
        result.folders.append(folder)
    return result
