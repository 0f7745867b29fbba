"""Layout of non-stationary micrographs (issue 25, item 5): a layout model against today's.

On the built-in layered truth (``synth layers``: a dark surface band, a porous coating, a
substrate; ``data.layers``), two ``cpu``-preset models are trained for the same fixed number of
steps on the same crops: one with ``--layout`` (the crops' positions in their sources as a
condition, and the learning-rate decay that ``train --layout`` brings), one without (a stationary
texture model, constant learning rate after warm-up). Then:

- *whole sources*: ``--num`` canvases of a whole source (96 x 128 px at the training scale) from
  each model; their row profile (mean intensity of every row, across the columns) against the
  truth's, computed on 256 true sources of other seeds, as the RMS difference of the mean
  profiles; the floor: the same RMS of ``--num`` further true sources; and the surface band's
  depth (the first row brighter than 0.44 in each column, averaged) against the truth's;
- *crops at a position*: ``--num`` training-size crops centred at rows 0.1, 0.3, 0.5, 0.8 of the
  source (layout model), their mean intensity against true crops centred there (a crop that
  would leave the source is moved inside it, the generated one to the same rows).

    python benchmarks/layout.py --out /tmp/layout --steps 1500 --num 16
    python benchmarks/layout.py --out /tmp/layout3k --steps 3000 --num 16 --models layout
    python benchmarks/layout.py --out /tmp/layout_const --models layout --lr-decay none
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

POSITIONS = (0.1, 0.3, 0.5, 0.8)


def surface_depth(images: np.ndarray) -> np.ndarray:
    """Per image (N, H, W): the mean over columns of the first row brighter than 0.44 (the
    middle of the surface band's 0.08 and the coating's 0.80), in pixels."""
    bright = images > 0.44
    first = np.where(bright.any(1), bright.argmax(1), images.shape[1])
    return first.mean(1)


def crop_top(row: float, size: int, height: int) -> int:
    """The top pixel of a crop of ``size`` centred at ``row`` (a fraction of ``height``), kept inside the source."""
    return min(max(int(round(row * height - size / 2)), 0), height - size)


def crop_centre(row: float, size: int, height: int) -> float:
    """The centre (a fraction of the height) of the crop ``crop_top`` cuts: where a sample is asked for,
    so that generated and true crops show the same rows of the source."""
    return (crop_top(row, size, height) + size / 2) / height


def true_crops(rng, layers, size: int, row: float, n: int) -> np.ndarray:
    from microdiff.data.layers import layered_image
    out = []
    for _ in range(n):
        src = layered_image(rng, layers)
        top = crop_top(row, size, layers.height)
        left = int(rng.integers(0, layers.width - size + 1))
        out.append(src[top:top + size, left:left + size])
    return np.stack(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", required=True, help="scratch folder")
    ap.add_argument("--steps", type=int, default=1500, help="training steps of each model")
    ap.add_argument("--num", type=int, default=16, help="samples per measurement")
    ap.add_argument("--size", type=int, default=32, help="training crop side (sources are 3 x 4 crops)")
    ap.add_argument("--models", default="layout,stationary", help="which of the two models to train and measure")
    ap.add_argument("--lr-decay", choices=("none", "cosine"), default=None,
                    help="train.lr_decay of the layout model (default: what `train --layout` uses, a cosine)")
    ap.add_argument("--augment", choices=("dihedral", "flips", "none"), default=None,
                    help="train.augment of the models (default: the preset's)")
    a = ap.parse_args()
    from microdiff.core.launch import keep_freed_memory
    keep_freed_memory()                      # as the command line does: large blocks reused, not re-zeroed

    from microdiff.config import LAYOUT_OVERRIDES, apply_overrides, get_preset
    from microdiff.data.layers import LayerSettings, layered_image, profile_error, row_profile
    from microdiff.data.synth import synth_layers
    from microdiff.generate import SampleSettings
    from microdiff.generate.images import sample_images
    from microdiff.generate.pipeline import load_pipeline
    from microdiff.train import train_model
    out = Path(a.out)
    data = out / "data"
    if not (data / "dataset.json").exists():
        synth_layers(data, size=a.size, per_class=2000, sources=32, seed=0, overwrite=True, show_progress=False)
    layers = LayerSettings(**{k: v for k, v in json.loads((data / "dataset.json").read_text())["layers"].items()})
    rng = np.random.default_rng(12345)          # truth from seeds the training sources never used
    truth = np.stack([layered_image(rng, layers) for _ in range(256)])
    truth_profile = row_profile(truth).mean(0)
    floor_sets = [np.stack([layered_image(rng, layers) for _ in range(a.num)]) for _ in range(8)]
    floor = [profile_error(row_profile(f), truth_profile) for f in floor_sets]
    result = {"steps": a.steps, "num": a.num, "size": a.size,
              "truth": {"surface_depth_px": float(surface_depth(truth).mean()),
                        "surface_depth_sd": float(surface_depth(truth).std()),
                        "profile_rms_floor": [float(min(floor)), float(np.median(floor)), float(max(floor))]},
              "models": {}}
    tags = [t.strip() for t in a.models.split(",")]
    if not tags or set(tags) - {"layout", "stationary"}:
        ap.error(f"--models {a.models}: give layout, stationary or both (comma-separated)")
    for layout in [t == "layout" for t in tags]:
        tag = "layout" if layout else "stationary"
        run = out / tag
        decay = [*LAYOUT_OVERRIDES, *([f"train.lr_decay={a.lr_decay}"] if a.lr_decay else [])] if layout else []
        cfg = apply_overrides(get_preset("cpu"), [f"model.image_size={a.size}", f"train.steps={a.steps}",
                                                   "train.sample_every=0", f"model.layout={str(layout).lower()}",
                                                   *decay, *([f"train.augment={a.augment}"] if a.augment else [])])
        t = time.perf_counter()
        if not (run / "model").exists():
            train_model(data, run, cfg, overwrite=True, show_progress=False)
        train_s = time.perf_counter() - t
        pipe = load_pipeline(run / "model", "cpu")
        t = time.perf_counter()
        whole = sample_images(pipe, SampleSettings(num=a.num, size=(layers.height, layers.width), seed=1))[:, 0].numpy()
        whole_s = time.perf_counter() - t
        np.save(out / f"{tag}_whole.npy", whole.astype(np.float16))
        row = {"train_s": train_s, "whole_s_per_sample": whole_s / a.num,
               "profile_rms": profile_error(row_profile(whole), truth_profile),
               "surface_depth_px": float(surface_depth(whole).mean()),
               "surface_depth_sd": float(surface_depth(whole).std()),
               "profile": row_profile(whole).mean(0).round(4).tolist()}
        crops = {}
        for p in POSITIONS:
            pos = (crop_centre(p, a.size, layers.height), 0.5) if layout else None
            gen = sample_images(pipe, SampleSettings(num=a.num, seed=2, position=pos))[:, 0].numpy()
            tru = true_crops(rng, layers, a.size, p, 64)
            crops[str(p)] = {"generated_mean": float(gen.mean()), "generated_sd": float(gen.mean((1, 2)).std()),
                             "truth_mean": float(tru.mean()), "truth_sd": float(tru.mean((1, 2)).std())}
        row["crops"] = crops
        result["models"][tag] = row
        print(tag, json.dumps({k: v for k, v in row.items() if k != "profile"}), flush=True)
    result["truth"]["profile"] = truth_profile.round(4).tolist()
    (out / "layout.json").write_text(json.dumps(result, indent=1))
    _figure(out, truth[:4], {t: np.load(out / f"{t}_whole.npy")[:4].astype(np.float32) for t in result["models"]},
            result)
    print(json.dumps(result["truth"], indent=1)[:600])


def _figure(out: Path, truth: np.ndarray, gens: dict, result: dict) -> None:
    """layout.png: four true sources, four whole-source samples of each model, and the row profiles."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    rows = [("truth (other seeds)", truth)] + [(f"{t} model", g) for t, g in gens.items()]
    fig, axes = plt.subplots(len(rows), 5, figsize=(15, 2.4 * len(rows)),
                             gridspec_kw={"width_ratios": [1, 1, 1, 1, 1.1]})
    for r, (name, imgs) in enumerate(rows):
        for c in range(4):
            axes[r, c].imshow(imgs[c], cmap="gray", vmin=0, vmax=1)
            axes[r, c].set_xticks([]), axes[r, c].set_yticks([])
        axes[r, 0].set_ylabel(name)
        ax = axes[r, 4]
        ax.plot(result["truth"]["profile"], color="k", label="truth")
        if name != rows[0][0]:
            ax.plot(result["models"][name.split()[0]]["profile"], color="C1", label=name)
        ax.set_ylim(0, 1), ax.set_xlabel("row"), ax.set_ylabel("mean intensity"), ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out / "layout.png", dpi=80)


if __name__ == "__main__":
    main()
