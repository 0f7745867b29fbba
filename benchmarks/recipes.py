"""Training recipes at equal compute (issue 14): the paper's improved-DDPM recipe against faster ones.

The same `cpu` U-Net, data and seeds; each recipe trains for the same number of optimizer
steps, which is the same compute (a step costs the same in every recipe: `calibrate` measures
it on an idle machine and converts the step budgets to minutes). Checkpoints at the budgets are
evaluated with the project's own metrics: per-class KID against the training images, the median
E_S / E_G to the nearest training image against the same for held-out real images (the
real-vs-real floor), and for the fiber data the error of the Otsu fiber fraction.

    python benchmarks/recipes.py prepare   --root runs/recipes
    python benchmarks/recipes.py calibrate --root runs/recipes
    python benchmarks/recipes.py train     --root runs/recipes --data fiber --recipes paper,edm --seeds 0,1
    python benchmarks/recipes.py evaluate  --root runs/recipes
    python benchmarks/recipes.py report    --root runs/recipes      # table + plot
"""
from __future__ import annotations

import argparse
import json
import math
import os
import time
from pathlib import Path

import numpy as np
import torch

UHCS = Path(__file__).resolve().parents[2] / "shared" / "data" / "uhcs"
RECIPES = {   # overrides of the cpu-paper preset (the cpu preset before issue 14)
    "paper": [],                                                            # eps, eps skip, hybrid loss, learned Sigma
    "min_snr": ["diffusion.recipe=min_snr", "model.learn_sigma=false"],
    "v_cosine": ["diffusion.recipe=v", "diffusion.schedule=cosine", "model.learn_sigma=false",
                 "model.eps_skip_sigma=0"],
    "edm": ["diffusion.recipe=edm", "model.learn_sigma=false", "model.eps_skip_sigma=0"],
}
SAMPLE = dict(sampler="dpmpp", steps=20, guidance=1.5)
NUM_EVAL = 32                       # generated (and held-out) images per class


# ----------------------------------------------------------------------------- data

def prepare(root: Path) -> None:
    from microdiff.data.prepare import PrepareSettings, prepare_fiber
    from microdiff.data.synth import synth_fiber
    data = root / "data"
    synth_fiber(data / "fiber", size=64, per_class=200, seed=0, overwrite=True, show_progress=False)
    synth_fiber(data / "fiber_heldout", size=64, per_class=NUM_EVAL, seed=1, overwrite=True, show_progress=False)
    # UHCS: the 24 SEM micrographs by class; every 5th (by id) is held out; random 192 px regions -> 64 px
    import sqlite3
    con = sqlite3.connect(UHCS / "microstructures.sqlite")
    files = sorted((UHCS / "images").glob("uhcs*.tif"))
    for split in ("train", "heldout"):
        tree = data / f"uhcs_src_{split}"
        for k, f in enumerate(files):
            (cls,) = con.execute("SELECT primary_microconstituent FROM micrograph WHERE micrograph_id = ?",
                                 (int(f.stem[4:]),)).fetchone()
            if (k % 5 == 4) == (split == "heldout"):
                (tree / cls).mkdir(parents=True, exist_ok=True)
                link = tree / cls / f.name
                if not link.exists():
                    link.symlink_to(f)
    per = {"train": 200, "heldout": NUM_EVAL}
    for split in ("train", "heldout"):
        prepare_fiber(data / f"uhcs_src_{split}", data / ("uhcs" if split == "train" else "uhcs_heldout"),
                      PrepareSettings(size=64, per_class=per[split], seed=0, overwrite=True),
                      regions_per_image=12, region_px=192, show_progress=False)


def config_for(recipe: str, seed: int, steps: int, every: int):
    from microdiff.config import apply_overrides, get_preset
    return apply_overrides(get_preset("cpu-paper"), RECIPES[recipe] + [
        f"train.seed={seed}", f"train.steps={steps}", f"train.checkpoint_every={every}",
        "train.keep_checkpoints=100", "train.sample_every=0", "train.log_every=50"])


# ----------------------------------------------------------------------------- calibrate and train

def calibrate(root: Path, steps: int = 40) -> dict:
    """Seconds per optimizer step of each recipe (batch 16), on this machine, now."""
    from microdiff.train import Trainer
    out = {}
    for recipe in RECIPES:
        run = root / "calibrate" / recipe
        tr = Trainer(root / "data" / "fiber", run, config_for(recipe, 0, 10 ** 6, 10 ** 6), overwrite=True,
                     show_progress=False, log=lambda *a: None)
        for _ in range(5):
            tr.step()
        t0 = time.perf_counter()
        for _ in range(steps):
            tr.step()
        out[recipe] = (time.perf_counter() - t0) / steps
    (root / "calibration.json").write_text(json.dumps({"seconds_per_step": out, "threads": torch.get_num_threads()},
                                                      indent=2))
    return out


