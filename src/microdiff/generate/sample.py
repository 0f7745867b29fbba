"""Sampling: batching, per-sample seeds, guidance, sharding over processes, and writing
``OUT/<class>/NNNN.{png,npy}``.

Sample i of class c has the seed ``sample_seed(seed, c, i)`` and its own noise generator, so an
image does not depend on the batch size, the process count or the other classes sampled.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch
from torch import Tensor

from ..core.checks import check_int
from ..config import SampleConfig
from ..denoise.denoiser import ClassifierFreeGuidance, Denoiser, bind_labels
from ..core.errors import MicrodiffError, UsageError
from ..diffusion import DEFAULT_SPACING, Diffusion, NoiseSource, get_sampler, respace
from ..core.seeding import candidate_seeds, sample_seed

__all__ = ["sample_seed", "resolve_settings", "sampling_diffusion", "inference_denoiser", "sample_images", "generate",
           "write_sample", "sample_to_folder", "SampleResult", "SampleRun"]


def resolve_settings(config, steps: int | None = None, sampler: str | None = None, guidance: float | None = None,
                     batch_size: int | None = None) -> SampleConfig:
    """The sampling settings: the given ones, else the model's (``config.sample``); checked, with
    ``steps`` at most the model's T."""
    s = config.sample
    try:
        out = SampleConfig(sampler=s.sampler if sampler is None else sampler, steps=s.steps if steps is None else steps,
                           guidance=s.guidance if guidance is None else guidance,
                           batch_size=s.batch_size if batch_size is None else batch_size,
                           clip_denoised=s.clip_denoised)
    except MicrodiffError as e:         # name the flag rather than the setting
        raise UsageError(str(e).replace("sample.batch_size", "--batch-size").replace("sample.", "--")) from None
    if out.steps > config.diffusion.timesteps:
        raise UsageError(f"--steps {out.steps}: expected at most the model's {config.diffusion.timesteps} timesteps")
    return out


MAX_CANVAS_PIXELS = 1 << 26         # 8192 x 8192


@dataclass(frozen=True)
class Canvas:
    """What a sample fills: ``height`` x ``width`` pixels (at least the training window), a torus
    when ``periodic`` (it tiles seamlessly). Larger or periodic canvases are denoised as windows
    of the training size that overlap by at least ``overlap`` of a window (``domains``)."""
    height: int
    width: int
    periodic: bool = False
    overlap: float = 0.2

    @classmethod
    def of(cls, size, window: int, periodic: bool = False, overlap: float = 0.2) -> "Canvas":
        """``size``: None (the training window), an int (square), (height, width), or a string
        "S" or "WIDTHxHEIGHT" as image viewers write it (e.g. "384x256": 384 wide, 256 high)."""
        from ..core.checks import check_float
        if size is None:
            h = w = window
        elif isinstance(size, str):
            h, w = parse_size(size)
        elif isinstance(size, int):
            h = w = size
        else:
            h, w = (int(v) for v in size)
        for name, v in (("height", h), ("width", w)):
            check_int(f"--size ({name})", v, window, 65536, UsageError)
        if h * w > MAX_CANVAS_PIXELS:
            raise UsageError(f"--size {w}x{h}: {h * w:,} pixels would need about {h * w * 48 / 1e9:.1f} GB while "
                             f"sampling; the limit is {MAX_CANVAS_PIXELS:,} pixels (8192 x 8192)")
        check_float("--overlap", overlap, 0.0, 0.9, error=UsageError)
        return cls(h, w, bool(periodic), float(overlap))

    def plain(self, window: int) -> bool:
        return (self.height, self.width) == (window, window) and not self.periodic

    def wrap(self, denoiser, seeds: Sequence[int], window: int):
        """The denoiser on this canvas (itself where the canvas is one plain window)."""
        if self.plain(window):
            return denoiser
        from ..denoise.domains import WindowedDenoiser
        return WindowedDenoiser(denoiser, window, seeds, self.overlap, self.periodic)


