"""Generation to a target (issue 11) on the shipped demo model: achieved vs target, realism (E_S to
the nearest training image), S2 error to a held-out image, descriptor error, seconds per sample.

    python benchmarks/targets.py --root runs/targets [--num 32] [--threads 1] [--mix all] [--candidates 4]

``--mix all``: volume fractions by class mixture (``--target-mix all``) instead of DPS, and S2
targets with a class mixture to the reference's own fraction beside the S2 descent.
``--candidates K``: S2 and descriptor targets as the best of K draws per sample
(``--target-candidates``), unguided (selection alone) and guided, beside unguided samples.

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


def sample(pipe, root: Path, name: str, cls: str, num: int, targets=None, strength: float = 3.0,
           candidates: int = 1) -> tuple[Path, float]:
    from microdiff.generate import SampleSettings, sample_to_folder
    out = root / name
    t0 = time.perf_counter()
    settings = SampleSettings(classes=(cls,), num=num, steps=20, sampler="dpmpp", guidance=1.0, targets=targets,
                              target_strength=strength, target_candidates=candidates if targets else None)
    sample_to_folder(pipe, out, settings, overwrite=True, show_progress=False)
    return out, (time.perf_counter() - t0) / num


def median_es_all(folder: Path, cls: str, root: Path) -> float:
    """Median E_S of a folder's samples to the nearest of *all* training images (every class merged
    into one, by symlinks): a sample moved to another fraction is compared with every class."""
    import os
    merged = root / "train_all" / "all"
    if not merged.is_dir():
        merged.mkdir(parents=True)
        for c in sorted(p for p in (root / "train").iterdir() if p.is_dir()):
            for f in sorted(c.glob("*.png")):
                os.symlink(f.resolve(), merged / f"{c.name}_{f.name}")
    import shutil
    gen = root / "merged" / folder.name / "all"
    shutil.rmtree(gen.parent, ignore_errors=True)               # links for exactly this run's samples
    gen.mkdir(parents=True)
    for f in sorted((folder / cls).glob("[0-9][0-9][0-9][0-9].npy")):
        os.symlink(f.resolve(), gen / f.name)
    return median_es(gen.parent, merged.parent, root, "cache_all")


def median_es(folder: Path, train: Path, root: Path, cache: str = "cache") -> float:
    from microdiff.evaluate.evaluate import EvalSettings, evaluate_folders
    res = evaluate_folders(folder, train, folder / "eval", EvalSettings(descriptors=("S",), fid=False,
                                                                       cache_dir=str(root / cache)),
                           show_progress=False)
    (c,) = res.classes.values()
    return c.median["S"]


def fractions(folder: Path, cls: str) -> np.ndarray:
    from microdiff.metrics.descriptors import volume_fraction
    x = np.stack([np.load(f) for f in sorted((folder / cls).glob("[0-9][0-9][0-9][0-9].npy"))])
    return volume_fraction(torch.from_numpy(x)).numpy()


def vf_table(pipe, root: Path, train: Path, num: int, mix: str | None = None) -> list[dict]:
    rows, plain = [], {}
    for cls in sorted(FRACTIONS):
        folder, sps = sample(pipe, root, f"plain_{cls}", cls, num)
        plain[cls] = dict(folder=folder, sps=sps, vf=fractions(folder, cls), es=median_es(folder, train, root),
                          es_all=median_es_all(folder, cls, root))
    for cls, target in VF_CASES:
        goal = {"vf": target, **({"mix": mix} if mix else {})}
        folder, sps = sample(pipe, root, f"{'mix_' if mix else ''}vf_{cls}_{target}", cls, num, goal)
        vf = fractions(folder, cls)
        near = min((c for c in FRACTIONS if c != cls), key=lambda c: abs(FRACTIONS[c] - target))
        rows.append(dict(cls=cls, target=target, n=num, mix=mix, sps=sps, sps_plain=plain[cls]["sps"],
                         plain_mean=float(plain[cls]["vf"].mean()), mean=float(vf.mean()), std=float(vf.std()),
                         within=float(np.mean(np.abs(vf - target) <= 0.015)),
                         es=median_es(folder, train, root), es_plain=plain[cls]["es"],
                         es_all=median_es_all(folder, cls, root), es_all_plain=plain[cls]["es_all"],
                         neighbour=near, es_all_neighbour=plain[near]["es_all"]))
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


def s2_table(pipe, root: Path, num: int, mix: str | None = None, candidates: int = 1) -> list[dict]:
    from microdiff.targets import TwoPoint, VolumeFraction
    rows = []
    for cls in FRACTIONS:
        ref = TwoPoint.from_image(reference(root, cls, 0))
        cases = [(0.0, "", [ref], 1)]
        if candidates > 1:     # selection alone, and with the descent
            cases += [(0.0, f"k{candidates}_", [ref], candidates), (3.0, f"k{candidates}_", [ref], candidates)]
        else:
            cases.append((3.0, "", [ref], 1))
        if mix:            # the reference's own fraction (S2 at r = 0) by class mixture, beside the S2 descent
            cases.append((3.0, f"mix_{cases[-1][1]}", [ref, VolumeFraction(value=ref.curve[0], mix=mix)], candidates))
        for strength, tag, goal, k in cases:
            folder, sps = sample(pipe, root, f"{tag}s2_{cls}_{strength:g}", cls, num, goal, strength, k)
            errs = [json.loads(f.read_text())["targets"][0]["rmse"] for f in sorted((folder / cls).glob("*.json"))]
            rows.append(dict(cls=cls, strength=strength, mix="mix_" in tag, candidates=k, n=num, sps=sps,
                             median_rmse=float(np.median(errs)), mean_rmse=float(np.mean(errs))))
            print(json.dumps(rows[-1]), flush=True)
    return rows


def descriptor_table(pipe, root: Path, num: int, candidates: int = 1) -> list[dict]:
    from microdiff.evaluate.characterize import characterize
    from microdiff.targets import Descriptor
    rows = []
    ref = reference(root, "FVC50", 1)
    for kind in ("gram", "correlations"):
        npy = root / "refs" / f"FVC50_1_{kind}.npy"
        characterize([ref], kind, out=npy)
        target = Descriptor.from_file(npy, kind)
        cases = [(0.0, 1), (3.0, 1)]
        if candidates > 1:       # selection alone; guided too for Gram (guided correlations cost ~10x a sample)
            cases = [(0.0, 1), (0.0, candidates)] + ([(3.0, candidates)] if kind == "gram" else [])
        for strength, k in cases:
            name = f"d_{kind}_{strength:g}" + (f"_k{k}" if k > 1 else "")
            folder, sps = sample(pipe, root, name, "FVC50", num, [target], strength, k)
            errs = [json.loads(f.read_text())["targets"][0]["relative_error"]
                    for f in sorted((folder / "FVC50").glob("*.json"))]
            rows.append(dict(descriptor=kind, strength=strength, candidates=k, n=num, sps=sps,
                             median_rel=float(np.median(errs))))
            print(json.dumps(rows[-1]), flush=True)
    return rows


def grid(root: Path, prefix: str = "mix_", per_row: int = 8) -> Path:
    """ROOT/<prefix>grid.png: per row the first samples of one folder (unguided and moved cases)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    rows = [(f"plain_{c}", c) for c in sorted(FRACTIONS)] + [(f"{prefix}vf_{c}_{t}", c) for c, t in VF_CASES]
    rows = [(f, c) for f, c in rows if (root / f / c).is_dir()]
    fig, axes = plt.subplots(len(rows), per_row, figsize=(1.5 * per_row, 1.6 * len(rows)), squeeze=False)
    for ax_row, (folder, cls) in zip(axes, rows):
        files = sorted((root / folder / cls).glob("[0-9][0-9][0-9][0-9].npy"))[:per_row]
        for ax, f in zip(ax_row, files):
            ax.imshow(np.squeeze(np.load(f)), cmap="gray", vmin=0, vmax=1)
        for ax in ax_row:
            ax.axis("off")
        ax_row[0].set_title(folder, fontsize=9, loc="left")
    fig.tight_layout()
    out = root / f"{prefix}grid.png"
    fig.savefig(out, dpi=60)
    plt.close(fig)
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--root", default="runs/targets")
    ap.add_argument("--num", type=int, default=32)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--only", default="vf,s2,descriptor")
    ap.add_argument("--mix", default=None, help="classes for --target-mix (e.g. all): vf by class mixture")
    ap.add_argument("--candidates", type=int, default=1, help="S2 and descriptor targets: best of K draws")
    ap.add_argument("--descriptor-num", type=int, default=4, help="samples per descriptor case")
    a = ap.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    from microdiff.data.synth import synth_fiber
    from microdiff.demo import shipped_model_dir
    from microdiff.generate.pipeline import load_pipeline
    root = Path(a.root)
    root.mkdir(parents=True, exist_ok=True)
    train = root / "train"
    if not train.is_dir():
        synth_fiber(train, size=64, per_class=200, seed=0, show_progress=False)
    pipe = load_pipeline(shipped_model_dir())
    results = json.loads((root / "results.json").read_text()) if (root / "results.json").is_file() else {}
    parts = a.only.split(",")
    if "vf" in parts:
        results["vf" + ("_mix" if a.mix else "")] = vf_table(pipe, root, train, a.num, a.mix)
        print("grid:", grid(root, "mix_" if a.mix else ""))
    if "s2" in parts:
        key = "s2" + ("_mix" if a.mix else "") + (f"_k{a.candidates}" if a.candidates > 1 else "")
        results[key] = s2_table(pipe, root, max(8, a.num // 2), a.mix, a.candidates)
    if "descriptor" in parts:
        key = "descriptor" + (f"_k{a.candidates}" if a.candidates > 1 else "")
        results[key] = descriptor_table(pipe, root, a.descriptor_num, a.candidates)
    results["threads"] = torch.get_num_threads()
    (root / "results.json").write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
