"""A classical baseline for granular rock: PoreSpy's overlapping spheres, fitted to the 2D sections.

PoreSpy (Gostick et al. 2019, github.com/PMEAL/porespy) is not a dependency of microdiff and none
of its code is copied here: this runner imports it from a folder given with ``--porespy`` (made by
``pip install --target FOLDER porespy``) and calls its ``generators.overlapping_spheres``
unchanged; the version found is recorded in generate.json.

    python benchmarks/peers/porespy_grains.py --porespy /work/scratch/pspy_pkgs --data VOL.npy --out DIR --num 8 --size 64

The model: grains are spheres of one radius R placed at random (a Boolean model, "overlapping
spheres" in Torquato, "Random Heterogeneous Materials", 2002) and the pores are what they leave. Two numbers fit it,
both read from lines of the training data (``--data``: the training part as a 0/1 volume, 1 =
grain; every line along z, y or x lies in one of the 2D training sections): the pore share phi
and the mean pore chord l. For this model the pores' chords are exponential with mean
l = 4 R / (3 |ln phi|) (the lineal path L(z) = phi exp(-n pi R^2 z), n the sphere density, and
phi = exp(-n 4/3 pi R^3)), so R = 3 l |ln phi| / 4. Nothing else of the data is used: no 3D
statistic, which the 2D sections do not hold.

Each volume: spheres over a block R + 1 voxels larger on every side (``overlapping_spheres`` puts
centres inside its image only, so its faces would carry too few grains), then the middle SIZE^3 cut
out. The block's porosity is set so that the middle cubes of 32 other blocks (seeds of their own)
have the training data's porosity on average (``calibrate``). Each volume's porosity scatters
around it, less than in a free Boolean model: PoreSpy fixes each block's porosity, so only the
middle cube's share of it varies.
Seed i for volume i (``overlapping_spheres(seed=...)``). Written as DIR/volumes/NNNN.npy (uint8,
1 = grain, 0 = pore) and DIR/generate.json (R, phi, l, seconds).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np


def fit(volume: np.ndarray) -> dict:
    """phi, the mean pore chord over the three axes' lines (chords cut by the volume's faces
    dropped) and the Boolean model's radius R = 3 l |ln phi| / 4."""
    from microdiff.metrics.morphology import mean_chord_length
    pore = volume == 0
    phi = float(pore.mean())
    chord = float(np.mean(mean_chord_length(pore)))
    return {"porosity": phi, "mean_chord": chord, "radius": 3.0 * chord * abs(np.log(phi)) / 4.0}


def crop(porespy, size: int, pad: int, r: float, block_porosity: float, seed: int) -> np.ndarray:
    """The middle size^3 of a block of overlapping spheres ``pad`` voxels larger on every side
    (True = pore)."""
    block = porespy.generators.overlapping_spheres([size + 2 * pad] * 3, r=r, porosity=block_porosity,
                                                   maxiter=40, tol=1e-4, seed=seed)
    return block[pad:pad + size, pad:pad + size, pad:pad + size]


CALIBRATION_SEEDS = range(10_000, 10_032)   # blocks for the calibration only, none of them a volume's


def calibrate(porespy, size: int, pad: int, r: float, porosity: float, rounds: int = 8) -> tuple[float, float]:
    """The block porosity whose middle cubes (CALIBRATION_SEEDS) have, on average, ``porosity``:
    a block's faces get fewer grains (no centres beyond them), so its middle is less porous than
    the block. Bisection (the middle's porosity falls as the block's does); returns the block
    porosity tried whose middle cubes came closest, and their mean porosity."""
    lo, hi = porosity, min(1.0, 3.0 * porosity)
    means = {}
    for _ in range(rounds):
        mid = (lo + hi) / 2
        means[mid] = float(np.mean([crop(porespy, size, pad, r, mid, s).mean() for s in CALIBRATION_SEEDS]))
        lo, hi = (mid, hi) if means[mid] < porosity else (lo, mid)
    best = min(means, key=lambda b: abs(means[b] - porosity))
    if abs(means[best] - porosity) > 0.01:
        raise SystemExit(f"calibration: no block porosity in [{porosity:.3f}, {3 * porosity:.3f}] gives middle "
                         f"cubes of porosity {porosity:.4f} (closest {means[best]:.4f}); use larger blocks")
    return best, means[best]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--porespy", type=Path, required=True, help="a folder holding the porespy package")
    ap.add_argument("--data", type=Path, required=True, help="the training part, .npy, 1 = grain, 0 = pore")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--num", type=int, default=8)
    ap.add_argument("--size", type=int, default=64)
    a = ap.parse_args()
    if not (a.porespy / "porespy").is_dir():
        raise SystemExit(f"--porespy {a.porespy}: no porespy package there; make it with "
                         f"'pip install --target {a.porespy} porespy'")
    if not a.data.is_file() or a.num < 1 or a.size < 8:
        raise SystemExit(f"--data {a.data}, --num {a.num}, --size {a.size}: expected an existing .npy (benchmarks/ct.py "
                         "prepare writes ROOT/train_volume.npy), --num >= 1 and --size >= 8")
    volume = np.load(a.data)
    if volume.ndim != 3 or set(np.unique(volume).tolist()) != {0, 1}:
        raise SystemExit(f"--data {a.data}: expected a 3-D volume of 0 (pore) and 1 (grain)")
    start = time.perf_counter()
    model = fit(volume)                        # microdiff's own numpy and scipy, before the folder's
    fit_seconds = time.perf_counter() - start
    sys.path.insert(0, str(a.porespy))
    import porespy
    r = model["radius"]
    pad = int(np.ceil(r)) + 1
    start = time.perf_counter()
    block_porosity, calibrated = calibrate(porespy, a.size, pad, r, model["porosity"])
    calibrate_seconds = time.perf_counter() - start
    (a.out / "volumes").mkdir(parents=True, exist_ok=True)
    seconds = []
    for i in range(a.num):
        start = time.perf_counter()
        pores = crop(porespy, a.size, pad, r, block_porosity, i)
        seconds.append(time.perf_counter() - start)
        np.save(a.out / "volumes" / f"{i:04d}.npy", (~pores).astype(np.uint8))
    record = {"porespy": porespy.__version__, **model, "size": a.size, "num": a.num, "block_porosity": block_porosity,
              "calibration_mean_porosity": calibrated,
              "fit_seconds": fit_seconds, "calibrate_seconds": calibrate_seconds,
              "mean_seconds_per_volume": float(np.mean(seconds))}
    (a.out / "generate.json").write_text(json.dumps(record, indent=1))
    print(json.dumps(record))


if __name__ == "__main__":
    main()
