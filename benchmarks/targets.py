"""Generation to a target (issue 11) on the shipped demo model: achieved vs target, realism (E_S to
the nearest training image), S2 error to a held-out image, descriptor error, seconds per sample.

    python benchmarks/targets.py --root runs/targets [--num 32] [--threads 1]

Writes ROOT/results.json and prints the Markdown tables for BENCHMARKS.md. Training images: the
demo's data (synth_fiber, 64 x 64, 200 per class, seed 0); held-out references: fiber images of
the class's fraction with seeds the training set never uses.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

VF_CASES = [("FVC40", 0.35), ("FVC40", 0.45), ("FVC50", 0.45), ("FVC50", 0.55), ("FVC60", 0.55)]
FRACTIONS = {"FVC40": 0.4, "FVC50": 0.5, "FVC60": 0.6}


def sample(pipe, root: Path, name: str, cls: str, num: int, targets=None, strength: float = 3.0) -> tuple[Path, float]:
    from microdiff.sample import sample_to_folder
    out = root / name
    t0 = time.perf_counter()
    sample_to_folder(pipe, [cls], num, out, steps=20, sampler="dpmpp", guidance=1.0, overwrite=True,
                     show_progress=False, targets=targets, target_strength=strength)
    return out, (time.perf_counter() - t0) / num


def median_es(folder: Path, train: Path, root: Path) -> float:
    from microdiff.evaluate import EvalSettings, evaluate_folders
    res = evaluate_folders(folder, train, folder / "eval", EvalSettings(descriptors=("S",), fid=False,
                                                                       cache_dir=str(root / "cache")),
                           show_progress=False)
    (c,) = res.classes.values()
    return c.median["S"]


def fractions(folder: Path, cls: str) -> np.ndarray:
    from microdiff.metrics.descriptors import volume_fraction
    x = np.stack([np.load(f) for f in sorted((folder / cls).glob("[0-9][0-9][0-9][0-9].npy"))])
    return volume_fraction(torch.from_numpy(x)).numpy()


def vf_table(pipe, root: Path, train: Path, num: int) -> list[dict]:
    rows, plain = [], {}
    for cls in sorted({c for c, _ in VF_CASES}):
        folder, sps = sample(pipe, root, f"plain_{cls}", cls, num)
        plain[cls] = dict(folder=folder, sps=sps, vf=fractions(folder, cls), es=median_es(folder, train, root))
    for cls, target in VF_CASES:
        folder, sps = sample(pipe, root, f"vf_{cls}_{target}", cls, num, {"vf": target})
        vf = fractions(folder, cls)
        rows.append(dict(cls=cls, target=target, n=num, sps=sps, sps_plain=plain[cls]["sps"],
                         plain_mean=float(plain[cls]["vf"].mean()), mean=float(vf.mean()), std=float(vf.std()),
                         within=float(np.mean(np.abs(vf - target) <= 0.015)),
                         es=median_es(folder, train, root), es_plain=plain[cls]["es"]))
        print(json.dumps(rows[-1]), flush=True)
    return rows


def reference(root: Path, cls: str, seed: int) -> Path:
    from microdiff.data.fiber import fiber_image
    from microdiff.data.io import save_png
    img, _, _ = fiber_image(np.random.SeedSequence([10 ** 6 + seed]), FRACTIONS[cls])
    path = root / "refs" / f"{cls}_{seed}.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    save_png(path, img)
    return path


def s2_table(pipe, root: Path, num: int) -> list[dict]:
    from microdiff.targets import TwoPoint
    rows = []
    for cls in FRACTIONS:
        ref = TwoPoint.from_image(reference(root, cls, 0))
        errs = {}
        for strength in (0.0, 3.0):
            folder, sps = sample(pipe, root, f"s2_{cls}_{strength:g}", cls, num, [ref], strength)
            errs[strength] = [json.loads(f.read_text())["targets"][0]["rmse"] for f in sorted((folder / cls).glob("*.json"))]
            rows.append(dict(cls=cls, strength=strength, n=num, sps=sps, median_rmse=float(np.median(errs[strength])),
                             mean_rmse=float(np.mean(errs[strength]))))
            print(json.dumps(rows[-1]), flush=True)
    return rows


def descriptor_table(pipe, root: Path, num: int) -> list[dict]:
    from microdiff.characterize import characterize
    from microdiff.targets import Descriptor
    rows = []
    ref = reference(root, "FVC50", 1)
    for kind in ("gram", "correlations"):
        npy = root / "refs" / f"FVC50_1_{kind}.npy"
        characterize([ref], kind, out=npy)
        target = Descriptor.from_file(npy, kind)
        for strength in (0.0, 3.0):
            folder, sps = sample(pipe, root, f"d_{kind}_{strength:g}", "FVC50", num, [target], strength)
            errs = [json.loads(f.read_text())["targets"][0]["relative_error"]
                    for f in sorted((folder / "FVC50").glob("*.json"))]
            rows.append(dict(descriptor=kind, strength=strength, n=num, sps=sps, median_rel=float(np.median(errs))))
            print(json.dumps(rows[-1]), flush=True)
    return rows


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--root", default="runs/targets")
    ap.add_argument("--num", type=int, default=32)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--only", default="vf,s2,descriptor")
    a = ap.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    from microdiff.data.synth import synth_fiber
    from microdiff.demo import shipped_model_dir
    from microdiff.pipeline import load_pipeline
    root = Path(a.root)
    root.mkdir(parents=True, exist_ok=True)
    train = root / "train"
    if not train.is_dir():
        synth_fiber(train, size=64, per_class=200, seed=0, show_progress=False)
    pipe = load_pipeline(shipped_model_dir())
    results = json.loads((root / "results.json").read_text()) if (root / "results.json").is_file() else {}
    parts = a.only.split(",")
    if "vf" in parts:
        results["vf"] = vf_table(pipe, root, train, a.num)
    if "s2" in parts:
        results["s2"] = s2_table(pipe, root, max(8, a.num // 2))
    if "descriptor" in parts:
        results["descriptor"] = descriptor_table(pipe, root, 4)
    results["threads"] = torch.get_num_threads()
    (root / "results.json").write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
