"""Copy check: how close each image comes to a training image once orientation and a small shift
are forgiven.

The distance of an image q to a training set T is

    d(q) = min over t in T, g in D4, |dy|, |dx| <= s of  100 (1 - r(g(q)[w + (dy, dx)], t[w]))

in %, with r the Pearson correlation of the pixels and w the central window of side S - 2s (so
every shifted window lies inside the image): a generated image that is a rotated, mirrored or
slightly moved training image scores ~0, where an image of the same texture that is not a copy
scores about what a real unseen image does. The correlation, not the squared difference, so that
a copy is one whatever its brightness and contrast, and real micrographs from another session of
the microscope (brighter, or of other contrast) are not farther from the training set than a
copy of it for that alone (seen on UHCS: with plain pixels the held-out micrographs' distances sat
above unrelated generated images'). A flat window has no correlation: it scores 100.
Images larger than ``COPY_SIDE`` are first area-averaged by an integer factor (a copy stays a
copy; the floor, computed the same way, moves with it).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from ..data.transforms import DIHEDRAL_NAMES, dihedral

COPY_SIDE = 64          # images are compared at most this side (area-averaged by an integer factor)


@dataclass(frozen=True)
class CopyMatch:
    """Per query image: the distance (100 x (1 - correlation), in %), the closest training image,
    and the transform and shift that bring the query onto it."""
    distance: np.ndarray          # (N,) in %: 100 x (1 - Pearson correlation of the pixels)
    index: np.ndarray             # (N,) training image
    transform: np.ndarray         # (N,) element of D4 (DIHEDRAL_NAMES) applied to the query
    shift: np.ndarray             # (N, 2) (dy, dx) of the query's window
    factor: int                   # the area-averaging factor the images were compared at

    def transform_name(self, i: int) -> str:
        return DIHEDRAL_NAMES[int(self.transform[i])]


def comparison_factor(side: int) -> int:
    return max(1, -(-side // COPY_SIDE))


def _shrink(x: Tensor, factor: int) -> Tensor:
    if factor == 1:
        return x
    return torch.nn.functional.avg_pool2d(x[:, None], factor)[:, 0]


def _standardise(rows: Tensor) -> Tensor:
    """Each row minus its mean, divided by its norm (a flat row stays 0): dot products are correlations."""
    c = rows - rows.mean(1, keepdim=True)
    return c / c.norm(dim=1, keepdim=True).clamp(min=1e-12)


def copy_distances(query: Tensor, train: Tensor, shift: int = 2, chunk: int = 4,
                   train_chunk: int = 2048) -> CopyMatch:
    """``d(q)`` (see the module) of every image of ``query`` (N, S, S) to ``train`` (M, S, S),
    both float in [0, 1]."""
    if query.ndim != 3 or train.ndim != 3 or query.shape[-2:] != train.shape[-2:] or query.shape[-1] != query.shape[-2]:
        raise ValueError(f"copy_distances needs square (N, S, S) stacks of one size, got {tuple(query.shape)} "
                         f"and {tuple(train.shape)}")
    if not len(train):
        raise ValueError("no training images to compare with")
    factor = comparison_factor(query.shape[-1])
    q, t = _shrink(query.float(), factor), _shrink(train.float(), factor)
    side = q.shape[-1]
    s = min(shift, (side - 1) // 4)
    w = side - 2 * s
    tw = _standardise(t[:, s:s + w, s:s + w].reshape(len(t), -1))
    offsets = [(dy, dx) for dy in range(-s, s + 1) for dx in range(-s, s + 1)]
    n = len(q)
    best = np.full(n, np.inf)
    index = np.zeros(n, dtype=np.int64)
    transform = np.zeros(n, dtype=np.int64)
    shifts = np.zeros((n, 2), dtype=np.int64)
    for a in range(0, n, chunk):
        qc = q[a:a + chunk]
        variants = torch.stack([dihedral(qc, k)[:, s + dy:s + dy + w, s + dx:s + dx + w]
                                for k in range(8) for dy, dx in offsets], 1)        # (c, V, w, w)
        v = _standardise(variants.reshape(len(qc) * variants.shape[1], -1))
        for b in range(0, len(tw), train_chunk):
            d = (1 - v @ tw[b:b + train_chunk].T).clamp(min=0)                     # 1 - correlation
            d = d.reshape(len(qc), -1)                                               # (c, V * m)
            val, arg = d.min(1)
            m = min(train_chunk, len(tw) - b)
            for i in range(len(qc)):
                dist = float(val[i])
                if dist < best[a + i]:
                    vi, ti = divmod(int(arg[i]), m)
                    best[a + i], index[a + i] = dist, b + ti
                    transform[a + i] = vi // len(offsets)
                    shifts[a + i] = offsets[vi % len(offsets)]
    return CopyMatch(100 * best, index, transform, shifts, factor)


EMPIRICAL_FROM = 100      # floors of at least this many images: the empirical percentile; fewer: a log-normal fit


def floor_percentile(floor: np.ndarray, percentile: float = 1.0) -> float:
    """The ``percentile``-th percentile of the floor's distances: empirical for EMPIRICAL_FROM
    images or more, else the predictive quantile of a log-normal fitted to them (an empirical 1st
    percentile of a few dozen values is their minimum, which independent images undercut far
    more than 1 % of the time)."""
    from scipy.stats import t as student
    floor = np.asarray(floor, dtype=np.float64)
    if len(floor) >= EMPIRICAL_FROM:
        return float(np.percentile(floor, percentile))
    if len(floor) < 3:
        return float(floor.min())
    logs, n = np.log(np.maximum(floor, 1e-12)), len(floor)
    # the predictive quantile of one new value (Student t with the fit's own uncertainty), so that
    # an independent image falls below it ``percentile`` % of the time, not more
    q = student.ppf(percentile / 100, n - 1) * logs.std(ddof=1) * np.sqrt(1 + 1 / n)
    return float(np.exp(logs.mean() + q))


def closer_than_floor(distance: np.ndarray, floor: np.ndarray, percentile: float = 1.0) -> tuple[float, float]:
    """(the floor's ``percentile``-th percentile, ``floor_percentile``; the fraction of
    ``distance`` strictly below it)."""
    cut = floor_percentile(floor, percentile)
    return cut, float(np.mean(np.asarray(distance) < cut))
