"""Is the volumes' pore topology that of a Gaussian field? Ketton (benchmarks/ct.py's layout).

Each generated volume of the named sets is paired with level cuts of periodic Gaussian random
fields (white noise smoothed by a Gaussian of ``--length`` voxels) at the same porosity, and the
pore phase of all three described alike, in 3D (``ct_screen.describe``: porosity, S_V, the largest
cluster's share, Euler density, mean chords, the one-voxel share) and in 2D on the same
sections as ``ct_sections.py`` (largest 2D cluster's share, components, perimeter). A Gaussian
field's low level cut is a set of separate blobs in 3D (its excursion set percolates only above
about 16 %); the truth's pores are the space between large grains, connected at 6 % porosity. So
the rows say which of the two the volumes' pores resemble.

    python benchmarks/ct_topology.py --root runs/ct --names fade --length 3
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from scipy import ndimage as ndi

sys.path.insert(0, str(Path(__file__).resolve().parent))
from ct_screen import describe  # noqa: E402
from ct_sections import per_section  # noqa: E402

COLUMNS = ("vf", "surface", "cluster", "euler", "thin", "chord", "cluster 2D", "components 2D")


def gaussian_cut(shape, length: float, porosity: float, seed: int) -> np.ndarray:
    """The lowest ``porosity`` of a periodic Gaussian field of correlation length ``length``."""
    f = ndi.gaussian_filter(np.random.default_rng(seed).standard_normal(shape), length, mode="wrap")
    return f <= np.quantile(f, porosity)


def row(ind: np.ndarray) -> dict:
    d = describe(ind, ("vf", "surface", "cluster", "euler", "thin", "chord"))
    secs = [np.moveaxis(ind, a, 0)[k] for a in range(3) for k in range(4, ind.shape[a], 12)]
    s = per_section(secs)
    return {"vf": d["vf"], "surface": d["surface"], "cluster": d["cluster"], "euler": d["euler"],
            "thin": d["thin"], "chord": float(np.mean(d["chord"])), "cluster 2D": float(np.nanmedian(s[:, 1])),
            "components 2D": float(s[:, 2].mean())}


def median_row(rows: list[dict]) -> str:
    return " | ".join(f"{np.median([r[k] for r in rows]):.3g}" for k in COLUMNS)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--root", type=Path, default=Path("runs/ct"))
    ap.add_argument("--names", default="fade", help="comma-separated sets of volumes under --root")
    ap.add_argument("--length", type=float, default=3.0, help="the Gaussian fields' smoothing, voxels")
    ap.add_argument("--fields", type=int, default=2, help="Gaussian fields per generated volume")
    ap.add_argument("--phase", type=int, default=0, help="the phase described (0: pore)")
    a = ap.parse_args()
    truth = [row(np.load(f) == a.phase) for f in sorted((a.root / "truth").glob("*_labels.npy"))]
    print("| set | " + " | ".join(COLUMNS) + " |\n|" + "---|" * (len(COLUMNS) + 1))
    print(f"| truth ({len(truth)} cubes) | {median_row(truth)} |")
    cut_truth = [row(gaussian_cut((64,) * 3, a.length, r["vf"], 1000 + i)) for i, r in enumerate(truth)]
    print(f"| Gaussian cuts at the truth's porosities | {median_row(cut_truth)} |", flush=True)
    for name in a.names.split(","):
        vols = [np.load(f) == a.phase for f in sorted((a.root / name).glob("*/labels.npy"))]
        gen = [row(v) for v in vols]
        cuts = [row(gaussian_cut(v.shape, a.length, v.mean(), 100 * i + k))
                for i, v in enumerate(vols) for k in range(a.fields)]
        print(f"| {name} ({len(vols)} volumes) | {median_row(gen)} |")
        print(f"| Gaussian cuts at {name}'s porosities | {median_row(cuts)} |", flush=True)


if __name__ == "__main__":
    main()