def parse_size(text: str) -> tuple[int, int]:
    """(height, width) of "S" or "WIDTHxHEIGHT"."""
    parts = text.lower().replace(" ", "").split("x")
    try:
        nums = [int(p) for p in parts]
    except ValueError:
        raise UsageError(f"--size {text!r}: expected a side in pixels (256) or WIDTHxHEIGHT (384x256)") from None
    if len(nums) == 1:
        return nums[0], nums[0]
    if len(nums) == 2:
        return nums[1], nums[0]
    raise UsageError(f"--size {text!r}: expected a side in pixels (256) or WIDTHxHEIGHT (384x256)")


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
                  device=None, progress: Callable[[int], None] | None = None,
                  wrap: Callable | None = None, callback: Callable | None = None) -> Tensor:
    """Images in [0, 1], shape (N, *shape), float32 on the CPU; sample i uses ``seeds[i]`` only.

    ``wrap(denoiser, seeds)`` puts the guided denoiser on the batch's domain (a large or periodic
    canvas, a mask, descriptor targets): it is called once per batch with that batch's seeds.
    ``callback(i, x_t, x0)`` is the sampler's (see ``diffusion.samplers``), for every step of
    every batch.
    """
    if len(labels) != len(seeds):
        raise ValueError("one seed per label is needed")
    fn = get_sampler(sampler)
    diffusion = sampling_diffusion(denoiser.diffusion, steps, sampler)
    guided = ClassifierFreeGuidance(denoiser, guidance)
    out = []
    for start in range(0, len(labels), batch_size):
        lab = torch.tensor(list(labels[start:start + batch_size]), device=device)
        batch_seeds = seeds[start:start + batch_size]
        noise = NoiseSource(batch_seeds)
        x = noise.randn(tuple(shape), device=device)
        model = guided if wrap is None else wrap(guided, batch_seeds)
        x0 = fn(bind_labels(model, lab), x, diffusion, noise, clip_denoised=clip_denoised, callback=callback)
        out.append(((x0.float().clamp(-1, 1) + 1) / 2).cpu())
        if progress is not None:
            progress(len(lab))
    return torch.cat(out) if out else torch.empty(0, *shape)


def generate(pipe, labels: Sequence[int], seeds: Sequence[int], steps: int, sampler: str, guidance: float,
             batch_size: int | None = None, progress: Callable | None = None, clip_denoised: bool = True,
             canvas: Canvas | None = None, wrap: Callable | None = None, targets=None,
             callback: Callable | None = None) -> Tensor:
    """``sample_images`` for a loaded pipeline (its network, config and class count), on
    ``canvas`` (default: one window of the training size); ``wrap(denoiser, seeds)`` replaces the
    canvas's own domain (a mask, say); ``targets`` (``targets.Targets``) steer the whole canvas,
    and with ``targets.candidates`` K > 1 each sample is the draw of least ``Targets.penalties``
    among K from its seed (``seeding.candidate_seeds``; the first on ties); ``callback`` is
    ``sample_images``'."""
    cfg = pipe.microdiff_config
    s = resolve_settings(cfg, steps, sampler, guidance, batch_size)
    den = inference_denoiser(pipe.unet, cfg, len(pipe.class_names))
    window = cfg.model.image_size
    canvas = canvas or Canvas(window, window)
    shape = (cfg.model.image_channels, canvas.height, canvas.width)
    if wrap is None and not canvas.plain(window):
        wrap = lambda d, sd: canvas.wrap(d, sd, window)  # noqa: E731
    if targets:
        wrap = steered(wrap, targets)
    k = targets.candidates if targets else 1
    if k == 1:
        return sample_images(den, labels, seeds, shape, s.steps, s.sampler, s.guidance, s.batch_size,
                             clip_denoised, pipe.unet.device, progress, wrap=wrap, callback=callback)
    tick = None if progress is None else _per_sample(progress, k)
    best, least = None, None
    per_sample = [candidate_seeds(sd, k) for sd in seeds]
    for j in range(k):              # candidate j of every sample; a running best keeps two images per sample
        drawn = sample_images(den, labels, [c[j] for c in per_sample], shape, s.steps, s.sampler,
                              s.guidance, s.batch_size, clip_denoised, pipe.unet.device, tick, wrap=wrap,
                              callback=callback)
        penalty = targets.penalties(drawn)
        if best is None:
            best, least = drawn, penalty
        else:
            better = penalty < least                     # ties keep the earlier candidate
            best[better], least = drawn[better], torch.where(better, penalty, least)
    return best


