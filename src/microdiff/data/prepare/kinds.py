"""What ``prepare`` reads a source as, and how a crop of it is rendered: ``gray`` micrographs
(the paper), ``color`` (RGB, three channels) or ``labels`` (segmented phase-label maps: PNG,
TIFF or NPY of small integer phase ids), and the crop side of a class (``crop_side``: a class
of one micrograph is cut into crops of the training size at its own resolution). Label maps are cropped, turned and resampled by
nearest neighbour only, so every id stays exact; they are written as ``<name>_labels.png``
with phase k at gray round(255 k / (K - 1)) (exactly invertible with K from ``dataset.json``).
"""
from __future__ import annotations

import numpy as np

from ...core.errors import PrepareError
from ..io import crop, read_image, read_labels, read_raw, resample, to_unit_float
from ..transforms import dihedral

CHANNELS = ("gray", "color", "labels")


def read_source(path, channels: str) -> np.ndarray:
    """A source image: gray (H, W) float in [0, 1], colour (H, W, 3) float, or labels (H, W) uint8 ids."""
    if channels == "labels":
        return read_labels(path)
    if channels == "color":
        return to_unit_float(read_raw(path, color=True), str(path))
    return read_image(path)


def gray_view(img: np.ndarray, channels: str) -> np.ndarray | None:
    """The gray image the SEM data bar is looked for in (None for label maps: no bar)."""
    if channels == "labels":
        return None
    return img.mean(-1) if img.ndim == 3 else img


def render_crop(img: np.ndarray, box, transform: int, size: int, channels: str, phases: int = 0):
    """(name suffix, the image to write in [0, 1]) of one planned crop."""
    c = crop(img, box)
    if channels == "labels":
        from ..channels import resample_labels
        from ..encoding import label_levels
        return "_labels", label_levels(resample_labels(dihedral(c, transform), size), phases)
    if channels == "color":
        planes = dihedral(np.moveaxis(c, -1, 0), transform)
        return "", np.stack([resample(p, size) for p in planes], -1)
    return "", resample(dihedral(c, transform), size)


def check_phase_counts(sources) -> int:
    """The data set's phase count K (the largest id + 1 over all maps); every class must reach
    the same K, else the classes' phases would not mean the same thing."""
    per_class: dict[str, int] = {}
    for s in sources:
        per_class[s.cls] = max(per_class.get(s.cls, 0), s.phases)
    ks = sorted(set(per_class.values()))
    if len(ks) > 1:
        which = ", ".join(f"{c}: {k}" for c, k in per_class.items())
        raise PrepareError(f"the classes' label maps have different phase counts ({which}); a phase id must mean "
                           "the same phase in every class: renumber the maps or prepare the classes separately")
    k = ks[0] if ks else 2
    if k < 2:
        raise PrepareError("the label maps hold one phase only (every id 0); a label map needs at least two phases")
    return k


def crop_side(sources, idx: list[int], settings, single_image: bool = True) -> int | None:
    """The crop side of a class: ``crop_size``, or for a class of one micrograph the training
    size itself (crops at the image's own resolution, nothing resampled) when it is at least twice
    that size, else None (the policy)."""
    if settings.crop_size is not None:
        return settings.crop_size
    one = sources[idx[0]] if len(idx) == 1 else None
    if single_image and one is not None and one.regions is None and min(one.height, one.width) >= 2 * settings.size:
        return settings.size
    return None


def single_image_note(cls: str, s, side: int, target: int, keep_orientation: bool = False) -> str:
    short = min(s.height, s.width)
    turns = "mirrors and half turns" if keep_orientation else "rotations and mirrors"
    note = (f"class {cls}: one micrograph ({s.width}x{s.height} px): {target} crops of {side} px at its own "
            f"resolution (tiles, then random crops with {turns})")
    if short < 4 * side:
        note += (f"; it is less than 4x the crop size, so the crops overlap heavily: a single image of at least "
                 f"{4 * side} px gives the model varied windows")
    return note
