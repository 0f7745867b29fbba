"""``synth`` and ``prepare``: built-in data sets and imported micrograph collections."""
from __future__ import annotations

from pathlib import Path

from ..core.errors import UsageError
from .common import COUNT, FRACTION, POSITIVE, SEED, SIZE, add_max_pixels, float_arg, int_arg
from .flags import option


def register(sub) -> None:
    _synth_parser(sub)
    _prepare_parser(sub)


def _synth_parser(sub) -> None:
    p = sub.add_parser("synth", help="make a built-in synthetic data set (2D fibers; 3D structures with known truth)",
                       description="fiber: 2D fiber-composite cross-sections in classes FVC40/50/60. grf3d (an "
                       "isotropic Gaussian-random-field level cut), fiber3d (fibers along z) and electrode3d (pore, "
                       "binder, particle: sections as label maps, *_labels.png): OUT/slices holds "
                       "micrograph-like planar sections cut from random true volumes (a data set to train on), "
                       "OUT/volumes/NNNN_labels.npy true volumes to compare generated ones with. layers: crops of "
                       "layered micrographs (surface, porous coating, substrate; 3 x 4 crops each) with where each "
                       "lies, for a layout model (train --layout).")
    p.add_argument("kind", choices=["fiber", "layers", "grf3d", "fiber3d", "electrode3d"])
    option(p, "out", required=True)
    option(p, "size", type=int_arg(16, 4096), default=64, help="image side (3D: volume side, at most 512)")
    p.add_argument("--per-class", "--slices", dest="per_class", type=int_arg(0, 10 ** 7), default=200,
                   help="images per class (3D: planar sections per class, written to OUT/slices; 0 = none)")
    option(p, "radius", type=POSITIVE, default=None, help="mean fiber radius in pixels (default size/14)")
    option(p, "volumes", type=int_arg(0, 10 ** 5), default=0, help="3D kinds: true volumes to write")
    option(p, "sources", type=int_arg(1, 10 ** 5), default=None, help="layers: source micrographs to crop from "
           "(default 32)")
    option(p, "fraction", type=float_arg(0.0, 1.0, lo_open=True, hi_open=True),
           help="3D kinds: volume fraction of the bright phase (default 0.4 for grf3d, 0.5 for fiber3d; "
           "electrode3d: of the particles, default 0.4)")
    option(p, "holdout", type=float_arg(0.0, 1.0, lo_open=True, hi_open=True), default=0.0,
           help="fiber: also write OUT-heldout, this fraction of --per-class further images per class from other "
           "seeds (the real floor for `evaluate --reference`)")
    option(p, "seed", type=SEED, default=0)
    option(p, "overwrite", action="store_true")
    p.set_defaults(handler=cmd_synth)


def _prepare_common(q) -> None:
    option(q, "out", required=True)
    option(q, "size", type=SIZE, default=256, help="output side in pixels (default 256)")
    option(q, "per_class", type=COUNT, default=None,
           help="cap and balance every class to N images (fill by crops/rotations/mirrors)")
    option(q, "crop_fraction", type=FRACTION, default=0.75, help="side of augmentation crops / shorter side")
    option(q, "crop_size", type=SIZE, default=None,
           help="crops of this side in source pixels (a class of one micrograph: the --size itself)")
    kind = q.add_mutually_exclusive_group()
    kind.add_argument("--labels", action="store_true",
                      help="the images are segmented phase-label maps (integer phase ids; PNG/TIFF/NPY)")
    kind.add_argument("--color", action="store_true", help="keep colour: RGB images as three channels")
    option(q, "holdout", type=float_arg(0.0, 1.0, lo_open=True, hi_open=True), default=0.0,
           help="hold out this fraction of each class's source images (whole micrographs) as OUT-heldout, the "
           "real floor for `evaluate --reference`")
    option(q, "keep_orientation", action="store_true",
           help="the micrographs have a direction (rolled, layered, elongated grains): augment by mirrors and half "
           "turns only, and train so (dataset.json orientation fixed)")
    option(q, "seed", type=SEED, default=0)
    q.add_argument("--classes", help="comma-separated classes to keep")
    q.add_argument("--no-bar-detect", action="store_true", help="do not look for an SEM data bar")
    option(q, "strict", action="store_true", help="stop at the first bad file instead of skipping it")
    option(q, "overwrite", action="store_true")
    q.add_argument("--no-progress", action="store_true")
    add_max_pixels(q)


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
    option(q, "exclude", help="file listing images to drop (names or paths relative to SRC)")
    _prepare_common(q)
    q = psub.add_parser("fiber", help="large fiber-composite cross-sections -> random square sub-regions")
    q.add_argument("src")
    option(q, "regions_per_image", type=COUNT, default=30)
    option(q, "region_px", type=int_arg(2), help="region side in pixels")
    option(q, "region_um", type=POSITIVE, help="region side in micrometres (needs --pixel-size)")
    option(q, "pixel_size", type=POSITIVE, help="micrometres per pixel")
    _prepare_common(q)
    p.set_defaults(handler=cmd_prepare)