def train(root: Path, data: str, recipes: list[str], seeds: list[int], steps: int, every: int) -> None:
    from microdiff.train import train_model
    for seed in seeds:                      # seed-major: every recipe has a first result early
        for recipe in recipes:
            run = root / "runs" / f"{data}_{recipe}_s{seed}"
            resume = (run / "checkpoints").is_dir() and any((run / "checkpoints").iterdir())
            done = [int(c.name[5:]) for c in (run / "checkpoints").glob("step_*")] if resume else []
            if max(done, default=0) >= steps:
                continue                    # finished (or trained past this budget by a longer earlier run)
            t0 = time.perf_counter()
            train_model(root / "data" / data, run, config_for(recipe, seed, steps, every), resume=resume,
                        overwrite=not resume, show_progress=False, log=lambda *a: None)
            print(json.dumps({"trained": run.name, "seconds": round(time.perf_counter() - t0, 1)}), flush=True)


# ----------------------------------------------------------------------------- evaluate

class Reference:
    """Training images, held-out images and their features for one data set (computed once)."""

    def __init__(self, root: Path, data: str, device: str = "cpu"):
        from microdiff.data.io import list_class_images, read_stack
        self.data, self.root = data, root
        tr = list_class_images(root / "data" / data)
        ho = list_class_images(root / "data" / f"{data}_heldout")
        self.classes = list(tr)
        self.train = {c: torch.from_numpy(read_stack(tr[c])) for c in self.classes}
        self.heldout = {c: torch.from_numpy(read_stack(ho[c][:NUM_EVAL])) for c in self.classes}
        self.desc = {c: {k: describe(k, x) for k in ("S", "G")} for c, x in self.train.items()}
        self.incep = {c: inception(x) for c, x in self.train.items()}

    def scores(self, images: dict[str, torch.Tensor]) -> dict:
        """Per class: KID x 1e3, median E_S and E_G (%) to the nearest training image, fiber error."""
        from microdiff.metrics.descriptors import volume_fraction
        from microdiff.metrics.fid import kid_from_features
        from microdiff.metrics.nearest import min_mse
        out = {}
        for c in self.classes:
            x = images[c]
            kid, _ = kid_from_features(inception(x), self.incep[c], subsets=100)
            row = {"kid_x1e3": 1e3 * kid}
            for k, dim in (("S", None), ("G", 610304)):
                d = describe(k, x)
                v, _ = min_mse(d, [self.desc[c][k]], dim or DIM_S)
                row[f"E_{k}_pct"] = float(100 * v.median())
            if self.data == "fiber":
                row["fiber_error"] = abs(float(volume_fraction(x).mean()) - float(volume_fraction(self.train[c]).mean()))
            out[c] = row
        return out


DIM_S = (32 * 32 + 31 * 31) ** 2


def describe(kind: str, x: torch.Tensor) -> torch.Tensor:
    from microdiff.metrics.descriptors import correlations, gram_matrices
    from microdiff.metrics.nearest import pack_symmetric
    chunks = []
    for s in range(0, len(x), 8):
        b = x[s:s + 8]
        chunks.append(pack_symmetric(correlations(b)).float() if kind == "S" else gram_matrices(b).float())
    return torch.cat(chunks)


def inception(x: torch.Tensor) -> torch.Tensor:
    from microdiff.metrics.fid import inception_features
    return inception_features(x[:, None], device="cpu")


def generate_eval_images(pipe, classes) -> dict[str, torch.Tensor]:
    from microdiff.core.seeding import sample_seed
    from microdiff.generate import generate, sampling_settings
    out = {}
    sampling = sampling_settings(pipe.microdiff_config, SAMPLE["steps"], SAMPLE["sampler"], SAMPLE["guidance"],
                                 NUM_EVAL)
    for c in classes:
        k = pipe.class_index(c)
        imgs = generate(pipe, [k] * NUM_EVAL, [sample_seed(0, k, i) for i in range(NUM_EVAL)], sampling)
        out[c] = imgs[:, 0]
    return out


def evaluate(root: Path, datas: list[str], max_step: int | None = None) -> None:
    from microdiff.train import checkpoint_pipeline
    results = root / "results.jsonl"
    done = {(r["run"], r["step"]) for r in map(json.loads, results.read_text().splitlines())} if results.exists() else set()
    for data in datas:
        ref = None
        runs = sorted((root / "runs").glob(f"{data}_*"))
        if not runs:
            continue
        floor_key = (f"{data}_heldout", 0)
        for run in [None] + runs:
            cks = [None] if run is None else [c for c in sorted((run / "checkpoints").glob("step_*"))
                                              if max_step is None or int(c.name[5:]) <= max_step]
            for ck in cks:
                key = floor_key if run is None else (run.name, int(ck.name[5:]))
                if key in done:
                    continue
                ref = ref or Reference(root, data)
                t0 = time.perf_counter()
                if run is None:
                    scores = ref.scores(ref.heldout)
                else:
                    scores = ref.scores(generate_eval_images(checkpoint_pipeline(ck), ref.classes))
                row = {"run": key[0], "step": key[1], "data": data, "per_class": scores,
                       "seconds": round(time.perf_counter() - t0, 1)}
                with open(results, "a") as fh:
                    fh.write(json.dumps(row) + "\n")
                print(json.dumps({k: row[k] for k in ("run", "step", "seconds")}), flush=True)