def _per_sample(progress: Callable[[int], None], k: int) -> Callable[[int], None]:
    """A progress callback counting drawn candidates that reports whole samples of ``k`` each."""
    count = {"drawn": 0, "reported": 0}

    def tick(n: int) -> None:
        count["drawn"] += n
        whole = count["drawn"] // k
        if whole > count["reported"]:
            progress(whole - count["reported"])
            count["reported"] = whole
    return tick


def steered(wrap: Callable | None, targets) -> Callable:
    """``wrap`` followed by guidance towards ``targets`` on the whole canvas (a class mixture for a
    volume fraction goes inside ``wrap``: see ``targets.Targets.mixture``)."""
    def steer(denoiser, seeds):
        inner = targets.mixture(denoiser)
        return targets.guide(inner if wrap is None else wrap(inner, seeds))
    return steer


SAMPLE_JSON = "sample.json"


def write_sample(out_dir: Path, class_name: str, index: int, image: Tensor, record: dict | None = None,
                 segment: str | None = None) -> list[Path]:
    """``OUT/<class>/NNNN.npy`` (float32 in [0, 1], HxW or HxWxC), ``NNNN.png`` (8-bit gray, or
    RGB for 3 channels), with ``segment`` the label map ``NNNN_labels.npy`` (uint8 phase ids) and
    ``NNNN_labels.png`` (phase k as gray k / (K - 1)), and with ``record`` ``NNNN.json`` (how it
    was made), each written atomically; the JSON comes last, so a sample is complete when its
    JSON exists."""
    from ..data.io import save_npy, save_png
    from ..core.files import write_text_atomic
    d = Path(out_dir) / class_name
    d.mkdir(parents=True, exist_ok=True)
    arr = image.float().clamp(0, 1).numpy()
    arr = arr[0] if arr.shape[0] == 1 else np.moveaxis(arr, 0, -1)
    files = [d / f"{index:04d}.npy", d / f"{index:04d}.png"]
    save_npy(files[0], arr.astype(np.float32))
    save_png(files[1], arr)
    if segment:
        from ..metrics.segmentation import Segmentation, labels_to_png, phase_fractions
        seg = Segmentation.parse(segment)
        labels, thresholds = seg.labels(arr)
        files += [d / f"{index:04d}_labels.npy", d / f"{index:04d}_labels.png"]
        save_npy(files[-2], labels)
        save_png(files[-1], labels_to_png(labels, seg.phases))
        record = {**(record or {}), "segment": str(seg), "thresholds": [round(float(t), 6) for t in thresholds],
                  "phase_fractions": [round(float(f), 6) for f in phase_fractions(labels, seg.phases)]}
    if record is not None:
        files.append(d / f"{index:04d}.json")
        write_text_atomic(files[-1], json.dumps(record, indent=1))
    return files


def sample_complete(out_dir: Path, class_name: str, index: int, segment: str = "") -> bool:
    d = Path(out_dir) / class_name
    exts = (".json", ".npy", ".png") + (("_labels.npy", "_labels.png") if segment else ())
    return all((d / f"{index:04d}{ext}").is_file() for ext in exts)


class RunSettings:
    """JSON round trip and comparison of a frozen run-settings dataclass (``TUPLES``: its
    fields that JSON turns into lists); ``model`` (the folder as given) is not compared."""
    TUPLES: tuple[str, ...] = ()

    @classmethod
    def from_json(cls, d: dict):
        return cls(**{**d, **{k: tuple(d[k]) for k in cls.TUPLES}})

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=1)

    def differences(self, other) -> list[str]:
        return [f.name for f in fields(self) if f.name != "model" and getattr(self, f.name) != getattr(other, f.name)]


