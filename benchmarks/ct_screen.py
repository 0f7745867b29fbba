"""Screening the product of planes on Ketton micro-CT: one setting of ``denoise.volume`` at a time.

After ``benchmarks/ct.py prepare`` and ``train`` (the same root): a few 64^3 volumes with one
module setting of ``microdiff.denoise.volume`` changed (``--set NORMAL_STD=0``, the width of the
smoothing along each plane's normal), then the pore phase's medians beside the truth cubes'
(cached in ROOT/truth_screen.json): porosity, S_V, the largest cluster's share, mean chord per
axis, mean local thickness, Euler density, tortuosity per axis and the share of pore voxels in a
run one voxel thick along some axis (the signature of the planes' sheets; not a registered
descriptor). Few volumes, so a screen; the full comparison is ``ct.py sample`` and ``compare``.

    python benchmarks/ct_screen.py --root runs/ct --name s1 --num 3 --set NORMAL_STD=1
    python benchmarks/ct_screen.py --root runs/ct --name s0 --num 3 --set NORMAL_STD=0
    python benchmarks/ct_screen.py --root runs/ct --name sde --num 8 --sampler dpmpp_sde:eta=2,smin=0.1,smax=3
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

KEYS = ("vf", "surface", "cluster", "chord", "thickness", "euler", "thin", "tau")


def thin_share(ind: np.ndarray) -> float:
    """The share of the phase's voxels lying in a run one voxel long along z, y or x."""
    one = np.zeros(ind.shape, bool)
    for ax in range(3):
        a = np.moveaxis(ind, ax, 0)
        run = a.copy()
        run[1:] &= ~a[:-1]
        run[:-1] &= ~a[1:]
        one |= np.moveaxis(run, 0, ax)
    return float(one.sum() / max(ind.sum(), 1))


def describe(ind: np.ndarray, keys=KEYS) -> dict:
    """The statistics ``keys`` (of KEYS) of a boolean phase volume; only those are computed."""
    from microdiff.metrics import morphology as M, transport as T, volume as V
    how = {"vf": lambda: float(ind.mean()), "surface": lambda: V.specific_surface(ind),
           "cluster": lambda: V.largest_cluster_fraction(ind), "chord": lambda: M.mean_chord_length(ind).tolist(),
           "thickness": lambda: M.mean_local_thickness(ind), "euler": lambda: M.euler_density(ind),
           "thin": lambda: thin_share(ind), "tau": lambda: T.tortuosity(ind).tolist()}
    return {k: how[k]() for k in keys}


def truth_rows(root: Path, phase: int = 0) -> list[dict]:
    """``describe`` of each truth cube's ``phase`` (``ROOT/truth``), cached in ROOT/truth_screen.json
    (phase 0; ``truth_screen_phaseP.json`` for another) and made again when the cube count changes."""
    files = sorted((root / "truth").glob("*_labels.npy"))
    cache = root / ("truth_screen.json" if phase == 0 else f"truth_screen_phase{phase}.json")
    rows = json.loads(cache.read_text()) if cache.is_file() else None
    if rows is None or len(rows) != len(files):
        rows = [describe(np.load(f) == phase) for f in files]
        cache.write_text(json.dumps(rows))
    return rows


def table(rows: list[dict]) -> dict:
    return {k: np.nanmedian(np.array([r[k] for r in rows], dtype=float), axis=0) for k in KEYS}


def set_volume_settings(ap: argparse.ArgumentParser, pairs: list[str]) -> None:
    """``--set NAME=VALUE`` pairs applied to the numeric settings of ``microdiff.denoise.volume``."""
    import microdiff.denoise.volume as volume
    names = [n for n, v in vars(volume).items() if n.isupper() and isinstance(v, (int, float))]
    for kv in pairs:
        name, _, value = kv.partition("=")
        if name not in names:
            ap.error(f"--set {kv}: microdiff.denoise.volume has no numeric setting {name!r}; it has: {', '.join(names)}")
        try:
            setattr(volume, name, type(getattr(volume, name))(value))
        except ValueError:
            ap.error(f"--set {kv}: {value!r} is not a number")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--root", type=Path, default=Path("runs/ct"))
    ap.add_argument("--name", required=True, help="the output folder under --root")
    ap.add_argument("--num", type=int, default=3)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--sampler", default=None, help="a --sampler of microdiff (default: the model's)")
    ap.add_argument("--set", nargs="*", default=[], metavar="NAME=VALUE", help="denoise.volume settings")
    ap.add_argument("--phase", type=int, default=0, help="the phase described (0: pore)")
    a = ap.parse_args()
    set_volume_settings(ap, a.set)
    from microdiff.core.launch import keep_freed_memory
    from microdiff.generate import sample3d_to_folder
    from microdiff.generate.pipeline import load_pipeline
    keep_freed_memory()
    out = a.root / a.name
    start = time.perf_counter()
    res = sample3d_to_folder(load_pipeline(a.root / "run" / "model"), out, class_name="ketton", num=a.num,
                             steps=a.steps, sampler=a.sampler, segment="otsu", overwrite=True, show_progress=False)
    what = " ".join(a.set) or "defaults"
    print(f"{a.name} ({what}{', ' + a.sampler if a.sampler else ''}): {a.num} volumes in {time.perf_counter() - start:.0f} s, "
          f"{np.mean(res.seconds):.1f} s per volume")
    truth = table(truth_rows(a.root, a.phase))
    gen = table([describe(np.load(f) == a.phase) for f in sorted(out.glob("*/labels.npy"))])
    for k in KEYS:
        print(f"  {k:9s} truth {np.round(truth[k], 4)}  generated {np.round(gen[k], 4)}  "
              f"ratio {np.round(gen[k] / truth[k], 3)}")


if __name__ == "__main__":
    main()
