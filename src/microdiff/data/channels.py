"""A training set in memory, in the encoding its data set calls for (``data.encoding``).

``data_encoding(root)`` says how a data folder is to be read: ``dataset.json``'s ``phases`` (a
label data set: ``<class>/<name>_labels.png|npy``) or ``color`` (RGB images), else, for a
folder that no microdiff command made, label maps when it holds only ``*_labels.*`` files, gray
otherwise. ``load_class_images`` reads every class at the training size as uint8 (N, C, S, S):
gray levels, RGB, or phase ids (resampled by nearest neighbour, so ids stay exact).
``value_counts`` counts each class's stored values (gray levels or phase ids): what a trained
model keeps of its data's phase fractions.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..core.errors import DataError, ImageError
from .encoding import MAX_PHASES, Encoding
from .io import center_box, crop, crop_resample, list_class_images, list_images, read_label_stack, read_raw, to_uint8, to_unit_float

__all__ = ["data_encoding", "ImageSet", "load_class_images", "resample_labels", "value_counts", "class_shares", "share_above"]


def data_encoding(root: str | Path) -> Encoding:
    """The encoding of the data folder ``root`` (see the module's doc)."""
    root = Path(root)
    meta = {}
    if (root / "dataset.json").is_file():
        try:
            meta = json.loads((root / "dataset.json").read_text())
        except (OSError, ValueError) as e:
            raise DataError(f"{root / 'dataset.json'}: not readable JSON ({e}); make the data set again") from None
    if meta.get("phases"):
        k = meta["phases"]
        if not isinstance(k, int) or not 2 <= k <= MAX_PHASES:
            raise DataError(f"{root / 'dataset.json'}: phases = {k!r}; expected 2..{MAX_PHASES}")
        return Encoding("phases", k)
    if meta.get("color"):
        return Encoding("rgb")
    dirs = [d for d in root.iterdir() if d.is_dir() and not d.name.startswith(".")] if root.is_dir() else []
    if not meta and dirs and all(list_images(d, labels=True) and not list_images(d) for d in dirs):
        top = max(int(read_label_stack(list_images(d, labels=True)).max()) for d in dirs)
        return Encoding("phases", max(2, top + 1))
    return Encoding("gray")


def resample_labels(ids: np.ndarray, size: int) -> np.ndarray:
    """A square label map at ``size`` x ``size`` by nearest neighbour (ids are never interpolated)."""
    n = ids.shape[0]
    if n == size:
        return ids
    idx = np.minimum(((np.arange(size) + 0.5) * n / size).astype(np.int64), n - 1)
    return ids[np.ix_(idx, idx)]


@dataclass
class ImageSet:
    """A class-folder tree in memory: uint8 images (N, C, S, S), labels (N,), class names, the
    encoding, and the files that were skipped (with why)."""
    images: np.ndarray
    labels: np.ndarray
    class_names: list[str]
    encoding: Encoding = field(default_factory=Encoding)
    skipped: list[str] = field(default_factory=list)
    files: list[Path] = field(default_factory=list)     # the file of each image


def _read_one(path: Path, enc: Encoding, size: int) -> np.ndarray:
    """One file as uint8 (C, S, S) in the encoding."""
    if enc.kind == "phases":
        ids = read_label_stack([path], enc.phases)[0]
        if int(ids.max(initial=0)) >= enc.phases:
            raise ImageError(f"{path}: phase id {int(ids.max())} in a data set of {enc.phases} phases (0.."
                             f"{enc.phases - 1})")
        return resample_labels(crop(ids, center_box(*ids.shape)), size)[None]
    if enc.kind == "rgb":
        rgb = to_unit_float(read_raw(path, color=True), str(path))
        sq = crop(rgb, center_box(*rgb.shape[:2]))
        return np.stack([to_uint8(crop_resample(sq[..., c], size)) for c in range(3)])
    from .io import read_image
    return to_uint8(crop_resample(read_image(path), size))[None]


def load_class_images(root: str | Path, image_size: int, encoding: Encoding | None = None) -> ImageSet:
    """All images of a class-folder tree in ``encoding`` (default ``data_encoding(root)``),
    brought to ``image_size`` (a centred square; gray and RGB resampled as ``io.crop_resample``,
    labels by nearest neighbour). Unreadable files are skipped and reported; a class left without
    images is an error."""
    enc = encoding or data_encoding(root)
    classes = list_class_images(root, labels=enc.kind == "phases")
    images, labels, skipped, read = [], [], [], []
    for ci, (name, files) in enumerate(classes.items()):
        n_ok = 0
        for f in files:
            try:
                images.append(_read_one(f, enc, image_size))
            except ImageError as e:
                skipped.append(e.args[0])        # its settings named when logged (core.errors.say)
                continue
            labels.append(ci)
            read.append(Path(f))
            n_ok += 1
        if n_ok == 0:
            why = f" (the first skipped: {skipped[-1]})" if skipped else ""
            raise DataError(f"class folder {Path(root) / name} has no readable images{why}; fix what the reason says, "
                            "add images, or remove the folder")
    return ImageSet(np.stack(images), np.asarray(labels, dtype=np.int64), list(classes), enc, skipped, read)


def value_counts(images: ImageSet) -> dict | None:
    """How often each stored value occurs in each class's images, ``{"kind": "gray" | "phases",
    "counts": {class: [n_0, n_1, ...]}}`` (256 gray levels, or the K phase ids); None for colour.
    A model keeps it (``microdiff.json``) so that what is generated from it can be held to the
    training data's phase fractions rather than to its own samples' (``generate.volumes``)."""
    enc = images.encoding
    if enc.kind == "rgb":
        return None
    bins = 256 if enc.kind == "gray" else enc.phases
    return {"kind": enc.kind,
            "counts": {name: np.bincount(images.images[images.labels == i, 0].ravel(), minlength=bins).tolist()
                       for i, name in enumerate(images.class_names)}}


def _weighted(statistics: dict | None, kind: str, classes) -> np.ndarray | None:
    """The value distribution of ``classes`` (each counting once per use), or None without counts."""
    if not statistics or statistics.get("kind") != kind:
        return None
    dists = [np.asarray(statistics["counts"][c], dtype=np.float64) for c in classes]
    return np.mean([d / d.sum() for d in dists], axis=0)


def class_shares(statistics: dict | None, classes) -> np.ndarray | None:
    """The phases' shares (K,) in the training images of ``classes`` (a class counted once per
    time it is named: the classes of a volume's three axes), from ``value_counts``; None when the
    model keeps no phase counts."""
    return _weighted(statistics, "phases", classes)


def share_above(statistics: dict | None, classes, cut: float) -> float | None:
    """The share of the training images of ``classes`` (weighted as ``class_shares``) brighter than
    ``cut`` (a gray level in [0, 1]), from ``value_counts``; None when the model keeps no gray counts."""
    dist = _weighted(statistics, "gray", classes)
    return None if dist is None else float(dist[np.arange(256) / 255.0 > cut].sum())
