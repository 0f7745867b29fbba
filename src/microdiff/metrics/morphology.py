"""Morphological descriptors of a phase: chord lengths, local thickness, Euler characteristic.

All take a binary indicator array (1 = the phase) of shape (Z, Y, X), or (Y, X) for a planar
section, axis order z, y, x as in ``volume``, lengths in voxels, and return numbers or arrays
whose shape depends only on the input's shape. The array is taken as bounded (a window on a
larger structure), in 2D as in 3D:

- ``chord_length_distribution``: (ndim, L) fraction of the chords of the phase along each axis
  that are l = 1 ... L voxels long, L = max(shape). A chord is a maximal run of phase voxels on a
  line parallel to the axis; runs that touch the two faces normal to the axis are cut by the
  window and are dropped unless ``drop_boundary=False`` (porespy's ``regions_to_chords``
  convention, by default it also trims the edge chords). ``mean_chord_length``: (ndim,) their
  mean, nan where an axis has no chord. For a bounded phase, unweighted over chords, the mean
  along one axis is the phase volume over its projected area (e.g. 4R/3 for a ball), and for an
  isotropic structure it is the stereological 4 vf / S_V (Torquato 2002, sec. 2.4).
- ``local_thickness``: per voxel of the phase, the radius of the largest ball that contains the
  voxel and lies inside the phase (Hildebrand & Rueegsegger 1997), on integer radii, as porespy's
  ``local_thickness`` (``porosimetry`` without access limitation, ``mode='dt'``) with
  ``sizes = r_max, ..., 2, 1``: a voxel gets the largest r such that it lies at a distance < r
  from a centre whose Euclidean distance transform is >= r. Radii, not diameters: a ball of
  radius R reads R, a slab of even thickness t reads t/2. ``pore_size_distribution`` is its
  volume-weighted histogram over r = 1 ... r_max, r_max = ceil(max(shape) / 2), radii above r_max
  clipped to it; ``mean_local_thickness`` its mean over the phase's voxels.
- ``euler_density``: the Euler characteristic (number of components - tunnels + cavities in 3D;
  components - holes in 2D) per voxel, by ``skimage.measure.euler_number`` with the phase
  26-connected (8 in 2D) and its complement 6-connected (4 in 2D) by default; the window is closed
  off by the complement (scikit-image pads with background).
"""
from __future__ import annotations

import functools
import hashlib
import math

import numpy as np


def _indicator(ind) -> np.ndarray:
    a = np.asarray(ind)
    if a.ndim not in (2, 3):
        raise ValueError(f"expected a 2D or 3D indicator, got shape {a.shape}")
    return a.astype(bool)


_MEMO: dict = {}


def _memo(kind: str, a: np.ndarray, settings: tuple, compute):
    """``compute(a)`` remembered for the last array of each kind (a descriptor's histogram and
    mean read the same computation; ``describe`` asks for both)."""
    key = (a.shape, settings, hashlib.blake2b(np.packbits(a).tobytes(), digest_size=16).digest())
    hit = _MEMO.get(kind)
    if hit is not None and hit[0] == key:
        return hit[1]
    value = compute(a)
    _MEMO[kind] = (key, value)
    return value


# ----------------------------------------------------------------------------- chords


def chord_lengths(ind, axis: int, drop_boundary: bool = True) -> np.ndarray:
    """The lengths (voxels) of the chords of the phase along ``axis``: maximal runs of phase voxels
    on lines parallel to it; runs touching either face normal to the axis are dropped when
    ``drop_boundary``."""
    a = _indicator(ind)
    n = a.shape[axis]
    lines = np.moveaxis(a, axis, -1).reshape(-1, n)
    padded = np.zeros((lines.shape[0], n + 2), dtype=np.int8)
    padded[:, 1:-1] = lines
    step = np.diff(padded, axis=1)
    starts = np.nonzero(step == 1)[1]        # row-major order: starts and ends alternate per line
    ends = np.nonzero(step == -1)[1]         # exclusive
    lengths = ends - starts
    if drop_boundary:
        lengths = lengths[(starts > 0) & (ends < n)]
    return lengths