# each importer: its function in data.prepare, and its inputs and options from the flags
IMPORTERS = {
    "folder": ("prepare_folder", lambda a: ((a.src,), {})),
    "uhcs": ("prepare_uhcs", lambda a: ((a.db, a.images), {})),
    "nffa": ("prepare_nffa", lambda a: ((a.src,), {"exclude": a.exclude})),
    "fiber": ("prepare_fiber", lambda a: ((a.src,), {"regions_per_image": a.regions_per_image, "region_px": a.region_px,
                                                      "region_um": a.region_um, "pixel_size": a.pixel_size})),
}


def cmd_synth(args) -> int:
    if args.kind.endswith("3d"):
        from ..data.synth3d import synth_3d
        if args.radius is not None or args.holdout:
            raise UsageError(f"{'--radius' if args.radius is not None else '--holdout'} applies to the 2D fiber kind, "
                             f"not {args.kind} (its true volumes, --volumes, are the 3D truth)")
        out = synth_3d(args.out, args.kind[:-2], args.size, args.per_class, args.volumes, args.fraction, args.seed,
                       overwrite=args.overwrite)
        print(f"wrote {out}")
        return 0
    if args.volumes or args.fraction is not None:
        raise UsageError("--volumes and --fraction apply to the 3D kinds (grf3d, fiber3d, electrode3d)")
    if args.per_class < 1:
        raise UsageError("--per-class must be at least 1")
    if args.kind == "layers" or args.sources is not None:
        if args.kind != "layers" or args.radius is not None:
            raise UsageError("--sources applies to the layers kind" if args.kind != "layers" else
                             "--radius applies to the fiber kind, not layers")
        from ..data.synth import synth_layers
        from ..data.prepare.engine import heldout_path
        out = synth_layers(args.out, size=args.size, per_class=args.per_class, sources=args.sources or 32,
                           seed=args.seed, overwrite=args.overwrite, holdout=args.holdout)
        print(f"wrote {out}" + (f" and {heldout_path(out)}" if args.holdout else ""))
        return 0
    from ..data.synth import synth_fiber
    out = synth_fiber(args.out, size=args.size, per_class=args.per_class, seed=args.seed,
                      overwrite=args.overwrite, radius=args.radius, holdout=args.holdout)
    from ..data.prepare.engine import heldout_path
    print(f"wrote {out}" + (f" and {heldout_path(out)}" if args.holdout else ""))
    return 0


def cmd_prepare(args) -> int:
    from ..data import prepare as P
    settings = P.PrepareSettings(size=args.size, per_class=args.per_class, seed=args.seed,
                                 crop_fraction=args.crop_fraction, detect_bar=not args.no_bar_detect,
                                 strict=args.strict, overwrite=args.overwrite, crop_size=args.crop_size,
                                 channels="labels" if args.labels else "color" if args.color else "gray",
                                 holdout=args.holdout, keep_orientation=args.keep_orientation)
    classes = [c.strip() for c in args.classes.split(",") if c.strip()] if args.classes else None
    if args.classes is not None and not classes:
        raise UsageError(f"--classes {args.classes!r}: name the classes to keep, comma-separated")
    src = Path(getattr(args, "src", None) or args.images).resolve()
    if Path(args.out).resolve() == src or src in Path(args.out).resolve().parents:
        raise UsageError(f"--out {args.out} lies inside the source folder {src}; the next run would read it back as "
                         "images: choose an --out outside it")
    name, inputs = IMPORTERS[args.importer]
    positional, options = inputs(args)
    res = getattr(P, name)(*positional, args.out, settings, classes=classes, show_progress=not args.no_progress,
                           **options)
    print(P.summary_table(res, classes))
    print(f"wrote {res.out}" + (f" and {res.heldout}" if res.heldout else ""))
    return 0
