"""The demo's sampling settings, chosen by measurement (issue 25, item 4).

For the shipped demo model and each (guidance, steps): ``--num`` samples per class with the
demo's seeds (sample i of a class has the same seed whatever ``--num``, so the first 16 are the
demo's own), their fiber fraction by an independent Otsu (scikit-image's ``threshold_otsu``, not
microdiff's) against the training images' by the same Otsu, and ``evaluate --reference`` against
the demo data with held-out images of other seeds (E_S, KID, copies, verdicts).

    python benchmarks/demo_settings.py --out /tmp/demo_settings --num 32 \
        --configs 1.0:20,1.25:20,1.5:20,1.0:30
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np


def otsu_fraction(files) -> np.ndarray:
    from skimage.filters import threshold_otsu

    from microdiff.data.io import read_image
    out = []
    for f in files:
        a = read_image(f)
        out.append(float((a > threshold_otsu(a)).mean()))
    return np.array(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", required=True, help="scratch folder (data, samples, evaluations)")
    ap.add_argument("--num", type=int, default=32, help="samples per class (the demo makes 16)")
    ap.add_argument("--configs", default="1.0:20,1.25:20,1.5:20", help="guidance:steps, comma-separated")
    ap.add_argument("--heldout", type=int, default=64, help="held-out images per class (other seeds)")
    a = ap.parse_args()

    from microdiff.data.synth import synth_fiber
    from microdiff.demo import DEMO_PER_CLASS, DEMO_SAMPLER, DEMO_SIZE, shipped_model_dir
    from microdiff.evaluate import EvalSettings, evaluate_folders
    from microdiff.generate import SampleSettings, sample_to_folder
    from microdiff.generate.pipeline import load_pipeline
    out = Path(a.out)
    data = out / "data"
    if not (data / "dataset.json").exists():
        synth_fiber(data, size=DEMO_SIZE, per_class=DEMO_PER_CLASS, seed=0, holdout=a.heldout / DEMO_PER_CLASS,
                    overwrite=True, show_progress=False)
    pipe = load_pipeline(shipped_model_dir(), "cpu")
    train_frac = {c: otsu_fraction(sorted((data / c).glob("*.png"))).mean() for c in pipe.class_names}
    rows = []
    for cfg in a.configs.split(","):
        g, s = cfg.split(":")
        tag = f"g{g}_s{s}"
        t = time.perf_counter()
        sample_to_folder(pipe, out / tag / "samples", SampleSettings(num=a.num, steps=int(s), sampler=DEMO_SAMPLER,
                         guidance=float(g), seed=0, batch_size=3 * a.num), overwrite=True, show_progress=False)
        seconds = time.perf_counter() - t
        res = evaluate_folders(out / tag / "samples", data, out / tag / "eval", EvalSettings(descriptors=("S", "px")),
                               show_progress=False, reference=str(data) + "-heldout")
        for c in pipe.class_names:
            files = sorted((out / tag / "samples" / c).glob("*.png"))
            frac = otsu_fraction(files)
            checks = {v.check: v for v in res.verdicts[c].checks}
            rows.append({"guidance": float(g), "steps": int(s), "class": c, "seconds_all_classes": round(seconds, 1),
                         "train_otsu": round(float(train_frac[c]), 4),
                         "delta_points_all": round(100 * (frac.mean() - train_frac[c]), 2),
                         "delta_points_demo16": round(100 * (frac[:16].mean() - train_frac[c]), 2),
                         "E_S_ratio": round(checks["E_S"].ratio, 3), "KID": checks["KID"].generated,
                         "KID_floor": checks["KID"].floor, "KID_verdict": checks["KID"].verdict,
                         "copies": checks["copies"].verdict, "overall": res.verdicts[c].overall})
            print(json.dumps(rows[-1]), flush=True)
    (out / "demo_settings.json").write_text(json.dumps(rows, indent=1))
    print("| guidance | steps | class | Δ fiber points (n=%d) | Δ (demo's 16) | E_S / floor | KID x1e3 (floor) | "
          "copies | worst verdict |" % a.num)
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['guidance']} | {r['steps']} | {r['class']} | {r['delta_points_all']:+.2f} | "
              f"{r['delta_points_demo16']:+.2f} | {r['E_S_ratio']:.2f} | {1e3 * r['KID']:.2f} ({1e3 * r['KID_floor']:.2f}) "
              f"| {r['copies']} | {r['overall']} |")


if __name__ == "__main__":
    main()