@dataclass(frozen=True)
class SampleRun(RunSettings):
    """The settings every sample in a folder was made with (``OUT/sample.json``)."""
    classes: tuple[str, ...]
    num: int
    seed: int
    sampler: str
    steps: int
    guidance: float
    batch_size: int
    model_sha256: str                  # of the weights: a resume must use the same model
    model: str = ""                    # the model folder as given (not compared)
    size: tuple[int, int] = (0, 0)     # (height, width) of the canvas
    periodic: bool = False
    overlap: float = 0.2
    segment: str = ""                  # --segment method ("" = none)
    inpaint: dict | None = None        # image, mask, extend and their SHA-256 (microdiff inpaint)
    targets: dict | None = None        # descriptor targets and strength (targets.Targets.record())
    TUPLES = ("classes", "size")

    @property
    def canvas(self) -> Canvas:
        return Canvas(self.size[0], self.size[1], self.periodic, self.overlap)

    def sample_record(self, class_name: str, class_index: int, index: int) -> dict:
        """How sample ``index`` of a class was made: enough to make it again."""
        from .. import __version__
        return {"model": self.model, "model_sha256": self.model_sha256, "class": class_name, "index": index,
                "seed": sample_seed(self.seed, class_index, index), "run_seed": self.seed, "size": list(self.size),
                "periodic": self.periodic, "overlap": self.overlap, "sampler": self.sampler, "steps": self.steps,
                "guidance": self.guidance, "batch_size": self.batch_size, "microdiff_version": __version__,
                **({"inpaint": self.inpaint} if self.inpaint else {}),
                **({"target_strength": self.targets["strength"]} if self.targets else {})}


