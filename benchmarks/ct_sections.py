"""Pore connectivity in 2D on Ketton (benchmarks/ct.py's layout): is a volume's missing connectivity
already missing in the 2D model it is built from?

For the pore phase of 64^2 sections: porosity, the largest 2D cluster's share of the pores
(median over sections), pore components per 1000 px and perimeter per px (4-neighbour phase
changes). Truth: every 12th section from 4 along each axis of the 32 truth cubes (480 sections),
with the 95 % range of each statistic over random sets of as many sections as a model's samples
(500 draws). Models: `microdiff sample` of each named run, `--num` samples, DPM-Solver++
`--sample-steps`, Otsu (pore = label 0). Volumes: the same sections of each named set's labels.

    python benchmarks/ct_sections.py --root runs/ct --runs run,long --volumes vols3,vols10 --num 48
"""
from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import numpy as np
from scipy import ndimage as ndi

STATS = ("porosity", "largest 2D cluster (median)", "components per 1000 px", "perimeter per px")


def per_section(ims: list[np.ndarray]) -> np.ndarray:
    """(N, 4): porosity, largest cluster's share of the pores (nan without pores), components per
    1000 px, perimeter per px, of boolean pore sections."""
    rows = []
    for im in ims:
        lab, n = ndi.label(im)
        sizes = np.bincount(lab.ravel())[1:]
        per = np.abs(np.diff(im.astype(np.int8), axis=0)).sum() + np.abs(np.diff(im.astype(np.int8), axis=1)).sum()
        rows.append([im.mean(), sizes.max() / sizes.sum() if n else np.nan, n / im.size * 1e3, per / im.size])
    return np.array(rows)


def summary(rows: np.ndarray) -> np.ndarray:
    return np.array([rows[:, 0].mean(), np.nanmedian(rows[:, 1]), rows[:, 2].mean(), rows[:, 3].mean()])


def sections(files: list[Path]) -> list[np.ndarray]:
    out = []
    for f in files:
        v = np.load(f) == 0                                        # pore phase
        for ax in range(3):
            out.extend(np.take(v, k, axis=ax) for k in range(4, v.shape[ax], 12))
    return out


def model_samples(root: Path, run: str, num: int, steps: int) -> list[np.ndarray]:
    out = root / f"s2d_{run}_{steps}"
    if not out.is_dir():
        subprocess.run([sys.executable, "-m", "microdiff", "sample", "--model", str(root / run / "model"), "--num",
                        str(num), "--steps", str(steps), "--segment", "otsu", "--out", str(out)], check=True)
    files = sorted(out.glob("*/*_labels.npy"))[:num]
    if len(files) < num:
        raise SystemExit(f"{out}: {len(files)} label maps, {num} asked; remove the folder to sample again")
    return [np.load(f) == 0 for f in files]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--root", type=Path, default=Path("runs/ct"))
    ap.add_argument("--runs", default="run", help="run folders under --root whose 2D samples to read")
    ap.add_argument("--volumes", default="", help="volume folders under --root whose sections to read")
    ap.add_argument("--num", type=int, default=48, help="2D samples per run (and the truth's set size)")
    ap.add_argument("--sample-steps", type=int, default=20)
    a = ap.parse_args()
    truth = per_section(sections(sorted((a.root / "truth").glob("*_labels.npy"))))
    rng = np.random.default_rng(0)
    sets = np.array([summary(truth[rng.choice(len(truth), a.num, replace=False)]) for _ in range(500)])
    lo, hi = np.percentile(sets, [2.5, 97.5], axis=0)
    rows = [("truth sections", summary(truth)), (f"truth, sets of {a.num}: 95 %", None)]
    rows += [(f"2D samples of {r} ({a.sample_steps} steps)", summary(per_section(
        model_samples(a.root, r, a.num, a.sample_steps)))) for r in a.runs.split(",") if r]
    rows += [(f"sections of {v}", summary(per_section(sections(sorted((a.root / v).glob("*/labels.npy"))))))
             for v in a.volumes.split(",") if v]
    lines = ["| pore statistic | " + " | ".join(n for n, _ in rows) + " |", "|---" * (len(rows) + 1) + "|"]
    for i, name in enumerate(STATS):
        cells = [f"{lo[i]:.3g} – {hi[i]:.3g}" if s is None else f"{s[i]:.4g}" for _, s in rows]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    text = "\n".join(lines) + "\n"
    (a.root / "sections.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
