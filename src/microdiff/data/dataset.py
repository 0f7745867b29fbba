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
import sys
from pathlib import Path

import numpy as np

from ..core.errors import DataError, MissingPathError, OutputExistsError
from ..core.files import check_output_free, remove
from .io import save_png

DATASET_JSON = "dataset.json"
MANIFEST_CSV = "manifest.csv"


DatasetExistsError = OutputExistsError    # the old name


class DatasetWriter:
    """Collects images into ``OUT.partial-*`` and publishes them as ``OUT`` on ``commit``."""

    def __init__(self, out: str | Path, overwrite: bool = False):
        self.out = Path(out)
        holds = "a data set" if (self.out / DATASET_JSON).exists() else "other files"
        check_output_free(self.out, overwrite, "a data set" if holds == "a data set" else holds, marker=DATASET_JSON)
        self.tmp = self.out.parent / f".{self.out.name}.partial-{os.getpid()}"
        remove(self.tmp)
        try:
            self.tmp.mkdir(parents=True)
        except OSError as e:
            from ..core.errors import OutputError
            raise OutputError(self.out, e) from None
        self.rows: list[dict] = []

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
        remove(self.out)
        self.out.parent.mkdir(parents=True, exist_ok=True)
        os.replace(self.tmp, self.out)
        return self.out

    def abort(self) -> None:
        remove(self.tmp)

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is not None:
            self.abort()
        return False


def read_manifest(root: str | Path) -> list[dict]:
    """The rows of ``ROOT/manifest.csv``; an unreadable one (or one without the ``file`` and
    ``class`` columns) gives a ``DataError`` naming it."""
    path = Path(root) / MANIFEST_CSV
    if not path.is_file():
        raise MissingPathError(f"{path} does not exist; {root} is not a data set made by microdiff")
    try:
        with open(path, newline="", encoding="utf-8") as fh:
            reader = csv.DictReader(fh)
            rows = list(reader)
            columns = reader.fieldnames or []
    except (UnicodeDecodeError, csv.Error, OSError) as e:
        raise DataError(f"{path}: not a readable manifest ({type(e).__name__}: {e})") from None
    missing = [c for c in ("file", "class") if c not in columns]
    if missing or any(None in r for r in rows):
        raise DataError(f"{path}: not a microdiff manifest (columns {', '.join(missing) or 'uneven'}); "
                        "make the data set again with `microdiff prepare` or `microdiff synth`")
    return rows
