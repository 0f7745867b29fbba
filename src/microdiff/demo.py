"""`microdiff demo`: the whole job on the built-in fiber data, in minutes on a laptop CPU.

Makes the synthetic FVC40/50/60 data set, takes the shipped small model (trained by this
project's own ``microdiff train``; see README) or trains one here with ``--from-scratch``,
samples every class with DPM-Solver++ and writes a grid and a report comparing the fiber
fraction of the samples with the class target. ``run_demo`` returns a ``DemoResult``; the
report is rendered from its numbers.
"""
from __future__ import annotations

import shutil
import time
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import numpy as np
import torch

DEMO_SIZE = 64
DEMO_PER_CLASS = 200
DEMO_STEPS = 20
DEMO_SAMPLER = "dpmpp"
DEMO_GUIDANCE = 1.0        # chosen by benchmarks/demo_settings.py (BENCHMARKS.md): every class within 1 point
DEMO_HELDOUT = 32          # held-out images per class, of other seeds: the floor of the report


def shipped_model_dir() -> Path:
    return Path(str(resources.files("microdiff") / "assets" / "demo_model"))


@dataclass
class DemoClass:
    """Fiber fractions of one class: the target, the training set's (true rendered area and
    Otsu) and the generated samples' (Otsu)."""
    name: str
    target: float
    train_true: float
    train_otsu: np.ndarray
    generated_otsu: np.ndarray


@dataclass
class DemoResult:
    out_dir: Path
    model_source: str
    classes: dict[str, DemoClass] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)

    @property
    def report_path(self) -> Path:
        return self.out_dir / "report.md"

    @property
    def html_path(self) -> Path:
        return self.out_dir / "eval" / "report.html"

    @property
    def grid_path(self) -> Path:
        return self.out_dir / "grid.png"


def run_demo(out: str | Path, from_scratch: bool = False, train_minutes: float = 7.0, num: int = 16,
             overwrite: bool = False, show_progress: bool = True, log=None) -> DemoResult:
    """Data, model, samples, grid and report in ``out``."""
    from .core.checks import check_float, check_int
    from .core.errors import SettingError
    check_float("train_minutes", train_minutes, 0.0, lo_open=True, error=SettingError)
    check_int("num", num, 1, 10 ** 6, SettingError)
    from .data.synth import synth_fiber
    from .core.files import check_output_free
    from .generate.pipeline import load_pipeline
    from .generate import SampleSettings, sample_to_folder

    out = Path(out)
    if check_output_free(out, overwrite, "a demo", marker=("report.md", "data/dataset.json")):
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)
    result = DemoResult(out, "")
    t = time.perf_counter()
    data = synth_fiber(out / "data", size=DEMO_SIZE, per_class=DEMO_PER_CLASS, seed=0, show_progress=show_progress,
                       holdout=DEMO_HELDOUT / DEMO_PER_CLASS)
    result.seconds["make data"] = time.perf_counter() - t
    t = time.perf_counter()
    from .core.errors import say
    result.model_source = _demo_model(out, data, from_scratch, train_minutes, show_progress, log or say)
    result.seconds["model"] = time.perf_counter() - t
    t = time.perf_counter()
    pipe = load_pipeline(out / "model", "cuda" if torch.cuda.is_available() else "cpu")
    settings = SampleSettings(num=num, steps=DEMO_STEPS, sampler=DEMO_SAMPLER, guidance=DEMO_GUIDANCE, seed=0,
                              batch_size=3 * num)
    sample_to_folder(pipe, out / "samples", settings, show_progress=show_progress)
    result.seconds["sample"] = time.perf_counter() - t
    _measure(result, data, pipe.class_names)
    write_demo_grid(result)
    result.report_path.write_text(render_report(result))
    _html_report(result, data)
    return result


def _html_report(result: DemoResult, data: Path) -> None:
    """``eval/report.html``: samples against the training data (pixel distances, phases, S2, copies),
    beside the floor of held-out images of other seeds, with a verdict per class."""
    from .data.prepare.engine import heldout_path
    from .evaluate.evaluate import EvalSettings, evaluate_folders
    from .evaluate.report import available
    if available():
        evaluate_folders(result.out_dir / "samples", data, result.out_dir / "eval",
                         EvalSettings(descriptors=("px",), fid=False), show_progress=False,
                         reference=heldout_path(data))


