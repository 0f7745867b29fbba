"""MCRpy (Seibert et al. 2022, TU Dresden; PyPI ``mcrpy`` 0.2.0) as a peer baseline for microdiff.

MCRpy is not part of microdiff and none of its code is copied here. It needs TensorFlow, so it lives
in a virtual environment of its own, given with ``--python`` (default /work/scratch/mcrpy-venv/bin/python):

    python3 -m venv /work/scratch/mcrpy-venv
    /work/scratch/mcrpy-venv/bin/pip install mcrpy==0.2.0 numpy==1.26.4 "ml_dtypes>=0.5.1,<0.6"

numpy must stay below 2: MCRpy 0.2.0 calls ``np.product`` (LBFGSB, decode_phases) and ``np.bool8``, both removed
in numpy 2.0; ml_dtypes 0.7 needs numpy 2, so it is held at 0.5.x (TensorFlow 2.21 asks for >= 0.5.1). Tested
with mcrpy 0.2.0, tensorflow 2.21.0 (CPU), keras 3.15.1, numpy 1.26.4, scipy 1.17.1, Python 3.11.

    python benchmarks/peers/mcrpy.py --image /work/shared/data/mcrpy_examples/composite_resized.npy \\
        --out DIR --size 256 --num 8

This runner writes a small driver, DIR/mcrpy_run/driver.py, and runs it with that interpreter. The driver only
calls MCRpy's public API (``mcrpy.Microstructure``, ``MatchingSettings``, ``characterize``, ``reconstruct``): the
image is characterized once and N label maps of size x size are reconstructed from that one descriptor, seed
SEED + i each. That is what ``mcrpy.match`` does (mcrpy/match.py: ``match`` = ``characterize`` then
``reconstruct`` with the sub-settings of one ``MatchingSettings``), except that the descriptor is computed once
for all N and the shape asked for is --size (match reconstructs at the image's own shape).

Settings: MCRpy's defaults, i.e. the fields of ``MatchingSettings()`` (mcrpy/src/Settings.py, which inherits
DescriptorSettings, OptimizerSettings, LossSettings, ReconstructionSettings; the CLI defaults of mcrpy/match.py
are the same for every field that changes the result), nothing changed but use_multiphase:

    descriptors      descriptor_types ['Correlations'] (2- and 3-point correlations, Seibert et al. 2021),
                     descriptor weight 1 (Descriptor.default_weight), limit_to 16, threshold_steepness 10,
                     use_multigrid_descriptor True (levels floor(log2(min(H, W) / limit_to)): 4 for 256^2,
                     i.e. 256, 128, 64, 32 px by average pooling, weighted 2^level in the loss), periodic True.
    loss             loss_type 'MSE' (mean of squared descriptor differences), plus out-of-range and (multiphase)
                     phase-sum penalties scaled by the energy, oor_multiplier = phase_sum_multiplier = 1000.
    optimizer        optimizer_type 'LBFGSB': scipy.optimize.minimize(method='L-BFGS-B', tol=0, bounds [0, 1],
                     maxiter = maxfun = max_iter) (mcrpy/optimizers/SPOptimizer.py, LBFGSB.py).
    iterations       max_iter 500. MCRpy's counter counts loss-and-gradient evaluations (SPOptimizer.step),
                     so a run makes at most ~500 evaluations; the count made is recorded.
    reconstruction   use_multigrid_reconstruction False; start field N(0.5, 0.1) clipped to [0, 1]
                     (DMCR.initialize_microstructure), seeded here by numpy.random.seed(SEED + i).
    phases           use_multiphase True iff the image has more than 2 phases (--multiphase auto): mcrpy's match
                     refuses > 2 phases without it (match.setup_settings), and its README ("Single-phase vs
                     multi-phase") says to switch it on for the 3-phase composite and off otherwise. Without it
                     the field is the indicator of phase 1 and the labels are its rounding; with it there is one
                     indicator per phase and the label is the argmax (Microstructure.decode_phases, as MCRpy's
                     own last_frame.npy).

The image's distinct values (any integer labels) become phases 0..n-1 in increasing order, as MCRpy requires
consecutive phase numbers from 0; mcrpy.json gives the original values. With --invert (two phases) MCRpy is
given the swapped labels, so that phase 1, whose indicator its single-phase mode optimises, is the minority
(as in its authors' alloy_inverted_s.npy), and its maps are swapped back before they are written.

Writes DIR/mcrpy/NNNN_labels.npy (uint8 phase ids 0..n-1, shape (size, size)) and DIR/mcrpy.json with the
settings, the versions of MCRpy, TensorFlow, numpy and scipy, the seconds of the characterization and of each
reconstruction (wall clock; the first includes TensorFlow's tracing), the evaluations made and the final loss.
MCRpy's log goes to DIR/mcrpy_run/logfile.log. TensorFlow uses its own thread count unless --threads is given.

Cost on the project's CPU (2 cores shared with another benchmark, run under nice -n 19, i.e. about one core),
3-phase composite, default settings: 64^2 about 1.3 s per evaluation; 256^2 about 22 s per evaluation, plus
~5 s of tracing and 6-9 s of characterization, peak RSS ~8 GB. A default 500-evaluation 256^2 reconstruction
thus takes about 3 h there; the N reconstructions run one after another.
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

DEFAULT_PYTHON = "/work/scratch/mcrpy-venv/bin/python"
LIMIT_TO = 16          # DescriptorSettings.limit_to
MAX_ITER = 500         # ReconstructionSettings.max_iter
KEY_SETTINGS = ("descriptor_types", "limit_to", "threshold_steepness", "use_multigrid_descriptor", "periodic",
                "use_multigrid_reconstruction", "optimizer_type", "loss_type", "max_iter", "oor_multiplier",
                "phase_sum_multiplier", "use_multiphase")

# The driver run by the MCRpy venv's interpreter. It holds no MCRpy code: it only calls mcrpy's API.
DRIVER = r'''
"""Written by microdiff's benchmarks/peers/mcrpy.py: runs MCRpy's characterize + reconstruct."""
import json, logging, os, sys, time
cfg = json.load(open(sys.argv[1]))
# MCRpy's own logging.basicConfig comes after TensorFlow's (absl) handler and would be dropped
logging.basicConfig(filename=os.path.join(cfg["run_dir"], "logfile.log"), level=logging.INFO,
                    format="%(asctime)s on %(levelname)s: %(message)s", force=True)
import numpy as np
import tensorflow as tf
if cfg["threads"]:
    tf.config.threading.set_intra_op_parallelism_threads(cfg["threads"])
    tf.config.threading.set_inter_op_parallelism_threads(cfg["threads"])
import scipy
import mcrpy
from mcrpy.src.Settings import select_subsettings

labels = np.load(cfg["labels"])
settings = mcrpy.MatchingSettings(use_multiphase=cfg["use_multiphase"], limit_to=cfg["limit_to"],
                                  max_iter=cfg["max_iter"], target_folder=cfg["run_dir"])
ms = mcrpy.Microstructure(labels.astype(np.float64), use_multiphase=cfg["use_multiphase"], trainable=False)
t0 = time.perf_counter()
descriptor = mcrpy.characterize(ms, select_subsettings(settings, mcrpy.CharacterizationSettings))
seconds_characterize = time.perf_counter() - t0
runs = []
for i in range(cfg["num"]):
    seed = cfg["seed"] + i
    np.random.seed(seed)
    tf.random.set_seed(seed)
    rec_settings = select_subsettings(settings, mcrpy.ReconstructionSettings)
    t0 = time.perf_counter()
    convergence, last_frame = mcrpy.reconstruct(dict(descriptor), (cfg["size"], cfg["size"]), settings=rec_settings)
    seconds = time.perf_counter() - t0
    out = np.asarray(last_frame.decode_phases()).reshape(cfg["size"], cfg["size"]).astype(np.uint8)
    path = os.path.join(cfg["labels_dir"], f"{i:04d}_labels.npy")
    np.save(path, out)
    line = np.asarray(convergence["line_data"], dtype=np.float64)
    runs.append(dict(index=i, seed=seed, path=path, seconds=seconds, evaluations=int(len(line)) - 1,
                     final_loss=float(line[-1, 1]) if len(line) else None,
                     phase_fractions=[float((out == p).mean()) for p in range(cfg["n_phases"])]))
    print(json.dumps(dict(i=i, seconds=round(seconds, 2), evaluations=runs[-1]["evaluations"],
                          final_loss=runs[-1]["final_loss"])), flush=True)
defaults = {k: (v if isinstance(v, (int, float, str, bool, list, type(None))) else repr(v))
            for k, v in vars(mcrpy.MatchingSettings(use_multiphase=cfg["use_multiphase"], limit_to=cfg["limit_to"],
                                                    max_iter=cfg["max_iter"])).items()}
json.dump(dict(mcrpy_version=mcrpy.__version__, mcrpy_path=os.path.dirname(mcrpy.__file__),
               tensorflow_version=tf.__version__, numpy_version=np.__version__, scipy_version=scipy.__version__,
               tf_intra_threads=tf.config.threading.get_intra_op_parallelism_threads(),
               descriptor_shapes={k: list(np.shape(v)) for k, v in descriptor.items() if k != "settings"},
               settings=defaults, seconds_characterize=seconds_characterize, runs=runs),
          open(cfg["result"], "w"), indent=1)
'''


def fail(msg: str) -> None:
    sys.exit(f"mcrpy.py: error: {msg}")


def load_labels(path: Path) -> tuple[np.ndarray, list]:
    """The 2D label map as uint8 phases 0..n-1 (sorted original values) and those values; exits on bad input."""
    if not path.is_file():
        fail(f"no image file {path}")
    if path.suffix != ".npy":
        fail(f"{path}: expected a .npy label map")
    img = np.squeeze(np.load(path))
    if img.ndim != 2:
        fail(f"{path}: a 2D label map is needed, got shape {img.shape}")
    values, phases = np.unique(img, return_inverse=True)
    if not np.all(np.equal(np.mod(values, 1), 0)):
        fail(f"{path}: labels must be integers, got values such as {values[:4].tolist()}")
    if not 2 <= len(values) <= 255:
        fail(f"{path}: 2 to 255 distinct labels are needed, found {len(values)}")
    return phases.reshape(img.shape).astype(np.uint8), values.tolist()


def check_python(python: Path) -> None:
    if not python.is_file() or not os.access(python, os.X_OK):
        fail(f"no Python interpreter at {python} (make the MCRpy venv first, see this file's docstring)")
    probe = subprocess.run([str(python), "-I", "-c", "import mcrpy"], capture_output=True, text=True)
    if probe.returncode != 0:
        last = (probe.stderr.strip().splitlines() or ["?"])[-1]
        fail(f"{python} cannot import mcrpy: {last}")


def run(args) -> None:
    labels, values = load_labels(args.image)
    check_python(args.python)
    n_phases = len(values)
    multiphase = {"auto": n_phases > 2, "on": True, "off": False}[args.multiphase]
    if args.invert and n_phases != 2:
        fail(f"--invert swaps the two phases of a two-phase image; {args.image} has {n_phases}")
    if n_phases > 2 and not multiphase:
        fail(f"{args.image} has {n_phases} phases; MCRpy needs --multiphase on (or auto) for more than 2")
    if min(labels.shape) < 2 * args.limit_to:
        fail(f"{args.image}: shape {labels.shape} is below 2 x --limit-to {args.limit_to} (MCRpy's multigrid descriptor)")
    if args.size < 2 * args.limit_to:
        fail(f"--size {args.size} is below 2 x --limit-to {args.limit_to} (MCRpy's multigrid descriptor needs it)")
    out = args.out
    run_dir, labels_dir = out / "mcrpy_run", out / "mcrpy"
    run_dir.mkdir(parents=True, exist_ok=True)
    labels_dir.mkdir(parents=True, exist_ok=True)
    np.save(run_dir / "image_labels.npy", 1 - labels if args.invert else labels)
    driver = run_dir / "driver.py"
    driver.write_text(DRIVER)
    cfg = dict(labels=str(run_dir / "image_labels.npy"), labels_dir=str(labels_dir), run_dir=str(run_dir),
               result=str(run_dir / "result.json"), size=args.size, num=args.num, seed=args.seed,
               max_iter=args.max_iter, limit_to=args.limit_to, use_multiphase=multiphase, n_phases=n_phases,
               threads=args.threads)
    (run_dir / "config.json").write_text(json.dumps(cfg, indent=1) + "\n")
    env = dict(os.environ)
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    env.setdefault("MPLBACKEND", "Agg")
    t0 = time.monotonic()
    proc = subprocess.run([str(args.python), "-I", str(driver), str(run_dir / "config.json")], env=env)
    seconds_total = time.monotonic() - t0
    if proc.returncode != 0:
        fail(f"the MCRpy driver exited with {proc.returncode} (see the output above and {run_dir}/logfile.log)")
    res = json.loads((run_dir / "result.json").read_text())
    if args.invert:                          # MCRpy reconstructed the swapped phases: back to the image's own
        for r in res["runs"]:
            np.save(r["path"], (1 - np.load(r["path"])).astype(np.uint8))
            r["phase_fractions"] = r["phase_fractions"][::-1]
    seconds = [r["seconds"] for r in res["runs"]]
    evals = [r["evaluations"] for r in res["runs"]]
    report = dict(
        method="MCRpy (mcrpy.characterize + mcrpy.reconstruct, defaults of MatchingSettings)",
        python=str(args.python), mcrpy_version=res["mcrpy_version"], mcrpy_path=res["mcrpy_path"],
        tensorflow_version=res["tensorflow_version"], numpy_version=res["numpy_version"],
        scipy_version=res["scipy_version"], tf_intra_threads=res["tf_intra_threads"],
        image=str(args.image.resolve()), image_shape=list(labels.shape), image_values=values, n_phases=n_phases,
        image_phase_fractions=[round(float((labels == p).mean()), 4) for p in range(n_phases)],
        inverted=bool(args.invert), size=args.size, num=args.num, seeds=[r["seed"] for r in res["runs"]],
        settings={k: res["settings"][k] for k in KEY_SETTINGS}, descriptor_weights=[1.0],
        mcrpy_settings=res["settings"], descriptor_shapes=res["descriptor_shapes"],
        seconds_characterize=round(res["seconds_characterize"], 3),
        seconds_per_reconstruction=[round(s, 3) for s in seconds],
        mean_seconds_per_reconstruction=round(float(np.mean(seconds)), 3),
        evaluations=evals,
        seconds_per_evaluation=[round(s / e, 4) if e else None for s, e in zip(seconds, evals)],
        final_loss=[r["final_loss"] for r in res["runs"]],
        phase_fractions=[[round(f, 4) for f in r["phase_fractions"]] for r in res["runs"]],
        labels=[str(Path(r["path"]).relative_to(out)) for r in res["runs"]],
        seconds_total=round(seconds_total, 2),
    )
    (out / "mcrpy.json").write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps({k: report[k] for k in ("n_phases", "size", "num", "seconds_characterize",
                                               "mean_seconds_per_reconstruction", "evaluations", "seconds_per_evaluation")}))


def positive(kind):
    def parse(s):
        v = kind(s)
        if v <= 0:
            raise argparse.ArgumentTypeError(f"must be > 0, got {s}")
        return v
    return parse


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description="MCRpy (PyPI mcrpy 0.2.0) as a peer baseline: reconstruct N periodic "
                                "label maps from the descriptors of one 2D label map, with MCRpy's default settings.")
    p.add_argument("--python", type=Path, default=Path(DEFAULT_PYTHON),
                   help=f"interpreter of the venv with mcrpy installed (default {DEFAULT_PYTHON})")
    p.add_argument("--image", type=Path, required=True, help="2D label map (.npy, integer labels, 2 or more phases)")
    p.add_argument("--out", type=Path, required=True, help="output folder (writes mcrpy/, mcrpy.json, mcrpy_run/)")
    p.add_argument("--size", type=positive(int), default=256, help="edge of the reconstructed maps (default 256)")
    p.add_argument("--num", type=positive(int), required=True, help="number of reconstructions")
    p.add_argument("--max-iter", type=positive(int), default=MAX_ITER,
                   help=f"MCRpy's max_iter, i.e. at most that many loss evaluations (default {MAX_ITER}, MCRpy's)")
    p.add_argument("--limit-to", type=positive(int), default=LIMIT_TO,
                   help=f"MCRpy's limit_to, the correlation window in pixels (default {LIMIT_TO}, MCRpy's)")
    p.add_argument("--seed", type=int, default=0, help="reconstruction i uses seed SEED + i (default 0)")
    p.add_argument("--multiphase", choices=("auto", "on", "off"), default="auto",
                   help="MCRpy's use_multiphase: auto = on for more than 2 phases only (default)")
    p.add_argument("--invert", action="store_true",
                   help="two phases: let MCRpy reconstruct the swapped labels (its single-phase mode optimises phase "
                        "1's indicator; its authors' own alloy example, alloy_inverted_s.npy, makes the thin boundaries "
                        "phase 1) and swap its maps back, so they compare with the image as given")
    p.add_argument("--threads", type=positive(int), default=None, help="TensorFlow threads (default: TensorFlow's own)")
    return p


def main(argv=None) -> None:
    run(parser().parse_args(argv))


if __name__ == "__main__":
    main()
