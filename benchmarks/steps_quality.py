"""Sample quality against the number of steps, per sampler, for one trained model.

The reference is a set sampled with the full ancestral chain (T steps, the paper's sampler).
For every (sampler, steps) the same classes and seeds are sampled and compared with it per
class: the mean and standard deviation of the pixel values, the fiber fraction (Otsu), and
optionally KID on Inception features (``--kid``, needs `microdiff weights fetch`).

    python benchmarks/steps_quality.py --model demo/model --num 24 --guidance 1.5
"""
from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch

from microdiff.data.fiber import fiber_fraction
from microdiff.generate.pipeline import load_pipeline
from microdiff.core.seeding import sample_seed
from microdiff.generate import generate, sampling_settings


def stats(imgs: torch.Tensor) -> dict:
    a = imgs[:, 0].numpy()
    return {"mean": float(a.mean()), "std": float(a.std()),
            "fiber": float(np.mean([fiber_fraction(x) for x in a]))}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--num", type=int, default=24, help="samples per class")
    ap.add_argument("--guidance", type=float, default=1.5)
    ap.add_argument("--ref-steps", type=int, default=None, help="reference ancestral steps (default T)")
    ap.add_argument("--configs", default="ancestral:25,50,100,250;ddim:10,25,50;dpmpp:10,15,20,25")
    ap.add_argument("--kid", action="store_true")
    ap.add_argument("--batch", type=int, default=72)
    a = ap.parse_args()
    pipe = load_pipeline(a.model, "cuda" if torch.cuda.is_available() else "cpu")
    T = pipe.microdiff_config.diffusion.timesteps
    names = pipe.class_names
    labels = [c for c in range(len(names)) for _ in range(a.num)]
    seeds = [sample_seed(123, c, i) for c in range(len(names)) for i in range(a.num)]

    def run(sampler, steps):
        t0 = time.perf_counter()
        x = generate(pipe, labels, seeds, sampling_settings(pipe.microdiff_config, steps, sampler, a.guidance, a.batch))
        return x, time.perf_counter() - t0

    ref, t_ref = run("ancestral", a.ref_steps or T)
    feats_ref = None
    if a.kid:
        from microdiff.metrics.fid import inception_features, kid_from_features
        feats_ref = inception_features(ref)
    per_class_ref = [stats(ref[i * a.num:(i + 1) * a.num]) for i in range(len(names))]
    print(json.dumps({"reference": f"ancestral {a.ref_steps or T}", "seconds": round(t_ref, 1),
                      "per_class": dict(zip(names, per_class_ref))}), flush=True)
    for part in a.configs.split(";"):
        sampler, counts = part.split(":")
        for steps in map(int, counts.split(",")):
            x, dt = run(sampler, steps)
            row = {"sampler": sampler, "steps": steps, "seconds": round(dt, 1)}
            d_mean, r_std, d_fib = [], [], []
            for i in range(len(names)):
                s = stats(x[i * a.num:(i + 1) * a.num])
                r = per_class_ref[i]
                d_mean.append(abs(s["mean"] - r["mean"]))
                r_std.append(s["std"] / r["std"])
                d_fib.append(abs(s["fiber"] - r["fiber"]))
            row.update(max_abs_d_mean=round(max(d_mean), 4), std_ratio_range=[round(min(r_std), 3), round(max(r_std), 3)],
                       max_abs_d_fiber=round(max(d_fib), 4))
            if feats_ref is not None:
                k, ks = kid_from_features(inception_features(x), feats_ref, subsets=50, subset_size=min(len(x), 100))
                row["kid_x1e3"] = [round(1e3 * k, 2), round(1e3 * ks, 2)]
            print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