def prepare_sample_dir(out_dir: Path, run, overwrite: bool, resume: bool, record: str = SAMPLE_JSON) -> None:
    """Check (and with ``overwrite`` clear) the output folder; record the run (a ``SampleRun`` or
    anything with its ``to_json`` / ``from_json`` / ``differences``) in ``record``.
    ``resume`` continues a folder made with the same settings."""
    from ..core.files import check_output_free, remove, write_text_atomic
    path = out_dir / record
    if resume:
        if not path.is_file():
            raise UsageError(f"{out_dir} holds no interrupted sampling run ({record} is missing); "
                             "run without --resume")
        try:
            old = type(run).from_json(json.loads(path.read_text()))
        except (ValueError, TypeError, KeyError) as e:
            raise UsageError(f"{path} is unreadable ({e}); sample again with --overwrite") from None
        diff = old.differences(run)
        if diff:
            raise UsageError(f"{out_dir} was sampled with other settings ({', '.join(diff)} differ: "
                             f"{', '.join(f'{k}={getattr(old, k)!r}' for k in diff)}); resume with the same "
                             "ones, or sample again with --overwrite")
        return
    if check_output_free(out_dir, overwrite, "files", "pass --resume to continue an interrupted run"):
        remove(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    write_text_atomic(path, run.to_json())


@dataclass
class SampleResult:
    out_dir: Path
    files: list[Path] = field(default_factory=list)    # written by this call
    skipped: int = 0                                   # complete samples found (--resume)

    @property
    def count(self) -> int:
        """Samples written by this call (each ends with its JSON record)."""
        return len([f for f in self.files if f.suffix == ".json"])


def sample_to_folder(pipe, class_names: Sequence[str] | None, num: int, out_dir: str | Path,
                     steps: int | None = None, sampler: str | None = None, guidance: float | None = None,
                     seed: int = 0, batch_size: int | None = None, overwrite: bool = False, resume: bool = False,
                     show_progress: bool = True, size=None, periodic: bool = False,
                     overlap: float = 0.2, segment: str | None = None, targets=None,
                     target_strength: float = 3.0, target_candidates: int | None = None) -> SampleResult:
    """Sample ``num`` images of each class of a loaded pipeline (default: all) into ``out_dir``:
    ``<class>/NNNN.{npy,png,json}`` and ``sample.json``. ``size``, ``periodic`` and ``overlap``
    choose the canvas (see ``Canvas.of``: any size >= the training size, seamless with ``periodic``).
    ``segment`` (otsu, multiotsu:K, threshold:T) also writes each sample's phase label map.
    ``targets`` (see ``targets.make_targets``: {"vf": 0.55}, {"s2": "ref.png"}, Target objects)
    steer every sample towards descriptor values with ``target_strength``; ``target_candidates``
    K > 1 keeps the best of K guided draws of each sample (K times the cost); each ``NNNN.json``
    records the targets and what the sample achieved.

    Under torchrun / accelerate (WORLD_SIZE > 1) process r writes the sample numbers r, r + W, ...:
    the same images as one process. Unset sampling settings come from the model's config.
    ``resume`` continues an interrupted run with the same settings: complete samples are kept
    and the rest give the same files as an uninterrupted run.
    """
    canvas = Canvas.of(size, pipe.microdiff_config.model.image_size, periodic, overlap)
    goal = None
    if targets:
        from ..targets.targets import make_targets
        goal = make_targets(targets, target_strength, (canvas.height, canvas.width), pipe.class_names,
                            target_candidates)
    elif target_candidates not in (None, 1):
        raise UsageError(f"--target-candidates {target_candidates}: candidates are chosen by their targets; "
                         "give --target-vf, --target-s2 or --target-descriptor too")
    run = sample_run(pipe, class_names, num, seed, steps, sampler, guidance, batch_size, canvas, segment,
                     targets=goal.record() if goal else None)
    return run_sampling(pipe, run, Path(out_dir), overwrite, resume, show_progress, targets=goal)


def sample_run(pipe, class_names, num: int, seed: int, steps, sampler, guidance, batch_size, canvas: Canvas,
               segment: str | None = None, inpaint: dict | None = None, targets: dict | None = None) -> SampleRun:
    """The checked settings of a sampling run."""
    check_int("--num", num, 1, 10 ** 7, UsageError)
    check_int("--seed", seed, 0, 2 ** 63 - 1, UsageError)
    s = resolve_settings(pipe.microdiff_config, steps, sampler, guidance, batch_size)
    if segment:
        from ..metrics.segmentation import Segmentation
        segment = str(Segmentation.parse(segment))
    classes = tuple(class_names or pipe.class_names)
    for c in classes:
        pipe.class_index(c)
    return SampleRun(classes, num, seed, s.sampler, s.steps, s.guidance, s.batch_size, pipe.fingerprint(),
                     str(getattr(pipe, "model_dir", "")), (canvas.height, canvas.width), canvas.periodic,
                     canvas.overlap, segment or "", inpaint, targets)


def run_sampling(pipe, run: SampleRun, out_dir: Path, overwrite: bool, resume: bool, show_progress: bool,
                 wrap: Callable | None = None, finish: Callable | None = None, targets=None) -> SampleResult:
    """Sample ``run`` into ``out_dir`` (sharded over processes under torchrun / accelerate).
    ``wrap(denoiser, seeds)`` replaces the canvas's own domain; ``finish(images)`` post-processes
    each batch before it is written; ``targets`` (``targets.Targets``) steer every sample."""
    from ..core.launch import distributed_state
    state = distributed_state()
    if state is None or state.is_main_process:
        prepare_sample_dir(out_dir, run, overwrite, resume)
    if state is not None:
        state.wait_for_everyone()          # the folder is ready before any process writes
    rank, world = (state.process_index, state.num_processes) if state is not None else (0, 1)
    result = _sample_indices(pipe, run, range(rank, run.num, world), out_dir, show_progress and rank == 0, wrap, finish,
                             targets)
    if state is not None:
        state.wait_for_everyone()
    return result


def _sample_indices(pipe, run: SampleRun, indices: Sequence[int], out_dir: Path, show_progress: bool,
                    wrap: Callable | None = None, finish: Callable | None = None, targets=None) -> SampleResult:
    """Sample ``indices`` of every class in batches; a batch whose samples are all complete is
    skipped (its composition is that of an uninterrupted run, so resumed files are identical)."""
    from tqdm.auto import tqdm
    jobs = [(pipe.class_index(c), c, i) for c in run.classes for i in indices]
    bar = tqdm(total=len(jobs), desc=f"sampling ({run.sampler}, {run.steps} steps)", unit="img",
               disable=not show_progress)
    result = SampleResult(out_dir)
    for start in range(0, len(jobs), run.batch_size):
        chunk = jobs[start:start + run.batch_size]
        todo = [not sample_complete(out_dir, name, i, run.segment) for _, name, i in chunk]
        result.skipped += len(chunk) - sum(todo)
        if any(todo):
            imgs = generate(pipe, [j[0] for j in chunk], [sample_seed(run.seed, j[0], j[2]) for j in chunk],
                            run.steps, run.sampler, run.guidance, batch_size=run.batch_size, canvas=run.canvas,
                            wrap=wrap, targets=targets)
            imgs = imgs if finish is None else finish(imgs)
            for (k, name, i), img, needed in zip(chunk, imgs, todo):
                if needed:
                    record = run.sample_record(name, k, i)
                    if targets:
                        record["targets"] = targets.measure(img[0].numpy())
                    result.files += write_sample(out_dir, name, i, img, record, run.segment)
        bar.update(len(chunk))
    bar.close()
    return result
