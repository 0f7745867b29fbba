"""The SEM information bar at the bottom of a micrograph: detected, not hard-coded (38 rows on
the UHCS images, other heights elsewhere), so that no part of it reaches a training image."""
from __future__ import annotations

import numpy as np


def bar_like_rows(img: np.ndarray) -> np.ndarray:
    """Rows that look like an SEM information bar: mostly one value (the bar's flat background,
    with text and a scale bar on it) or saturated black/white."""
    q = np.clip(np.rint(img * 255), 0, 255).astype(np.int64)
    h, w = q.shape
    counts = np.zeros((h, 256), dtype=np.int64)
    np.add.at(counts, (np.repeat(np.arange(h), w), q.ravel()), 1)
    mode_frac = counts.max(1) / w
    saturated = (counts[:, 0] + counts[:, 255]) / w
    return (mode_frac >= 0.6) | (saturated >= 0.6)


def detect_bar(img: np.ndarray, max_fraction: float = 0.25, gap: int = 8) -> int:
    """Height of the data bar at the bottom of ``img`` (0 if none).

    Walks up from the bottom row through bar-like rows, tolerating runs of fewer than ``gap``
    other rows (lines of text); the bar ends at the topmost bar-like row before a longer run of
    micrograph rows. A bar taller than ``max_fraction`` of the image is not believed.
    """
    rows = bar_like_rows(img)
    h = len(rows)
    if not rows[-1]:
        return 0
    top, miss = h - 1, 0
    for r in range(h - 1, -1, -1):
        if rows[r]:
            top, miss = r, 0
        else:
            miss += 1
            if miss >= gap:
                break
    height = h - top
    return height if height <= max_fraction * h else 0
