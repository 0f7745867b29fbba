"""3D volumes from a 2D model (issue 10), against known truth.

Isotropic: the `cpu` preset trained on planar sections of the `grf3d` kind; 64^3 volumes from it
(alternate, fuse and product plane modes) segmented with Otsu's threshold and compared with true 64^3
volumes of the same kind: volume fraction, S2 along z, y, x, specific surface S_V, fraction in the
largest cluster; the same numbers for 2D sections of the truth beside them, and for the true
volumes imaged as the training sections are and segmented by Otsu (``imaged_truth``: the floor of
what a model of those sections can show). Anisotropic: a model
trained on `fiber3d` cross-sections and longitudinal sections, sampled with
--axes longitudinal,longitudinal,cross: S2 along the fiber axis (z) against in-plane S2.

    python benchmarks/volumes.py data    --root runs/3d
    python benchmarks/volumes.py train   --root runs/3d --kind grf --minutes 24 --threads 1 --preset cpu-paper
    python benchmarks/volumes.py train   --root runs/3d_edm --kind grf --train-steps 1660   # the EDM cpu preset
    python benchmarks/volumes.py sample  --root runs/3d --kind grf --planes alternate,fuse --num 8
    python benchmarks/volumes.py sample  --root runs/3d_edm --kind grf --planes product --num 2
    python benchmarks/volumes.py compare --root runs/3d --kind grf        # -> runs/3d/grf_report.md
    python benchmarks/volumes.py timing  --root runs/3d --kind grf --sizes 64,96,128
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

R = 16                        # S2 compared for r = 0 .. R - 1 voxels
AXES = "zyx"


def data(root: Path) -> None:
    from microdiff.data.synth3d import synth_3d
    synth_3d(root / "grf", "grf", 64, per_class=400, volumes=8, seed=0, overwrite=True, show_progress=False)
    synth_3d(root / "fiber", "fiber", 64, per_class=200, volumes=4, seed=0, overwrite=True, show_progress=False)


def train(root: Path, kind: str, minutes: float | None, preset: str = "cpu", steps: int | None = None) -> None:
    """The preset trained on the kind's sections: for ``minutes``, or for ``steps`` optimizer steps."""
    from microdiff.config import apply_overrides, get_preset
    from microdiff.train import train_model
    cfg = get_preset(preset) if steps is None else apply_overrides(get_preset(preset), [f"train.steps={steps}"])
    train_model(root / kind / "slices", root / f"{kind}_run", cfg, max_minutes=None if steps else minutes,
                overwrite=True, show_progress=False)


def sample(root: Path, kind: str, planes: list[str], num: int, steps: int, guidance: float) -> None:
    from microdiff.generate.pipeline import load_pipeline
    from microdiff.generate import sample3d_to_folder
    pipe = load_pipeline(root / f"{kind}_run" / "model")
    spec = dict(class_name="grf") if kind == "grf" else dict(axes="longitudinal,longitudinal,cross")
    for mode in planes:
        res = sample3d_to_folder(pipe, root / f"{kind}_{mode}", num=num, steps=steps, sampler="dpmpp",
                                 guidance=guidance, size=64, planes=mode, segment="otsu", resume=True
                                 if (root / f"{kind}_{mode}" / "sample3d.json").is_file() else False,
                                 show_progress=False, **spec)
        if res.seconds:
            print(f"{kind} {mode}: {np.mean(res.seconds):.1f} s per 64^3 volume ({len(res.seconds)} volumes)")


# ----------------------------------------------------------------------------- comparison

def _describe(ind):
    """The numbers this benchmark compares, of one indicator (a volume or a section)."""
    from types import SimpleNamespace

    from microdiff.metrics import volume as V
    return SimpleNamespace(s2_along=V.s2_along(ind), volume_fraction=V.volume_fraction(ind),
                           specific_surface=V.specific_surface(ind),
                           largest_cluster_fraction=V.largest_cluster_fraction(ind), percolates=V.percolates(ind))


def _stats(descs, sections: bool = False) -> dict:
    """Mean and std over volumes (or sections) of each number, and the mean S2 per axis."""
    s2 = np.mean([d.s2_along[:, :R] for d in descs], axis=0)
    return {"n": len(descs), "vf": _ms([d.volume_fraction for d in descs]),
            "sv": _ms([d.specific_surface for d in descs]), "lcf": _ms([d.largest_cluster_fraction for d in descs]),
            "s2": s2, "perc": np.mean([d.percolates for d in descs], axis=0)}


def _ms(v) -> tuple[float, float]:
    return float(np.mean(v)), float(np.std(v))


