"""Volumes against real micro-CT: Ketton limestone (256^3, binary; Mosser et al. 2017, MIT).

The volume is split along z: the part z < 128 gives the training data, the part z >= 128 the
truth. Training: 64^2 crops of planar sections cut along all three axes of the training part
(sections normal to z, y and x in turn, each at a random position; manifest.csv records the
normal), one class `ketton`, 8-bit gray (pore 0, grain 255). Truth: the 32 disjoint 64^3 cubes of
the other part (labels: 1 = grain, 0 = pore). microdiff trains the `cpu` preset for a fixed step
count and builds 64^3 volumes with `sample3d`; SliceGAN (benchmarks/peers/slicegan.py, run from
its own checkout) trains on the same training part for the same wall-clock seconds. Both are
compared with the truth cubes by `microdiff evaluate --truth` for the pore phase (phase 0), as is
a classical grain model fitted to the sections' porosity and pore chords (PoreSpy's overlapping
spheres, benchmarks/peers/porespy_grains.py, run from a folder holding PoreSpy).

    python benchmarks/ct.py prepare  --root runs/ct --volume ../shared/data/ct/ketton.tif
    python benchmarks/ct.py train    --root runs/ct --steps 1750 [--run run]
    python benchmarks/ct.py train    --root runs/ct --steps 3500 --run long --resume   # a copy of run, continued
    python benchmarks/ct.py sample   --root runs/ct --num 8 [--name vols --sample-steps 20 --run run --extra "..."]
    python benchmarks/ct.py slicegan --root runs/ct --slicegan /path/to/SliceGAN [--seconds S] --num 8
    python benchmarks/ct.py grains   --root runs/ct --porespy /path/to/folder --num 8   # PoreSpy's overlapping spheres
    python benchmarks/ct.py compare  --root runs/ct [--names vols,slicegan,grains]   # -> runs/ct/compare.md
"""
from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

SIDE = 64
AXES = "zyx"


def load(volume: Path) -> np.ndarray:
    import tifffile
    v = tifffile.imread(volume)
    if v.ndim != 3 or len(np.unique(v)) != 2:
        raise SystemExit(f"{volume}: expected a binary 3-D volume")
    return (v > v.min()).astype(np.uint8)                     # 1 = grain, 0 = pore


def prepare(root: Path, volume: Path, per_axis: int, seed: int = 0) -> None:
    from microdiff.data.dataset import DatasetWriter
    v = load(volume)
    half = v.shape[0] // 2
    train, rest = v[:half], v[half:]
    rng = np.random.default_rng(seed)
    with DatasetWriter(root / "data", overwrite=True) as w:
        for i in range(3 * per_axis):
            axis = i % 3
            index = int(rng.integers(train.shape[axis]))
            sec = np.take(train, index, axis=axis)
            r, c = (int(rng.integers(n - SIDE + 1)) for n in sec.shape)
            crop = sec[r:r + SIDE, c:c + SIDE].astype(np.float32)
            w.add("ketton", f"{i:05d}", crop, normal=AXES[axis], index=index, row=r, col=c)
        w.commit({"kind": "Ketton limestone micro-CT, planar sections of z < 128", "side": SIDE})
    truth = root / "truth"
    truth.mkdir(parents=True, exist_ok=True)
    k = 0
    for z in range(0, rest.shape[0] - SIDE + 1, SIDE):
        for y in range(0, rest.shape[1] - SIDE + 1, SIDE):
            for x in range(0, rest.shape[2] - SIDE + 1, SIDE):
                np.save(truth / f"{k:04d}_labels.npy", rest[z:z + SIDE, y:y + SIDE, x:x + SIDE])
                k += 1
    np.save(root / "train_volume.npy", train)
    print(f"{3 * per_axis} training crops, {k} truth cubes; porosity: training part {1 - train.mean():.4f}, "
          f"truth part {1 - rest.mean():.4f}")


def _run(cmd: list[str]) -> float:
    print("+", " ".join(shlex.quote(c) for c in cmd), flush=True)
    t = time.perf_counter()
    rc = subprocess.run(cmd).returncode
    if rc != 0:                                         # the step has printed its own message
        raise SystemExit(f"stopped: '{' '.join(cmd[1:4])} ...' exited with {rc} (its message is above)")
    return time.perf_counter() - t


def _seconds_file(root: Path, run: str) -> Path:
    return root / ("train_seconds.json" if run == "run" else f"train_seconds_{run}.json")