def _chord_counts(a: np.ndarray, drop_boundary: bool) -> np.ndarray:
    size = max(a.shape)
    return np.stack([np.bincount(chord_lengths(a, ax, drop_boundary), minlength=size + 1)[1:size + 1]
                     for ax in range(a.ndim)]).astype(np.float64)


def chord_length_distribution(ind, drop_boundary: bool = True, weight: str = "count") -> np.ndarray:
    """(ndim, L) the chord-length distribution of the phase along each axis (z, y, x): row a,
    column l - 1 is the fraction of the chords along axis a that are l voxels long, l = 1 ... L,
    L = max(shape) (columns past an axis's own length are 0). ``weight="count"`` counts chords
    (porespy's ``chord_length_distribution(normalization='count')``), ``"length"`` weights each by
    its length (the fraction of chord voxels). A row with no chord is all 0. Chords touching the
    faces normal to the axis are dropped unless ``drop_boundary=False``."""
    if weight not in ("count", "length"):
        raise ValueError(f"weight must be 'count' or 'length', not {weight!r}")
    a = _indicator(ind)
    counts = _memo("chords", a, (drop_boundary,), lambda x: _chord_counts(x, drop_boundary))
    if weight == "length":
        counts = counts * np.arange(1, counts.shape[1] + 1)
    total = counts.sum(axis=1, keepdims=True)
    return np.divide(counts, total, out=np.zeros_like(counts), where=total > 0)


def mean_chord_length(ind, drop_boundary: bool = True) -> np.ndarray:
    """(ndim,) the mean chord length (voxels) of the phase along each axis (z, y, x), over chords
    (each chord counts once), nan for an axis without chords; ``chord_length_distribution``."""
    a = _indicator(ind)
    counts = _memo("chords", a, (drop_boundary,), lambda x: _chord_counts(x, drop_boundary))
    total = counts.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, counts @ np.arange(1, counts.shape[1] + 1) / total, np.nan)


# ----------------------------------------------------------------------------- local thickness


def _max_radius(shape) -> int:
    return int(math.ceil(max(shape) / 2))


@functools.lru_cache(maxsize=64)
def _ball_offsets(ndim: int, r: int) -> np.ndarray:
    """(m, ndim) the integer offsets v with |v| < r."""
    g = np.indices((2 * r - 1,) * ndim).reshape(ndim, -1).T - (r - 1)
    return g[(g * g).sum(1) < r * r]