def truth_sections(vols: list[np.ndarray], per_volume: int = 12, seed: int = 0):
    rng = np.random.default_rng(seed)
    out = []
    for v in vols:
        for _ in range(per_volume):
            ax = int(rng.integers(3))
            out.append(_describe(np.take(v, int(rng.integers(v.shape[ax])), axis=ax)))
    return out


def imaged_truth(root: Path, kind: str, truth: list[np.ndarray]) -> list[np.ndarray]:
    """The true volumes as a model of the sections sees them: each volume made again from its
    seed (checked against its saved labels), its sections normal to z rendered exactly as the
    training sections are (``render_section``: blur, noise, shading), the stack segmented by one
    Otsu threshold. A floor for the labels' figures: what segmenting imaged sections gives where
    the structure is exactly right (a blurred, noisy gap between two fibers can fall above the
    threshold, and the fibers then touch)."""
    from microdiff.data.synth3d import make_volume, render_section
    from microdiff.metrics.segmentation import multi_otsu_thresholds
    meta = json.loads((root / kind / "synth3d.json").read_text())
    out = []
    for i, labels in enumerate(truth):
        vol, rng = make_volume(kind, np.random.SeedSequence([meta["seed"], 1, i]), meta["size"], meta["fraction"])
        assert (vol.labels == labels).all(), f"true volume {i} is not the one its seed makes"
        img = np.stack([render_section(vol, 0, k, rng) for k in range(meta["size"])])
        out.append((img > multi_otsu_thresholds(img, 2)[0]).astype(np.uint8))
    return out


def compare(root: Path, kind: str) -> str:
    truth = [np.load(f) for f in sorted((root / kind / "volumes").glob("*_labels.npy"))]
    rows = {"truth (3D)": _stats([_describe(v) for v in truth]),
            "truth, 2D sections": _stats(truth_sections(truth)),
            "truth imaged: z-sections rendered as the training ones, Otsu": _stats(
                [_describe(v) for v in imaged_truth(root, kind, truth)])}
    for mode in ("alternate", "fuse", "product"):
        folder = root / f"{kind}_{mode}"
        labs = [np.load(f) for f in sorted(folder.glob("*/labels.npy"))]
        if labs:
            secs = [json.loads(f.read_text())["seconds"] for f in sorted(folder.glob("*/volume.json"))]
            rows[f"generated, {mode}"] = {**_stats([_describe(lab) for lab in labs]), "sec": float(np.mean(secs))}
    ref = rows["truth (3D)"]
    lines = [f"# {kind}: generated 64^3 volumes against the truth", "",
             "| volumes | n | vf | S_V (1/voxel) | largest cluster | S2 RMSE z / y / x vs truth | axis spread | "
             "percolating z/y/x | s per volume |",
             "|---|---|---|---|---|---|---|---|---|"]
    truth_s2 = ref["s2"].mean(0) if kind == "grf" else ref["s2"]
    for name, r in rows.items():
        s2 = r["s2"]
        if s2.shape[0] == 3:
            target = np.broadcast_to(truth_s2, s2.shape) if kind == "grf" else truth_s2
            rmse = " / ".join(f"{np.sqrt(np.mean((s2[a] - target[a]) ** 2)):.4f}" for a in range(3))
            spread = f"{np.max(np.abs(s2 - s2.mean(0))):.4f}"
            perc = " / ".join(f"{p:.2f}" for p in r["perc"])
        else:
            target = truth_s2 if kind == "grf" else None
            rmse = "—" if target is None else " / ".join(
                f"{np.sqrt(np.mean((s2[a] - target) ** 2)):.4f}" for a in range(2)) + " (in-plane)"
            spread, perc = f"{np.max(np.abs(s2 - s2.mean(0))):.4f}", "—"
        lines.append(f"| {name} | {r['n']} | {r['vf'][0]:.4f} ± {r['vf'][1]:.4f} | {r['sv'][0]:.4f} ± {r['sv'][1]:.4f} "
                     f"| {r['lcf'][0]:.4f} ± {r['lcf'][1]:.4f} | {rmse} | {spread} | {perc} | "
                     f"{r.get('sec', float('nan')):.1f} |")
    lines += ["", "Relative to the truth (3D): "]
    for name, r in rows.items():
        if name.startswith(("generated", "truth imaged")):
            lines.append(f"- {name}: vf {100 * (r['vf'][0] - ref['vf'][0]):+.2f} points, S_V "
                         f"{100 * (r['sv'][0] / ref['sv'][0] - 1):+.1f} %, largest cluster "
                         f"{100 * (r['lcf'][0] / ref['lcf'][0] - 1):+.1f} %")
    lines += ["", "S2(r) per axis, r = 0, 2, 4, ... (z / y / x):", ""]
    for name, r in rows.items():
        for a in range(r["s2"].shape[0]):
            lines.append(f"- {name}, {AXES[a] if r['s2'].shape[0] == 3 else 'in-plane ' + 'ab'[a]}: "
                         + " ".join(f"{v:.3f}" for v in r["s2"][a, ::2]))
    text = "\n".join(lines) + "\n"
    (root / f"{kind}_report.md").write_text(text)
    _plot(root, kind, rows)
    return text