def train(root: Path, steps: int, run: str, resume: bool, sets: list[str]) -> None:
    """Train the `cpu` preset (with the `--set` overrides) to `steps`; with `resume`, continue the run
    folder from its last checkpoint (with the preset's constant learning rate after warm-up, a
    continued run is a longer run) and add the seconds."""
    before = json.loads(_seconds_file(root, run).read_text())["seconds"] if resume else 0.0
    flag = "--resume" if resume else "--overwrite"
    seconds = _run([sys.executable, "-m", "microdiff", "train", "--data", str(root / "data"), "--out",
                    str(root / run), "--preset", "cpu", "--steps", str(steps), flag, "--no-progress",
                    *[f"--set={kv}" for kv in sets]])
    _seconds_file(root, run).write_text(json.dumps({"steps": steps, "seconds": round(before + seconds, 1)}))


def sample(root: Path, name: str, num: int, steps: int, run: str, extra: str) -> None:
    _run([sys.executable, "-m", "microdiff", "sample3d", "--model", str(root / run / "model"), "--class", "ketton",
          "--num", str(num), "--size", str(SIDE), "--steps", str(steps), "--segment", "otsu", "--out",
          str(root / name), "--overwrite", *shlex.split(extra)])
    (root / name / "sampled_from.json").write_text(json.dumps({"run": run, "steps": steps}))


def slicegan(root: Path, source: Path, seconds: float | None, num: int) -> None:
    if seconds is None:
        seconds = json.loads((root / "train_seconds.json").read_text())["seconds"]
    runner = str(Path(__file__).parent / "peers" / "slicegan.py")
    out = root / "slicegan_run"
    _run([sys.executable, runner, "train", "--slicegan", str(source), "--data", str(root / "train_volume.npy"),
          "--out", str(out), "--seconds", str(seconds)])
    _run([sys.executable, runner, "generate", "--slicegan", str(source), "--out", str(out), "--num", str(num),
          "--size", str(SIDE)])
    _labels(out / "volumes", root / "slicegan")


def grains(root: Path, porespy: Path, num: int) -> None:
    runner = str(Path(__file__).parent / "peers" / "porespy_grains.py")
    out = root / "grains_run"
    _run([sys.executable, runner, "--porespy", str(porespy), "--data", str(root / "train_volume.npy"),
          "--out", str(out), "--num", str(num), "--size", str(SIDE)])
    _labels(out / "volumes", root / "grains")


def _labels(src: Path, vols: Path) -> None:
    """A peer's volumes (NNNN.npy, 1 = grain) as the label files ``evaluate`` reads."""
    vols.mkdir(exist_ok=True)
    for f in sorted(src.glob("*.npy")):
        np.save(vols / f"{f.stem}_labels.npy", np.load(f))


def evaluate(root: Path, name: str) -> dict:
    out = root / f"eval_{name}"
    _run([sys.executable, "-m", "microdiff", "evaluate", "--generated", str(root / name), "--truth",
          str(root / "truth"), "--phase", "0", "--out", str(out)])
    import csv
    with open(out / "summary.csv", newline="") as fh:
        return {(r["descriptor"], r["axis"]): r for r in csv.DictReader(fh)}


def compare(root: Path, names: list[str]) -> None:
    rows = {n: evaluate(root, n) for n in names if (root / n).is_dir()}
    if not rows:
        raise SystemExit(f"compare: none of --names {','.join(names)} is a folder of volumes under {root}")
    keys = [("vf", ""), ("surface", ""), ("cluster", "")] + [("s2", a) for a in AXES] + \
        [("tortuosity", a) for a in AXES] + [("percolation", a) for a in AXES] + [("mean_chord", a) for a in AXES] + \
        [("chord_lengths", a) for a in AXES] + [("pore_sizes", ""), ("thickness", ""), ("euler", "")]
    first = next(iter(rows.values()))
    head = ["descriptor (pore phase)", "truth median ± std [range]"] + [f"{n}: median ± std (verdict)" for n in rows]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for k in keys:
        if k not in first:
            continue
        t = first[k]
        label = f"{k[0]} {k[1]}".strip() + (" (distance to the truth's mean)" if t["kind"] == "curve" else "")
        cells = [label, f"{float(t['truth_median']):.4g} ± {float(t['truth_std']):.3g} "
                        f"[{float(t['truth_min']):.4g}, {float(t['truth_max']):.4g}]"]
        for r in rows.values():
            g = r[k]
            cells.append(f"{float(g['generated_median']):.4g} ± {float(g['generated_std']):.3g} ({g['verdict']}"
                         + (f", {g['generated_finite']} finite" if k[0] == "tortuosity" else "") + ")")
        lines.append("| " + " | ".join(cells) + " |")
    secs = [f"- {n}: " + _seconds(root, n) for n in rows]
    text = "# Ketton: 64^3 volumes against the 32 truth cubes (pore phase)\n\n" + "\n".join(lines) + "\n\n" + \
        "\n".join(secs) + "\n"
    (root / "compare.md").write_text(text)
    print(text)


