"""Where each training image lies in its source micrograph, read from ``manifest.csv``.

A layout model (``model.layout``, ``denoise.layout``) is trained on crops together with their
region in the source -- (top, left, height, width) as fractions of the source's height and
width -- and the dihedral element that ``prepare`` gave the crop. ``prepare`` and the layered
``synth`` kind record the crop box (``crop_top``, ``crop_left``, ``crop_size``, in source pixels),
the source's size (``source_height``, ``source_width``) and the ``transform``.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from ..core.errors import DataError
from .dataset import MANIFEST_CSV, read_manifest
from .transforms import DIHEDRAL_NAMES

LAYOUT_FIELDS = ("crop_top", "crop_left", "crop_size", "source_height", "source_width", "transform")


@dataclass(frozen=True)
class Regions:
    """Per image: ``regions`` (N, 4) float64 (top, left, height, width; fractions of the source),
    ``elements`` (N,) the dihedral element of each image; ``source_shape``: the median source
    (height, width) in pixels at the training scale (a whole source, as a sample lays it out)."""
    regions: np.ndarray
    elements: np.ndarray
    source_shape: tuple[int, int]


def read_regions(root: str | Path, files: Sequence[Path], image_size: int) -> Regions:
    """The regions of ``files`` (images of the data set ``root``) from its manifest; a data set
    without the layout columns, or a file it does not list, is a one-line ``DataError``."""
    root = Path(root)
    rows = read_manifest(root)
    missing = [f for f in LAYOUT_FIELDS if rows and f not in rows[0]]
    if not rows or missing:
        raise DataError(f"{root / MANIFEST_CSV} does not say where its crops lie in their sources (no "
                        f"{', '.join(missing) or 'rows'}); a layout model needs a data set made by this version of "
                        "`microdiff prepare` (or `synth layers`), or train without model.layout")
    by_file = {r["file"]: r for r in rows}
    regions, elements, shapes = [], [], []
    for f in files:
        key = Path(f).relative_to(root).as_posix()
        r = by_file.get(key)
        if r is None:
            raise DataError(f"{root / MANIFEST_CSV} does not list {key}; a layout model needs every image's source "
                            "region: make the data set again, or remove the file")
        try:
            top, left, side, sh, sw = (float(r[k]) for k in LAYOUT_FIELDS[:5])
            element = DIHEDRAL_NAMES.index(r["transform"])
        except (ValueError, KeyError):
            raise DataError(f"{root / MANIFEST_CSV}: the row of {key} has no readable crop box, source size and "
                            "transform; make the data set again") from None
        if not (sh > 0 and sw > 0 and side > 0):
            raise DataError(f"{root / MANIFEST_CSV}: the row of {key} gives a source of {sw:g} x {sh:g} px and a "
                            f"crop of {side:g} px; make the data set again")
        regions.append((top / sh, left / sw, side / sh, side / sw))
        elements.append(element)
        shapes.append((sh * image_size / side, sw * image_size / side))
    med = np.median(np.asarray(shapes), axis=0)
    return Regions(np.asarray(regions, dtype=np.float64), np.asarray(elements, dtype=np.int64),
                   (max(image_size, int(round(med[0]))), max(image_size, int(round(med[1])))))