def _plot(root: Path, kind: str, rows: dict) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, axs = plt.subplots(1, 3, figsize=(12, 3.6), sharey=True)
    colors = {name: f"C{k}" for k, name in enumerate(rows)}          # one colour per row in every panel
    for a, ax in enumerate(axs):
        for name, r in rows.items():
            if r["s2"].shape[0] == 3:
                ax.plot(r["s2"][a], color=colors[name], label=name, ls="-" if "truth" in name else "--")
            else:                                                     # 2D sections: their in-plane mean
                ax.plot(r["s2"].mean(0), color=colors[name], label=name + " (in-plane)", ls=":")
        ax.set_title(f"S2 along {AXES[a]}")
        ax.set_xlabel("r (voxels)")
    axs[0].set_ylabel("S2(r)")
    axs[0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(root / f"{kind}_s2.png", dpi=110)


# ----------------------------------------------------------------------------- timing

def timing(root: Path, kind: str, sizes: list[int], steps: int, planes: str) -> None:
    """Seconds per volume and peak resident memory, one child process per size."""
    spec = ["--class", "grf"] if kind == "grf" else ["--axes", "longitudinal,longitudinal,cross"]
    for n in sizes:
        out = root / f"timing_{kind}_{planes}_{n}"
        cmd = [sys.executable, "-c", "import resource, runpy, sys; sys.argv = sys.argv[1:]; "
               "from microdiff.cli import main; rc = main(sys.argv[1:]); "
               "print('peak_rss_mb', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024); sys.exit(rc)",
               "x", "sample3d", "--model", str(root / f"{kind}_run" / "model"), *spec, "--size", str(n),
               "--steps", str(steps), "--sampler", "dpmpp", "--planes", planes, "--out", str(out), "--overwrite"]
        t = time.perf_counter()
        res = subprocess.run(cmd, capture_output=True, text=True)
        wall = time.perf_counter() - t
        sec = json.loads((out / "0000" / "volume.json").read_text())["seconds"] if res.returncode == 0 else None
        peak = [ln for ln in res.stdout.splitlines() if ln.startswith("peak_rss_mb")]
        print(f"{n}^3 {planes}: sampling {sec} s, wall {wall:.1f} s, {peak[0] if peak else res.stderr[-300:]}",
              flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("action", choices=["data", "train", "sample", "compare", "timing"])
    ap.add_argument("--root", default="runs/3d")
    ap.add_argument("--kind", default="grf", choices=["grf", "fiber"])
    ap.add_argument("--minutes", type=float, default=24.0)
    ap.add_argument("--preset", default="cpu", help="train: the preset (the first runs in BENCHMARKS used cpu-paper)")
    ap.add_argument("--train-steps", type=int, default=None, help="train: this many steps instead of --minutes")
    ap.add_argument("--planes", default="product,alternate")
    ap.add_argument("--num", type=int, default=8)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--guidance", type=float, default=1.0)
    ap.add_argument("--sizes", default="64,96,128")
    ap.add_argument("--threads", type=int, default=None)
    a = ap.parse_args()
    from microdiff.core.launch import keep_freed_memory
    keep_freed_memory()                      # as the command line does: large blocks reused, not re-zeroed
    if a.threads:
        import torch
        torch.set_num_threads(a.threads)
        os.environ["OMP_NUM_THREADS"] = str(a.threads)
    root = Path(a.root)
    if a.action == "data":
        data(root)
    elif a.action == "train":
        train(root, a.kind, a.minutes, a.preset, a.train_steps)
    elif a.action == "sample":
        sample(root, a.kind, a.planes.split(","), a.num, a.steps, a.guidance)
    elif a.action == "compare":
        print(compare(root, a.kind))
    else:
        timing(root, a.kind, [int(s) for s in a.sizes.split(",")], a.steps, a.planes.split(",")[0])


if __name__ == "__main__":
    main()