# ----------------------------------------------------------------------------- report

def _mean(per_class: dict, key: str) -> float:
    vals = [v[key] for v in per_class.values() if key in v]
    return float(np.mean(vals)) if vals else math.nan


def report(root: Path) -> str:
    rows = [json.loads(x) for x in (root / "results.jsonl").read_text().splitlines()]
    cal = json.loads((root / "calibration.json").read_text())["seconds_per_step"] if (root / "calibration.json").exists() else {}
    sps = np.mean(list(cal.values())) if cal else math.nan
    lines = []
    for data in dict.fromkeys(r["data"] for r in rows):
        floor = next((r for r in rows if r["run"] == f"{data}_heldout"), None)
        keys = ["kid_x1e3", "E_S_pct", "E_G_pct"] + (["fiber_error"] if data == "fiber" else [])
        lines += [f"### {data}", "", "| recipe | steps (min) | " + " | ".join(keys) + " |",
                  "|---|---|" + "---|" * len(keys)]
        if floor:
            lines.append("| held-out real (floor) | – | " + " | ".join(f"{_mean(floor['per_class'], k):.3g}" for k in keys) + " |")
        by = {}
        for r in rows:
            if r["data"] != data or r["run"].endswith("_heldout"):
                continue
            recipe = r["run"][len(data) + 1:].rsplit("_s", 1)[0]
            by.setdefault((recipe, r["step"]), []).append(r)
        for (recipe, step), rs in sorted(by.items(), key=lambda kv: (list(RECIPES).index(kv[0][0]), kv[0][1])):
            cells = []
            for k in keys:
                v = [_mean(r["per_class"], k) for r in rs]
                cells.append(f"{np.mean(v):.3g} ± {np.std(v):.2g}" if len(v) > 1 else f"{v[0]:.3g}")
            lines.append(f"| {recipe} (n={len(rs)}) | {step} ({step * sps / 60:.1f}) | " + " | ".join(cells) + " |")
        lines.append("")
    text = "\n".join(lines)
    (root / "report.md").write_text(text)
    plot(root, rows, sps)
    return text


def plot(root: Path, rows: list[dict], sps: float) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    datas = list(dict.fromkeys(r["data"] for r in rows))
    fig, axes = plt.subplots(len(datas), 2, figsize=(10, 3.6 * len(datas)), squeeze=False)
    for i, data in enumerate(datas):
        floor = next((r for r in rows if r["run"] == f"{data}_heldout"), None)
        for j, key in enumerate(("kid_x1e3", "E_S_pct")):
            ax = axes[i, j]
            for recipe in RECIPES:
                pts = {}
                for r in rows:
                    if r["data"] == data and r["run"].startswith(f"{data}_{recipe}_s"):
                        pts.setdefault(r["step"], []).append(_mean(r["per_class"], key))
                if pts:
                    steps = sorted(pts)
                    m = [np.mean(pts[s]) for s in steps]
                    e = [np.std(pts[s]) for s in steps]
                    ax.errorbar([s * sps / 60 for s in steps], m, yerr=e, marker="o", capsize=3, label=recipe)
            if floor:
                ax.axhline(_mean(floor["per_class"], key), color="k", ls="--", lw=1, label="held-out real")
            ax.set_xlabel("training minutes (2-core CPU)")
            ax.set_ylabel({"kid_x1e3": "KID x 1e3", "E_S_pct": "median E_S (%)"}[key])
            ax.set_yscale("log")
            ax.set_title(f"{data}: {key}")
            ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(root / "recipes.png", dpi=110)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("action", choices=["prepare", "calibrate", "train", "evaluate", "report"])
    ap.add_argument("--root", default="runs/recipes")
    ap.add_argument("--data", default="fiber,uhcs")
    ap.add_argument("--recipes", default=",".join(RECIPES))
    ap.add_argument("--seeds", default="0,1")
    ap.add_argument("--steps", type=int, default=3000)
    ap.add_argument("--every", type=int, default=750, help="checkpoint (and evaluation) interval in steps")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--max-step", type=int, default=None, help="evaluate: only checkpoints up to this step")
    a = ap.parse_args()
    from microdiff.core.launch import keep_freed_memory
    keep_freed_memory()                      # as the command line does: large blocks reused, not re-zeroed
    if a.threads:
        torch.set_num_threads(a.threads)
        os.environ["OMP_NUM_THREADS"] = str(a.threads)
    root = Path(a.root)
    root.mkdir(parents=True, exist_ok=True)
    if a.action == "prepare":
        prepare(root)
    elif a.action == "calibrate":
        print(json.dumps(calibrate(root)))
    elif a.action == "train":
        for data in a.data.split(","):
            train(root, data, a.recipes.split(","), [int(s) for s in a.seeds.split(",")], a.steps, a.every)
    elif a.action == "evaluate":
        evaluate(root, a.data.split(","), a.max_step)
    else:
        print(report(root))


if __name__ == "__main__":
    main()