def _paint(out: np.ndarray, centres: np.ndarray, r: int, value: float) -> None:
    """Set ``value`` in the voxels of ``out`` that are 0 and lie at a distance < r from one of the
    ``centres`` (k, ndim): painted offset by offset when that is cheap, else from the distance
    transform of the centres' complement inside their bounding box grown by r."""
    from scipy import ndimage
    lo = np.maximum(centres.min(0) - r + 1, 0)
    hi = np.minimum(centres.max(0) + r, out.shape)
    view = out[tuple(slice(int(a), int(b)) for a, b in zip(lo, hi))]
    ball = math.pi * r * r * (4 * r / 3 if out.ndim == 3 else 1)
    if len(centres) * ball <= 8 * out.size:          # about the cost of one distance transform
        offsets = _ball_offsets(out.ndim, r)
        # flat indices into the box padded by r - 1 on every side: no bounds to check
        pad = r - 1
        shape = np.array(view.shape) + 2 * pad
        strides = np.r_[np.cumprod(shape[::-1])[:-1][::-1], 1]
        flat_c = (centres - lo + pad) @ strides
        flat_o = offsets @ strides
        covered = np.zeros(int(np.prod(shape)), dtype=bool)
        chunk = max(1, 2 ** 22 // len(flat_c))
        for k in range(0, len(flat_o), chunk):
            covered[(flat_c[:, None] + flat_o[None, k:k + chunk]).ravel()] = True
        covered = covered.reshape(shape)[tuple(slice(pad, pad + n) for n in view.shape)]
    else:
        seeds = np.ones(view.shape, dtype=bool)
        seeds[tuple((centres - lo).T)] = False
        covered = ndimage.distance_transform_edt(seeds) < r
    view[covered & (view == 0)] = value


def local_thickness(ind) -> np.ndarray:
    """(shape) float: per voxel of the phase the radius (voxels, an integer 1 ... r_max,
    r_max = ceil(max(shape) / 2)) of the largest ball that contains it and lies inside the phase;
    0 outside the phase. Balls are centred on voxels: a centre c admits radius r when its
    Euclidean distance to the nearest voxel outside the phase is >= r, and its ball covers the
    voxels at a distance < r (porespy's ``local_thickness``, ``mode='dt'``, integer sizes). The
    array's faces are not walls (only voxels inside it bound the balls); a phase filling the whole
    array reads r_max.

    Computed exactly as porespy's sweep r = r_max ... 1, but at radius r only from the centres
    whose admissible radius R(c) = min(floor(edt), r_max) is r and that have no face neighbour
    with R >= r + 1: the other centres' balls of radius r lie inside balls already swept."""
    from scipy import ndimage
    a = _indicator(ind)
    out = np.zeros(a.shape)
    if not a.any():
        return out
    r_max = _max_radius(a.shape)
    dt = ndimage.distance_transform_edt(a) if not a.all() else np.full(a.shape, np.inf)
    rad = np.minimum(np.floor(dt), r_max).astype(np.int32)
    near = ndimage.maximum_filter(rad, footprint=ndimage.generate_binary_structure(a.ndim, 1), mode="constant", cval=0)
    idx = np.nonzero((rad >= 2) & (near <= rad))
    radii = rad[idx]
    order = np.argsort(-radii, kind="stable")
    centres, radii = np.stack(idx, axis=1)[order], radii[order]
    cuts = np.flatnonzero(np.diff(radii)) + 1
    for group, group_r in zip(np.split(centres, cuts), np.split(radii, cuts)):
        if len(group):
            _paint(out, group, int(group_r[0]), float(group_r[0]))
    out[a & (out == 0)] = 1.0                      # every phase voxel is the centre of a ball of radius 1
    return out


def _thickness_counts(a: np.ndarray) -> np.ndarray:
    lt = local_thickness(a)
    return np.bincount(lt[a].astype(np.int64), minlength=_max_radius(a.shape) + 1)[1:].astype(np.float64)


def pore_size_distribution(ind) -> np.ndarray:
    """(r_max,) the volume-weighted distribution of the local thickness (``local_thickness``):
    entry r - 1 is the fraction of the phase's voxels whose largest inscribed ball has radius r,
    r = 1 ... r_max = ceil(max(shape) / 2); all 0 for an empty phase."""
    a = _indicator(ind)
    counts = _memo("thickness", a, (), _thickness_counts)
    total = counts.sum()
    return counts / total if total > 0 else np.zeros_like(counts)


def mean_local_thickness(ind) -> float:
    """The mean over the phase's voxels of the local thickness radius (voxels); nan for an empty
    phase."""
    a = _indicator(ind)
    counts = _memo("thickness", a, (), _thickness_counts)
    total = counts.sum()
    return float(counts @ np.arange(1, counts.size + 1) / total) if total > 0 else float("nan")


# ----------------------------------------------------------------------------- topology


def euler_number(ind, connectivity: int | None = None) -> int:
    """The Euler characteristic of the phase (``skimage.measure.euler_number``): in 3D components
    - tunnels + cavities (ball 1, torus 0, hollow shell 2), in 2D components - holes (disk 1,
    annulus 0). ``connectivity`` of the phase: ndim (default: 26 neighbours in 3D, 8 in 2D, the
    complement 6 / 4) or 1 (6 / 4, the complement 26 / 8). Outside the array is the complement."""
    try:
        from skimage.measure import euler_number as _euler
    except ImportError as e:
        from ..core.errors import UsageError
        raise UsageError(f"the Euler characteristic needs scikit-image: pip install scikit-image; {e}") from None
    a = _indicator(ind)
    connectivity = a.ndim if connectivity is None else connectivity
    if connectivity not in (1, a.ndim):
        raise ValueError(f"connectivity must be 1 or {a.ndim} for a {a.ndim}D indicator, not {connectivity!r}")
    return int(_euler(a, connectivity=connectivity))


def euler_density(ind, connectivity: int | None = None) -> float:
    """The Euler characteristic of the phase (``euler_number``) per voxel of the array."""
    a = _indicator(ind)
    return euler_number(a, connectivity) / a.size
