"""`microdiff demo`: the whole job on the built-in fiber data, in minutes on a laptop CPU.

Makes the synthetic FVC40/50/60 data set, takes the shipped small model (trained by this
project's own ``microdiff train``; see README) or trains one here with ``--from-scratch``,
samples every class with DPM-Solver++ and writes a grid and a report comparing the fiber
fraction of the samples with the class target.
"""
from __future__ import annotations

import shutil
import time
from importlib import resources
from pathlib import Path

import numpy as np
import torch

DEMO_SIZE = 64
DEMO_PER_CLASS = 200
DEMO_STEPS = 20
DEMO_SAMPLER = "dpmpp"
DEMO_GUIDANCE = 1.5


def shipped_model_dir() -> Path:
    return Path(str(resources.files("microdiff") / "assets" / "demo_model"))


def run_demo(out: str | Path, from_scratch: bool = False, train_minutes: float = 7.0, num: int = 16,
             overwrite: bool = False, show_progress: bool = True, log=print) -> Path:
    from .config import apply_overrides, get_preset
    from .data.dataset import synth_fiber
    from .model import load_pipeline
    from .sample import sample_to_folder
    from .train import train

    out = Path(out)
    if out.exists() and any(out.iterdir()):
        if not overwrite:
            raise FileExistsError(f"{out} is not empty; pass --overwrite or choose another --out")
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)
    times = {}
    t = time.perf_counter()
    data = synth_fiber(out / "data", size=DEMO_SIZE, per_class=DEMO_PER_CLASS, seed=0, show_progress=show_progress)
    times["make data"] = time.perf_counter() - t

    t = time.perf_counter()
    if from_scratch:
        cfg = apply_overrides(get_preset("cpu"), ["train.sample_every=0", "train.checkpoint_every=200"])
        train(data, out / "run", cfg, max_minutes=train_minutes, show_progress=show_progress, log=log)
        shutil.copytree(out / "run" / "model", out / "model")
        source = f"trained here from scratch (`cpu` preset, {train_minutes:g} min budget; log in run/log.csv)"
    else:
        src = shipped_model_dir()
        if not (src / "microdiff.json").exists():
            raise FileNotFoundError(f"the shipped demo model is missing from {src}; reinstall microdiff "
                                    "or run `microdiff demo --from-scratch`")
        shutil.copytree(src, out / "model")
        source = "the shipped demo model (made by `microdiff train`, command in README)"
    times["model"] = time.perf_counter() - t

    t = time.perf_counter()
    pipe = load_pipeline(out / "model", "cuda" if torch.cuda.is_available() else "cpu")
    sample_to_folder(pipe, pipe.class_names, num, out / "samples", DEMO_STEPS, DEMO_SAMPLER,
                     DEMO_GUIDANCE, seed=0, batch_size=3 * num, show_progress=show_progress)
    times["sample"] = time.perf_counter() - t

    report = write_demo_report(out, data, pipe.class_names, source, times)
    return report


def _fractions(files) -> np.ndarray:
    from .data.fiber import fiber_fraction
    from .data.io import read_image
    return np.array([fiber_fraction(read_image(f)) for f in files])


def write_demo_report(out: Path, data: Path, class_names, source: str, times: dict) -> Path:
    from .data.dataset import read_manifest
    from .data.fiber import FIBER_CLASSES
    from .data.io import read_image, save_png
    from .figures import image_grid, labelled_grid

    manifest = read_manifest(data)
    rows = []
    grid_imgs = []
    for name in class_names:
        gen = sorted((out / "samples" / name).glob("*.png"))
        real = sorted((data / name).glob("*.png"))
        f_gen, f_real = _fractions(gen), _fractions(real)
        true = np.array([float(r["measured_fvc"]) for r in manifest if r["class"] == name])
        rows.append((name, FIBER_CLASSES.get(name, float("nan")), true.mean(), f_real.mean(), f_real.std(),
                     f_gen.mean(), f_gen.std(), len(gen)))
        grid_imgs += [read_image(f) for f in gen[:8]]
    grid = image_grid(torch.from_numpy(np.stack(grid_imgs))[:, None], 8)
    save_png(out / "grid.png", labelled_grid(grid, DEMO_SIZE, 2, row_labels=list(class_names)))
    lines = [
        "# microdiff demo report", "",
        f"Model: {source}.  ",
        f"Sampler: {DEMO_SAMPLER}, {DEMO_STEPS} steps, guidance {DEMO_GUIDANCE}; images {DEMO_SIZE}x{DEMO_SIZE}.  ",
        "Fiber fraction by Otsu threshold (fibers are the bright phase); the data set's true fraction is "
        "the rendered fiber area.", "",
        "| class | target FVC | training, true | training, Otsu | generated, Otsu | n generated |",
        "|---|---|---|---|---|---|",
    ]
    for name, target, true, mr, sr, mg, sg, n in rows:
        lines.append(f"| {name} | {target:.2f} | {true:.3f} | {mr:.3f} ± {sr:.3f} | {mg:.3f} ± {sg:.3f} | {n} |")
    lines += ["", "Wall time: " + ", ".join(f"{k} {v:.0f} s" for k, v in times.items())
              + f" (total {sum(times.values()):.0f} s).", "",
              "Files: `data/` (training set), `model/` (pipeline), `samples/<class>/NNNN.{png,npy}`, `grid.png` "
              "(8 samples per class, one row per class).", ""]
    path = out / "report.md"
    path.write_text("\n".join(lines))
    return path
