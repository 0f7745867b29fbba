"""Synthetic fiber-composite cross-sections, like the paper's model II data (Section 2.1.2).

Non-overlapping fibers with radius scatter and slight ellipticity, packed to an exact fiber
volume content (FVC) by a vectorised soft-disk relaxation (random positions, then pairwise
overlaps pushed apart under periodic boundaries), rendered with anti-aliased edges, then made
micrograph-like: per-fiber brightness, radial shading, an uneven matrix, blur and noise. The
images are periodic (they tile seamlessly). Pure functions of a seed; no files.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

FIBER_CLASSES = {"FVC40": 0.40, "FVC50": 0.50, "FVC60": 0.60}


class PackingError(RuntimeError):
    """The fibers could not be packed without overlaps."""


@dataclass(frozen=True)
class FiberSettings:
    size: int = 64
    radius: float | None = None        # mean fiber radius in pixels; default size / 14
    radius_scatter: float = 0.08       # relative std of the radius
    max_ellipticity: float = 0.05      # semi-axes r(1 + e), r(1 - e), e ~ U(0, max)
    gap: float = 0.4                   # minimum gap between circumscribed circles, pixels
    blur: float = 0.6                  # Gaussian blur sigma, pixels
    noise: float = 0.03                # additive Gaussian noise std
    relax_iterations: int = 2000

    @property
    def mean_radius(self) -> float:
        return self.radius if self.radius is not None else self.size / 14.0


def draw_fibers(rng: np.random.Generator, fvc: float, s: FiberSettings):
    """Radii, ellipticities and orientations whose ellipse areas sum to exactly fvc * size^2."""
    if not 0 < fvc < 0.75:
        raise ValueError(f"fiber volume content {fvc} is outside (0, 0.75)")
    area = fvc * s.size ** 2
    r0 = s.mean_radius
    n = max(1, int(round(area / (math.pi * r0 ** 2))))
    r = r0 * np.clip(1 + s.radius_scatter * rng.standard_normal(n), 0.7, 1.3)
    e = rng.uniform(0, s.max_ellipticity, n)
    r *= math.sqrt(area / np.sum(math.pi * r ** 2 * (1 - e ** 2)))
    theta = rng.uniform(0, math.pi, n)
    return r, e, theta


def pack(rng: np.random.Generator, radii: np.ndarray, size: float, gap: float,
         iterations: int = 2000) -> np.ndarray:
    """Centres (n, 2) of non-overlapping disks of ``radii`` in a periodic square of side ``size``.

    Starts from uniform random positions and repeatedly moves every overlapping pair apart along
    the line between them (all pairs at once); converges for area fractions well below jamming.
    """
    n = len(radii)
    pos = rng.uniform(0, size, (n, 2))
    need = radii[:, None] + radii[None, :] + gap
    np.fill_diagonal(need, 0)
    for it in range(iterations):
        d = pos[:, None, :] - pos[None, :, :]
        d -= size * np.rint(d / size)                        # minimum image
        dist = np.sqrt((d ** 2).sum(-1))
        np.fill_diagonal(dist, np.inf)
        over = np.maximum(need - dist, 0.0)
        if over.max() < 1e-3:
            return pos % size
        # push each disk by half the overlap (slightly more to converge), weighted per pair
        unit = d / np.where(dist > 1e-9, dist, 1.0)[..., None]
        push = (0.55 * over)[..., None] * unit
        if it % 50 == 49:                                   # jitter to escape stalled configurations
            pos += rng.normal(0, 0.05, pos.shape) * (over.max(1) > 0)[:, None]
        pos = (pos + push.sum(1)) % size
    raise PackingError(f"could not pack {n} fibers of radius ~{np.mean(radii):.1f} px without overlap in a "
                       f"{size:g} px square")


def render_coverage(pos: np.ndarray, r: np.ndarray, e: np.ndarray, theta: np.ndarray,
                    size: int) -> tuple[np.ndarray, np.ndarray]:
    """Anti-aliased fiber coverage in [0, 1] (periodic) and each pixel's normalised radius
    within its fiber (for shading)."""
    y, x = np.mgrid[0:size, 0:size] + 0.5
    cov = np.zeros((size, size))
    rad = np.ones((size, size))
    ident = np.full((size, size), -1, dtype=np.int64)
    for i in range(len(r)):
        dx = x - pos[i, 0]
        dy = y - pos[i, 1]
        dx -= size * np.rint(dx / size)
        dy -= size * np.rint(dy / size)
        c, s_ = math.cos(theta[i]), math.sin(theta[i])
        u = c * dx + s_ * dy
        v = -s_ * dx + c * dy
        a, b = r[i] * (1 + e[i]), r[i] * (1 - e[i])
        d = np.sqrt((u / a) ** 2 + (v / b) ** 2)
        sd = (d - 1) * math.sqrt(a * b)                      # approx. signed distance, pixels
        cv = np.clip(0.5 - sd, 0, 1)
        cov = np.maximum(cov, cv)
        inside = cv > 0
        rad = np.where(inside, np.minimum(rad, d), rad)
        ident = np.where(inside & (ident < 0), i, ident)
    return cov, rad, ident


def _smooth_noise(rng: np.random.Generator, size: int, sigma: float) -> np.ndarray:
    f = np.fft.fft2(rng.standard_normal((size, size)))
    return np.real(np.fft.ifft2(f * _gauss_tf(size, sigma)))


def _gauss_tf(size: int, sigma: float) -> np.ndarray:
    k = np.fft.fftfreq(size)
    return np.exp(-2 * (math.pi * sigma) ** 2 * (k[:, None] ** 2 + k[None, :] ** 2))


def fiber_image(seed: int | np.random.SeedSequence, fvc: float, settings: FiberSettings = FiberSettings()):
    """One micrograph-like image (float32 in [0, 1], periodic) and its measured fiber fraction
    (the mean anti-aliased coverage), which lies within 1 point of ``fvc``."""
    rng = np.random.default_rng(seed)
    s = settings
    r, e, th = draw_fibers(rng, fvc, s)
    pos = pack(rng, r * (1 + e), s.size, s.gap, s.relax_iterations)
    cov, rad, ident = render_coverage(pos, r, e, th, s.size)
    return micrograph_look(rng, cov, rad, ident, len(r), s), float(cov.mean()), len(r)


def micrograph_look(rng: np.random.Generator, cov: np.ndarray, rad: np.ndarray, ident: np.ndarray, count: int,
                    s: FiberSettings) -> np.ndarray:
    """A square section's phase coverage (anti-aliased, [0, 1]) rendered like a micrograph: the
    matrix dark and uneven, the phase bright (one brightness per particle ``ident``, -1 = none)
    with radial shading by ``rad`` (0 at a centre, 1 at the edge), blur and noise; float32."""
    size = cov.shape[0]
    matrix = 0.28 + 0.04 * _smooth_noise(rng, size, size / 8) / 0.1
    bright = 0.78 + 0.05 * rng.standard_normal(count)
    fib = np.where(ident >= 0, bright[np.maximum(ident, 0)] if count else 0.78, 0.78) \
        * (1 - 0.12 * np.clip(rad, 0, 1) ** 2)
    img = cov * fib + (1 - cov) * matrix
    if s.blur > 0:
        img = np.real(np.fft.ifft2(np.fft.fft2(img) * _gauss_tf(size, s.blur)))
    img = img + s.noise * rng.standard_normal(img.shape)
    return np.clip(img, 0, 1).astype(np.float32)


def fiber_fraction(img: np.ndarray) -> float:
    """Fraction of pixels brighter than the Otsu threshold (fibers are the bright phase)."""
    import torch

    from ..metrics.descriptors import volume_fraction
    return float(volume_fraction(torch.from_numpy(np.asarray(img, dtype=np.float64)))[0])
