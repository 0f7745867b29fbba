"""The dataset folder format shared by every importer and the synthetic generator::

    OUT/<class>/<name>.png      8-bit grayscale at the target size
    OUT/manifest.csv            one row per image (file, class, source, crop box, transform, seed, ...)
    OUT/dataset.json            classes, size, counts, the command and version that made it

Written into a temporary sibling folder and moved into place at the end, so an interrupted run
never leaves a half-written data set that looks complete.
"""
from __future__ import annotations

import csv
import json
import os
import shutil
import sys
from pathlib import Path

import numpy as np

from .io import save_png

DATASET_JSON = "dataset.json"
MANIFEST_CSV = "manifest.csv"


class DatasetExistsError(ValueError):
    pass


class DatasetWriter:
    """Collects images into ``OUT.partial-*`` and publishes them as ``OUT`` on ``commit``."""

    def __init__(self, out: str | Path, overwrite: bool = False):
        self.out = Path(out)
        if self.out.exists() and any(self.out.iterdir()):
            if not overwrite:
                what = "a data set" if (self.out / DATASET_JSON).exists() else "other files"
                raise DatasetExistsError(f"{self.out} already holds {what}; pass --overwrite to replace it "
                                         "or choose another --out")
        self.tmp = self.out.parent / f".{self.out.name}.partial-{os.getpid()}"
        if self.tmp.exists():
            shutil.rmtree(self.tmp)
        self.tmp.mkdir(parents=True)
        self.rows: list[dict] = []
        self.overwrite = overwrite

    def add(self, class_name: str, name: str, image: np.ndarray, **fields) -> None:
        d = self.tmp / class_name
        d.mkdir(exist_ok=True)
        save_png(d / f"{name}.png", image)
        self.rows.append({"file": f"{class_name}/{name}.png", "class": class_name, **fields})

    def commit(self, info: dict) -> Path:
        columns: list[str] = []
        for r in self.rows:
            columns += [k for k in r if k not in columns]
        with open(self.tmp / MANIFEST_CSV, "w", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=columns)
            w.writeheader()
            w.writerows(self.rows)
        counts: dict[str, int] = {}
        for r in self.rows:
            counts[r["class"]] = counts.get(r["class"], 0) + 1
        from .. import __version__
        meta = {"classes": sorted(counts), "counts": counts, **info,
                "command": " ".join(sys.argv), "microdiff_version": __version__}
        (self.tmp / DATASET_JSON).write_text(json.dumps(meta, indent=2))
        if self.out.exists():
            shutil.rmtree(self.out)
        self.out.parent.mkdir(parents=True, exist_ok=True)
        os.replace(self.tmp, self.out)
        return self.out

    def abort(self) -> None:
        shutil.rmtree(self.tmp, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is not None:
            self.abort()
        return False


def read_manifest(root: str | Path) -> list[dict]:
    with open(Path(root) / MANIFEST_CSV, newline="") as fh:
        return list(csv.DictReader(fh))


def synth_fiber(out: str | Path, size: int = 64, per_class: int = 200, seed: int = 0,
                classes: dict[str, float] | None = None, overwrite: bool = False,
                show_progress: bool = True, radius: float | None = None) -> Path:
    """Write the built-in fiber data set (classes FVC40/50/60 by default)."""
    from tqdm.auto import tqdm

    from .fiber import FIBER_CLASSES, FiberSettings, fiber_image
    classes = classes or FIBER_CLASSES
    settings = FiberSettings(size=size, radius=radius)
    with DatasetWriter(out, overwrite) as w:
        bar = tqdm(total=per_class * len(classes), desc="synth fiber", unit="img", disable=not show_progress)
        for ci, (name, fvc) in enumerate(classes.items()):
            for i in range(per_class):
                img, measured, n = fiber_image(np.random.SeedSequence([seed, ci, i]), fvc, settings)
                w.add(name, f"{i:05d}", img, source="synthetic", target_fvc=fvc,
                      measured_fvc=f"{measured:.5f}", n_fibers=n, seed=f"{seed}:{ci}:{i}")
                bar.update()
        bar.close()
        return w.commit({"kind": "synthetic fiber composite", "size": size, "seed": seed,
                         "target_fvc": classes, "mean_radius_px": settings.mean_radius})