def _seconds(root: Path, name: str) -> str:
    if name == "slicegan":
        t = json.loads((root / "slicegan_run" / "train.json").read_text())
        g = json.loads((root / "slicegan_run" / "generate.json").read_text())
        return (f"trained {t['seconds']:.0f} s ({t['iterations']} iterations, {t['generator_updates']} generator "
                f"updates), {g['mean_seconds_per_volume']:.1f} s per volume")
    if name == "grains":
        g = json.loads((root / "grains_run" / "generate.json").read_text())
        return (f"PoreSpy {g['porespy']} overlapping spheres, R {g['radius']:.2f} voxels fitted in "
                f"{g['fit_seconds']:.1f} s, calibrated in {g['calibrate_seconds']:.0f} s, "
                f"{g['mean_seconds_per_volume']:.2f} s per volume")
    made = root / name / "sampled_from.json"
    secs = [json.loads(f.read_text())["seconds"] for f in sorted((root / name).glob("*/volume.json"))]
    if not made.is_file() and not secs:
        return "made outside `ct.py sample` (no volume.json): no training or sampling seconds recorded"
    source = json.loads(made.read_text()) if made.is_file() else {"run": "run", "steps": 20}
    t = json.loads(_seconds_file(root, source["run"]).read_text())
    return (f"{source['run']} trained {t['seconds']:.0f} s ({t['steps']} steps), {source['steps']} sampler steps, "
            f"{np.mean(secs):.1f} s per volume")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("action", choices=["prepare", "train", "sample", "slicegan", "grains", "compare"])
    ap.add_argument("--root", type=Path, default=Path("runs/ct"))
    ap.add_argument("--volume", type=Path, default=Path(__file__).resolve().parents[2] / "shared/data/ct/ketton.tif")
    ap.add_argument("--per-axis", type=int, default=800, help="prepare: training crops per axis")
    ap.add_argument("--steps", type=int, default=1750, help="train: optimizer steps (the total, when resuming)")
    ap.add_argument("--sample-steps", type=int, default=20, help="sample: DPM-Solver++ steps per volume")
    ap.add_argument("--run", default="run", help="train, sample: the run folder under --root")
    ap.add_argument("--resume", action="store_true", help="train: continue --run from its last checkpoint")
    ap.add_argument("--set", action="append", default=[], help="train: a setting KEY=VALUE of `microdiff train` (repeat)")
    ap.add_argument("--num", type=int, default=8)
    ap.add_argument("--name", default="vols", help="sample: the output folder under --root")
    ap.add_argument("--extra", default="", help="sample: more sample3d flags")
    ap.add_argument("--slicegan", type=Path, help="slicegan: the path of a SliceGAN checkout")
    ap.add_argument("--porespy", type=Path, help="grains: a folder holding porespy (pip install --target FOLDER porespy)")
    ap.add_argument("--seconds", type=float, default=None, help="slicegan: budget (default: microdiff's training)")
    ap.add_argument("--names", default="vols,slicegan", help="compare: the volume folders under --root")
    a = ap.parse_args()
    if a.action == "prepare":
        prepare(a.root, a.volume, a.per_axis)
    elif a.action == "train":
        train(a.root, a.steps, a.run, a.resume, a.set)
    elif a.action == "sample":
        sample(a.root, a.name, a.num, a.sample_steps, a.run, a.extra)
    elif a.action == "slicegan":
        if a.slicegan is None:
            raise SystemExit("slicegan: give --slicegan PATH (a checkout of github.com/stke9/SliceGAN)")
        slicegan(a.root, a.slicegan, a.seconds, a.num)
    elif a.action == "grains":
        if a.porespy is None:
            raise SystemExit("grains: give --porespy FOLDER (made by 'pip install --target FOLDER porespy')")
        grains(a.root, a.porespy, a.num)
    else:
        compare(a.root, [n.strip() for n in a.names.split(",") if n.strip()])


if __name__ == "__main__":
    main()