def _demo_model(out: Path, data: Path, from_scratch: bool, train_minutes: float, show_progress: bool, log) -> str:
    """Put the model into ``out/model``; returns where it came from."""
    if from_scratch:
        from .config import apply_overrides, get_preset
        from .train.trainer import train_model
        cfg = apply_overrides(get_preset("cpu"), ["train.sample_every=0", "train.checkpoint_every=200"])
        train_model(data, out / "run", cfg, max_minutes=train_minutes, show_progress=show_progress, log=log)
        shutil.copytree(out / "run" / "model", out / "model")
        return f"trained here from scratch (`cpu` preset, {train_minutes:g} min budget; log in run/log.csv)"
    from .core.errors import MissingPathError, setting
    src = shipped_model_dir()
    if not (src / "microdiff.json").exists():
        raise MissingPathError(f"the shipped demo model is missing from {src}; reinstall microdiff "
                               f"or train one here ({setting('from_scratch')})")
    shutil.copytree(src, out / "model")
    return "the shipped demo model (made by `microdiff train`, command in README)"


def _fractions(files) -> np.ndarray:
    from .data.fiber import fiber_fraction
    from .data.io import read_image
    return np.array([fiber_fraction(read_image(f)) for f in files])


def _measure(result: DemoResult, data: Path, class_names) -> None:
    from .data.dataset import read_manifest
    from .data.fiber import FIBER_CLASSES
    manifest = read_manifest(data)
    for name in class_names:
        true = np.array([float(r["measured_fvc"]) for r in manifest if r["class"] == name])
        result.classes[name] = DemoClass(
            name, FIBER_CLASSES.get(name, float("nan")), float(true.mean()),
            _fractions(sorted((data / name).glob("*.png"))),
            _fractions(sorted((result.out_dir / "samples" / name).glob("*.png"))))


def write_demo_grid(result: DemoResult, per_class: int = 8) -> None:
    from .data.io import read_image, save_png
    from .data.figures import image_grid, labelled_grid
    imgs = [read_image(f) for c in result.classes
            for f in sorted((result.out_dir / "samples" / c).glob("*.png"))[:per_class]]
    grid = image_grid(torch.from_numpy(np.stack(imgs))[:, None], per_class)
    save_png(result.grid_path, labelled_grid(grid, DEMO_SIZE, 2, row_labels=list(result.classes)))


def render_report(result: DemoResult) -> str:
    lines = [
        "# microdiff demo report", "",
        f"Model: {result.model_source}.  ",
        f"Sampler: {DEMO_SAMPLER}, {DEMO_STEPS} steps, guidance {DEMO_GUIDANCE}; images {DEMO_SIZE}x{DEMO_SIZE}.  ",
        "Fiber fraction by Otsu threshold (fibers are the bright phase); the data set's true fraction is "
        "the rendered fiber area.", "",
        "| class | target FVC | training, true | training, Otsu | generated, Otsu | generated - training, points "
        "| n generated |",
        "|---|---|---|---|---|---|---|",
    ]
    for c in result.classes.values():
        r, g = c.train_otsu, c.generated_otsu
        lines.append(f"| {c.name} | {c.target:.2f} | {c.train_true:.3f} | {r.mean():.3f} ± {r.std():.3f} | "
                     f"{g.mean():.3f} ± {g.std():.3f} | {100 * (g.mean() - r.mean()):+.2f} | {len(g)} |")
    s = result.seconds
    lines += ["", "Wall time: " + ", ".join(f"{k} {v:.0f} s" for k, v in s.items())
              + f" (total {sum(s.values()):.0f} s).", "",
              "Files: `data/` (training set), `data-heldout/` (images of other seeds: the floor of "
              "`eval/report.html`, whose verdicts judge every figure against it), `model/` (pipeline), "
              "`samples/<class>/NNNN.{png,npy}`, `grid.png` (8 samples per class, one row per class).", ""]
    return "\n".join(lines)
