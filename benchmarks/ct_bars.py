"""How often real cubes meet issue 23's Ketton bars: the real-vs-real floor of each check.

The bars compare the median of a set of generated volumes with the median of the 32 truth cubes
(porosity within 1 point, S_V within 10 %, the pores' tortuosity factor within 15 % along each
axis). A perfect generator's volumes are cubes of the rock, so this draws ``--draws`` sets of
``--num`` cubes from the truth itself (without replacement) and counts the sets whose medians pass.
The sets come from the same cubes the medians are taken from, so the rates are optimistic: a
perfect generator's independent volumes would pass less often. ``--split`` gives the other side:
each set drawn from one random half, against the median of the other half (independent, but a
noisier reference, so pessimistic). As in ``compare``, tau's medians are over the cubes that
percolate along that axis (tau finite). After ``benchmarks/ct.py prepare`` (its truth cubes;
descriptors cached as ``ct_screen.py`` caches them):

    python benchmarks/ct_bars.py --root runs/ct --num 8
    python benchmarks/ct_bars.py --root runs/ct --num 8 --split   # against the other half's median
"""
from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from ct_screen import truth_rows  # noqa: E402

BARS = {                                   # name: (descriptor, axis or None, relative?, tolerance)
    "porosity within 1 point": ("vf", None, False, 0.01),
    "S_V within 10 %": ("surface", None, True, 0.10),
    "tau z within 15 %": ("tau", 0, True, 0.15),
    "tau y within 15 %": ("tau", 1, True, 0.15),
    "tau x within 15 %": ("tau", 2, True, 0.15),
}


def passes(values: np.ndarray, sets: np.ndarray, refs: np.ndarray | None, relative: bool, tol: float) -> np.ndarray:
    """Whether each set's median of ``values`` lies within ``tol`` of its reference median: that of
    the cubes ``refs`` (one row per set), or of all cubes (None). Medians of the finite values."""
    values = np.where(np.isfinite(values), values, np.nan)
    with np.errstate(invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)          # a set with no finite value: fails
        ref = np.nanmedian(values) if refs is None else np.nanmedian(values[refs], axis=1)
        med = np.nanmedian(values[sets], axis=1)
        off = np.abs(med / ref - 1) if relative else np.abs(med - ref)
    return np.nan_to_num(off, nan=np.inf) <= tol


def draw_sets(n: int, num: int, draws: int, split: bool, rng) -> tuple[np.ndarray, np.ndarray | None]:
    """``draws`` sets of ``num`` of ``n`` cubes, and with ``split`` each set's reference: a random half
    of the cubes, the set drawn from the other half."""
    if not split:
        return np.array([rng.choice(n, num, replace=False) for _ in range(draws)]), None
    perms = np.array([rng.permutation(n) for _ in range(draws)])
    half = n // 2
    sets = np.array([rng.choice(p[half:], num, replace=False) for p in perms])
    return sets, perms[:, :half]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--root", type=Path, default=Path("runs/ct"))
    ap.add_argument("--num", type=int, default=8, help="cubes per set, as volumes per benchmark run")
    ap.add_argument("--draws", type=int, default=20000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--split", action="store_true",
                    help="each set against the median of the other half of the cubes (independent, noisier)")
    a = ap.parse_args()
    if a.draws < 1:
        ap.error(f"--draws {a.draws}: give the number of sets to draw, 1 or more (default 20000)")
    rows = truth_rows(a.root)
    most = len(rows) - len(rows) // 2 if a.split else len(rows) - 1
    if not 0 < a.num <= most:
        ap.error(f"--num {a.num}: there are {len(rows)} truth cubes in {a.root / 'truth'}"
                 f"{' (half of them for the sets)' if a.split else ''}; give 1 to {most}")
    sets, refs = draw_sets(len(rows), a.num, a.draws, a.split, np.random.default_rng(a.seed))
    every = np.ones(a.draws, bool)
    against = "the median of the other half" if a.split else f"the median of all {len(rows)}"
    print(f"{a.draws} sets of {a.num} of the {len(rows)} truth cubes, against {against}\n\n"
          "| bar | sets that pass |\n|---|---|")
    for name, (key, axis, relative, tol) in BARS.items():
        values = np.array([r[key] if axis is None else r[key][axis] for r in rows], dtype=float)
        ok = passes(values, sets, refs, relative, tol)
        if key == "tau":
            every &= ok
        print(f"| {name} | {ok.mean():.3f} |")
    print(f"| tau within 15 % along all three axes | {every.mean():.3f} |")


if __name__ == "__main__":
    main()
