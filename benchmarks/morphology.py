"""Seconds per volume for the morphology and transport descriptors, on cubes of real micro-CT.

    python benchmarks/morphology.py --sizes 64 128 --repeat 3

Cubes are cut from the corner of ``--volume`` (default: the shared Ketton limestone, 256^3,
pore phase = 0; ``--phase 1`` the grain, which spans every cube: a tortuosity solve where the
pores of a corner cube may not span it and TauFactor has nothing to solve). Each descriptor is
timed on a cold cache (``metrics.morphology`` and ``transport`` remember the last array), median of
``--repeat`` runs; tortuosity is the three axes' TauFactor solves together. Prints one JSON line per size.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from microdiff.metrics import morphology, transport


def cold(fn):
    def run(a):
        morphology._MEMO.clear()
        return fn(a)
    return run


DESCRIPTORS = {
    "chord_lengths": cold(morphology.chord_length_distribution),
    "pore_sizes": cold(morphology.pore_size_distribution),
    "euler": cold(morphology.euler_density),
    "tortuosity": cold(transport.tortuosity),
}


def timeit(fn, a, repeat: int) -> float:
    ts = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn(a)
        ts.append(time.perf_counter() - t)
    return sorted(ts)[len(ts) // 2]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--volume", type=Path,
                    default=Path(__file__).resolve().parents[2] / "shared/data/ct/ketton.tif")
    ap.add_argument("--sizes", type=int, nargs="+", default=[64, 128])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--phase", type=int, default=0)
    a = ap.parse_args()
    import tifffile
    vol = tifffile.imread(a.volume)
    labels = (vol > vol.min()).astype(np.uint8)                          # 1 = grain, 0 = pore
    for s in a.sizes:
        cube = labels[:s, :s, :s] == a.phase
        row = {"size": s, "fraction": round(float(cube.mean()), 4)}
        for name, fn in DESCRIPTORS.items():
            fn(cube)                                                     # warm-up (imports, first solve)
            row[name + "_s"] = round(timeit(fn, cube, a.repeat), 3)
        row["tortuosity"] = [round(float(t), 3) for t in transport.tortuosity(cube)]   # inf: no spanning path
        print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
