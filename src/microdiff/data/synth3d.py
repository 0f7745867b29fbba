"""Built-in 3D microstructures whose true volumes are known: training sections and truth.

Three kinds, all periodic cubes (``size``^3 voxels):

- ``grf``: an isotropic two-phase structure, the level cut of a Gaussian random field (white
  noise filtered by a Gaussian of std ``length`` voxels) at the level that gives volume
  fraction ``fraction`` in expectation (Torquato 2002, ch. 8). Every planar section, along any
  axis, is statistically the same. Its anti-aliased coverage is 0.5 + (g - level) / |grad g|.
- ``fiber``: a unidirectional fiber composite with fibers along z: the cross-section packing of
  ``fiber.py`` (exact fiber content, no overlaps), extruded. Sections normal to z show round
  fibers; sections normal to x or y show straight bands along z.
- ``electrode``: a three-phase battery-electrode-like structure: overlapping spherical particles
  (phase 2, random centres and radii, placed until the particle fraction reaches ``fraction``),
  a binder film (phase 1) on about half of their surface (where a smooth random field is high)
  and in the necks between close particles, and pore (phase 0) elsewhere; every pair of phases
  touches (pore | particle too, which an ordering of phases as gray levels cannot make).

Two-phase sections are rendered like micrographs exactly as the 2D fiber data
(``fiber.micrograph_look``); three-phase ones are written as label maps, ``NNNNN_labels.png``
with phase k as gray k / (K - 1), and the data set's ``dataset.json`` says ``phases`` and
``phase_names``.
The section normal to array axis a (0 = z, 1 = y, 2 = x) is the array with that axis removed,
the other two in order: normal to x it is the (z, y) plane, z running down the image. The 3D
sampler (``denoise.volume.PlanarVolumeDenoiser``) cuts its volumes the same way.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..core.checks import check_float, check_int
from ..core.errors import UsageError, SettingError, setting
from .fiber import FiberSettings, PackingError, draw_fibers, micrograph_look, pack, render_coverage

AXES = "zyx"                      # array axis 0, 1, 2 of a volume


@dataclass(frozen=True)
class Phases3D:
    """A true volume: the phase coverage (anti-aliased, [0, 1]) and what rendering needs."""
    coverage: np.ndarray          # (Z, Y, X) float
    rad: np.ndarray               # normalised radius within a particle (shading), 1 outside
    ident: np.ndarray             # particle id, -1 outside
    count: int                    # particles
    phases: np.ndarray | None = None  # uint8 phase ids of a kind with more than two phases

    @property
    def labels(self) -> np.ndarray:
        """The true phase labels, uint8: the phase ids where given, else 1 where the coverage exceeds 0.5."""
        return self.phases if self.phases is not None else (self.coverage > 0.5).astype(np.uint8)

    def section(self, axis: int, index: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return tuple(np.take(a, index, axis=axis) for a in (self.coverage, self.rad, self.ident))


def grf_volume(rng: np.random.Generator, size: int, fraction: float, length: float = 3.0) -> Phases3D:
    """The level cut of a periodic Gaussian random field, phase where g > level."""
    from scipy.special import ndtri
    k = np.fft.fftfreq(size)
    k2 = k[:, None, None] ** 2 + k[None, :, None] ** 2 + k[None, None, :] ** 2
    g = np.real(np.fft.ifftn(np.fft.fftn(rng.standard_normal((size,) * 3)) * np.exp(-2 * (math.pi * length) ** 2 * k2)))
    g /= _field_std(size, length)
    level = -float(ndtri(fraction))
    grad = np.sqrt(sum(((np.roll(g, -1, ax) - np.roll(g, 1, ax)) / 2) ** 2 for ax in range(3)))
    cov = np.clip(0.5 + (g - level) / np.maximum(grad, 1e-6), 0, 1)
    return Phases3D(cov, np.ones_like(cov), np.full(cov.shape, -1, dtype=np.int64), 0)


def _field_std(size: int, length: float) -> float:
    """The exact standard deviation of the filtered white noise (the filter's L2 norm)."""
    k = np.fft.fftfreq(size)
    f1 = np.exp(-2 * (math.pi * length) ** 2 * k ** 2)
    return float(np.sqrt(np.sum(f1 ** 2) ** 3 / size ** 3))


def fiber_volume(rng: np.random.Generator, size: int, fraction: float, settings: FiberSettings | None = None) -> Phases3D:
    """Straight fibers along z: one packed cross-section repeated over z."""
    s = settings or FiberSettings(size=size)
    r, e, th = draw_fibers(rng, fraction, s)
    pos = pack(rng, r * (1 + e), s.size, s.gap, s.relax_iterations)
    cov, rad, ident = render_coverage(pos, r, e, th, s.size)
    rep = lambda a: np.broadcast_to(a, (size, size, size))  # noqa: E731
    return Phases3D(rep(cov), rep(rad), rep(ident), len(r))


def electrode_volume(rng: np.random.Generator, size: int, fraction: float, radius: tuple[float, float] = (4.0, 7.0),
                     film: float = 2.0, coated: float = 0.5, neck: float = 1.5, length: float = 3.0) -> Phases3D:
    """Particles (2), a partial binder film (1) and pore (0); lengths in voxels at size 64, scaled
    with ``size``. Particles: overlapping balls of radius uniform in ``radius`` until their union
    fills ``fraction``. Binder: every voxel within ``neck`` of two particles (the necks between
    them), and the voxels within ``film`` of the particles where a smooth field (white noise
    filtered by a Gaussian of std ``length``) is high, at the level that makes the binder cover
    the share ``coated`` of the voxels touching the particles (the rest is bare: pore | particle)."""
    from scipy.ndimage import gaussian_filter
    s = size / 64
    d1, d2, count = _ball_distances(rng, size, fraction, radius[0] * s, radius[1] * s, max(film, neck) * s + 1)
    solid = d1 <= 0
    necks = ~solid & (d2 <= neck * s)
    g = gaussian_filter(rng.standard_normal((size,) * 3), length * s, mode="wrap")
    layer = ~solid & ~necks & (d1 <= 1)          # the voxels on the particles' surface outside the necks
    need = (coated * np.count_nonzero(~solid & (d1 <= 1)) - np.count_nonzero(necks & (d1 <= 1))) / max(1, layer.sum())
    level = float(np.quantile(g[layer], 1 - np.clip(need, 0, 1))) if layer.any() else np.inf
    binder = (~solid & (d1 <= film * s) & (g > level)) | necks
    labels = np.where(solid, 2, binder.astype(np.uint8)).astype(np.uint8)
    return Phases3D(solid.astype(np.float32), np.ones(labels.shape, np.float32), np.full(labels.shape, -1, np.int64),
                    count, labels)


def _ball_distances(rng: np.random.Generator, size: int, fraction: float, r_lo: float, r_hi: float,
                    margin: float) -> tuple[np.ndarray, np.ndarray, int]:
    """Periodic balls placed one by one until their union fills ``fraction`` of the cube; per voxel
    the distance to the nearest ball and to the second nearest (<= 0 inside; exact up to
    ``margin`` outside, inf beyond), and the number of balls."""
    d1 = np.full((size,) * 3, np.inf, np.float32)
    d2 = d1.copy()
    target, solid, count = fraction * size ** 3, 0, 0
    while solid < target:
        c, r = rng.uniform(0, size, 3), float(rng.uniform(r_lo, r_hi))
        reach = int(math.ceil(r + margin))
        idx = [np.arange(int(ci) - reach, int(ci) + reach + 2) for ci in c]
        dz, dy, dx = ((i - ci) ** 2 for i, ci in zip(idx, c))
        dist = (np.sqrt(dz[:, None, None] + dy[None, :, None] + dx[None, None, :]) - r).astype(np.float32)
        box = np.ix_(*(i % size for i in idx))
        a, b = d1[box], d2[box]
        solid += int(np.count_nonzero((dist <= 0) & (a > 0)))
        d2[box] = np.minimum(b, np.maximum(a, dist))
        d1[box] = np.minimum(a, dist)
        count += 1
    return d1, d2, count


KINDS = {"grf": grf_volume, "fiber": fiber_volume, "electrode": electrode_volume}
DEFAULT_FRACTION = {"grf": 0.4, "fiber": 0.5, "electrode": 0.4}
PHASE_NAMES = {"electrode": ["pore", "binder", "particle"]}   # the kinds with more than two phases, id order
ORIENTED_KINDS = ("fiber",)       # sections with a preferred direction (bands along z): no quarter turns in training


def section_classes(kind: str) -> dict[str, tuple[int, ...]]:
    """The classes of a kind's training sections and the axes they are normal to."""
    if kind in ("grf", "electrode"):                   # isotropic: one class, sections along every axis
        return {kind: (0, 1, 2)}
    return {"cross": (0,), "longitudinal": (1, 2)}


def make_volume(kind: str, seed: np.random.SeedSequence, size: int, fraction: float) -> tuple[Phases3D, np.random.Generator]:
    rng = np.random.default_rng(seed)
    return KINDS[kind](rng, size, fraction), rng


def render_section(vol: Phases3D, axis: int, index: int, rng: np.random.Generator,
                   settings: FiberSettings | None = None) -> np.ndarray:
    """The section normal to ``axis`` at ``index``, rendered like a micrograph (float32 in [0, 1])."""
    cov, rad, ident = vol.section(axis, index)
    return micrograph_look(rng, cov, rad, ident, vol.count, settings or FiberSettings(size=cov.shape[0]))


def check_synth3d(kind: str, size: int, fraction: float | None) -> float:
    if kind not in KINDS:
        raise UsageError(f"unknown 3D kind {kind!r}; choose one of: {', '.join(KINDS)}")
    check_int("size", size, 16, 512, SettingError)
    fraction = DEFAULT_FRACTION[kind] if fraction is None else fraction
    hi = 0.7 if kind in ("fiber", "electrode") else 0.95
    check_float("fraction", fraction, 0.05, hi, error=SettingError)
    return fraction


def synth_3d(out: str | Path, kind: str = "grf", size: int = 64, per_class: int = 200, volumes: int = 0,
             fraction: float | None = None, seed: int = 0, sections_per_volume: int = 4, overwrite: bool = False,
             show_progress: bool = True) -> Path:
    """``OUT/slices``: a data set of micrograph-like planar sections cut from random true volumes
    (``per_class`` per class, ``sections_per_volume`` from each volume, at random axes of the
    class and random positions; label maps for a kind with more than two phases);
    ``OUT/volumes/NNNN_labels.npy``: ``volumes`` further true volumes (uint8 phase labels, drawn
    from another seed stream) to compare generated ones with. ``fraction``: of the bright phase
    (``electrode``: of the particles)."""
    from ..core.files import check_output_free, remove, write_text_atomic
    fraction = check_synth3d(kind, size, fraction)
    check_int("per_class", per_class, 0, 10 ** 7, SettingError)
    check_int("volumes", volumes, 0, 10 ** 5, SettingError)
    if per_class == 0 and volumes == 0:
        raise SettingError("per_class", per_class, f"nothing to write: give {setting('per_class')} > 0 (sections) and/or "
                           f"{setting('volumes')} > 0 (true volumes)")
    out = Path(out)
    if check_output_free(out, overwrite, "a synthetic 3D data set", marker=("synth3d.json", "slices", "volumes")):
        remove(out)
    info = {"kind": kind, "size": size, "fraction": fraction, "seed": seed}
    if kind in PHASE_NAMES:
        info.update(phases=len(PHASE_NAMES[kind]), phase_names=PHASE_NAMES[kind])
    try:
        if per_class:
            _write_sections(out / "slices", kind, size, per_class, fraction, seed, sections_per_volume, overwrite,
                            show_progress, info)
        if volumes:
            _write_volumes(out / "volumes", kind, size, volumes, fraction, seed)
    except PackingError as e:
        raise SettingError("fraction", fraction, f"{e}: choose a smaller one (or a larger {setting('size')})") from None
    import json
    write_text_atomic(out / "synth3d.json", json.dumps({**info, "sections_per_class": per_class, "volumes": volumes},
                                                       indent=1))
    return out


def _write_sections(out: Path, kind: str, size: int, per_class: int, fraction: float, seed: int, per_volume: int,
                    overwrite: bool, show_progress: bool, info: dict) -> None:
    from tqdm.auto import tqdm

    from .dataset import DatasetWriter
    classes = section_classes(kind)
    with DatasetWriter(out, overwrite) as w:
        bar = tqdm(total=per_class * len(classes), desc=f"synth {kind} sections", unit="img", disable=not show_progress)
        for ci, (name, axes) in enumerate(classes.items()):
            for v in range(math.ceil(per_class / per_volume)):
                vol, rng = make_volume(kind, np.random.SeedSequence([seed, 0, ci, v]), size, fraction)
                true = _true_fractions(vol, kind)
                for j in range(min(per_volume, per_class - v * per_volume)):
                    axis, index = int(rng.choice(axes)), int(rng.integers(size))
                    if kind in PHASE_NAMES:        # a label map: phase k as gray k / (K - 1)
                        img, file = np.take(vol.labels, index, axis=axis) / (len(PHASE_NAMES[kind]) - 1), "_labels"
                    else:
                        img, file = render_section(vol, axis, index, rng), ""
                    w.add(name, f"{v * per_volume + j:05d}{file}", img, source=f"synthetic {kind} volume {v}",
                          normal=AXES[axis], index=index, **true, seed=f"{seed}:0:{ci}:{v}")
                    bar.update()
        bar.close()
        oriented = {"orientation": "fixed"} if kind in ORIENTED_KINDS else {}      # train.augment: flips
        w.commit({**info, "kind": f"synthetic 3D {kind}: planar sections", "classes_normal_to":
                  {k: [AXES[a] for a in v] for k, v in classes.items()}, **oriented})


def _true_fractions(vol: Phases3D, kind: str) -> dict[str, str]:
    """The manifest's truth of a volume: the fraction of its bright phase (of the particles, the
    highest id, for a kind with more phases, then every phase's fraction in id order)."""
    lab = vol.labels
    if kind not in PHASE_NAMES:
        return {"true_fraction": f"{float(lab.mean()):.5f}"}
    k = len(PHASE_NAMES[kind])
    fr = np.bincount(lab.ravel(), minlength=k) / lab.size
    return {"true_fraction": f"{fr[-1]:.5f}", "phase_fractions": " ".join(f"{f:.5f}" for f in fr)}


def _write_volumes(out: Path, kind: str, size: int, count: int, fraction: float, seed: int) -> None:
    from .io import save_npy
    out.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        vol, _ = make_volume(kind, np.random.SeedSequence([seed, 1, i]), size, fraction)
        save_npy(out / f"{i:04d}_labels.npy", vol.labels)
