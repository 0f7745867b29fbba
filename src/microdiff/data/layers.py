"""A layered micrograph with known truth: a coating on a substrate under a free surface.

Non-stationary on purpose: what a crop shows depends on its depth. From the top of a source
image of ``height`` x ``width`` pixels, with interfaces that wander smoothly from column to column:

- the *surface* band (mounting resin above the free surface): dark (0.08), rows above
  ``surface`` x height;
- the *coating*: bright (0.80) with dark pores (0.30, a smoothed random field cut at its
  ``pores`` quantile), down to ``coating`` x height;
- the *substrate*: mid gray (0.45) with a coarser texture (+- 0.12).

Every pixel carries a little noise (0.02). ``layered_image`` draws one source from a NumPy
generator; ``row_profile`` is the statistic that tells a layout from a texture: the mean
intensity of every row, across the columns.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

SURFACE_LEVEL, COATING_LEVEL, PORE_LEVEL, SUBSTRATE_LEVEL = 0.08, 0.80, 0.30, 0.45


@dataclass(frozen=True)
class LayerSettings:
    height: int = 96                 # source image, pixels
    width: int = 128
    surface: float = 0.15            # bottom of the surface band, a fraction of the height
    coating: float = 0.45            # bottom of the coating
    pores: float = 0.2               # the coating's pore fraction
    wander: float = 0.02             # interfaces' smooth excursions, a fraction of the height (std)
    feature: float = 1.5             # pores' smoothing length, pixels (the substrate's: 2 x)


def _smooth_field(rng: np.random.Generator, shape, sigma: float) -> np.ndarray:
    from scipy.ndimage import gaussian_filter
    f = gaussian_filter(rng.standard_normal(shape), sigma, mode="wrap")
    return (f - f.mean()) / (f.std() + 1e-12)


def _interface(rng: np.random.Generator, width: int, level: float, s: LayerSettings) -> np.ndarray:
    """The row (float) of an interface in every column."""
    from scipy.ndimage import gaussian_filter1d
    wander = gaussian_filter1d(rng.standard_normal(width), width / 12, mode="wrap")
    wander /= wander.std() + 1e-12
    return (level + s.wander * wander) * s.height


def layered_image(rng: np.random.Generator, s: LayerSettings = LayerSettings()) -> np.ndarray:
    """One source micrograph (height, width) in [0, 1] (see the module's doc)."""
    rows = np.arange(s.height)[:, None] + 0.5
    top = _interface(rng, s.width, s.surface, s)[None, :]
    bottom = _interface(rng, s.width, s.coating, s)[None, :]
    field = _smooth_field(rng, (s.height, s.width), s.feature)
    pores = field > np.quantile(field, 1 - s.pores)
    coating = np.where(pores, PORE_LEVEL, COATING_LEVEL)
    substrate = SUBSTRATE_LEVEL + 0.12 * _smooth_field(rng, (s.height, s.width), 2 * s.feature)
    img = np.where(rows < top, SURFACE_LEVEL, np.where(rows < bottom, coating, substrate))
    img = img + 0.02 * rng.standard_normal(img.shape)
    return np.clip(img, 0.0, 1.0)


def row_profile(images: np.ndarray) -> np.ndarray:
    """The mean intensity of every row, across the columns: (..., height) of images (..., height, width)."""
    return np.asarray(images, dtype=np.float64).mean(axis=-1)


def profile_error(profiles: np.ndarray, truth: np.ndarray) -> float:
    """Root-mean-square difference (intensity units) of the mean of ``profiles`` (N, H) from ``truth`` (H,)."""
    return float(np.sqrt(np.mean((np.mean(profiles, 0) - truth) ** 2)))
