"""``train`` and ``report``: a training run, and its report.html."""
from __future__ import annotations

from .common import COUNT, POSITIVE, SEED, SIZE, add_config_flags, add_max_pixels, float_arg
from .flags import flag_log, option


def register(sub) -> None:
    p = sub.add_parser("train", help="train a class-conditional diffusion model on a folder of class subfolders")
    option(p, "data", required=True, help="folder with one subfolder of images per class")
    option(p, "out", required=True, help="run folder; the final pipeline lands in OUT/model")
    add_config_flags(p)
    option(p, "steps", type=COUNT)
    option(p, "batch_size", type=COUNT)
    p.add_argument("--image-size", type=SIZE)
    p.add_argument("--lr", type=float_arg(0.0, 1.0, lo_open=True))
    option(p, "seed", type=SEED)
    option(p, "resume", action="store_true", help="continue the run in --out from its last checkpoint")
    option(p, "overwrite", action="store_true", help="replace a run already in --out")
    option(p, "max_minutes", type=POSITIVE, help="stop (with a checkpoint and the model) after this long")
    p.add_argument("--grad-accum", type=COUNT, help="micro-batches per optimizer step (same global batch)")
    option(p, "num_processes", type=COUNT, default=1,
           help="data-parallel processes on this machine (torchrun underneath; or use `accelerate launch`)")
    p.add_argument("--no-compile", action="store_true", help="do not torch.compile the U-Net on a GPU")
    option(p, "layout", action="store_true", help="non-stationary micrographs (coatings, surfaces): the model also "
           "sees where each crop lies in its source (model.layout; with train.lr_decay=cosine and "
           "diffusion.noise_shift=0.8 unless --set says otherwise); the data set must record it (prepare, synth layers)")
    p.add_argument("--no-progress", action="store_true")
    add_max_pixels(p)
    p.set_defaults(handler=cmd_train)
    p = sub.add_parser("report", help="report.html of a training run: loss curves, learning rate, images/s, sample grids")
    p.add_argument("run", help="a training run folder (microdiff train --out RUN)")
    option(p, "out", default=None, help="the HTML file (default RUN/report.html)")
    p.set_defaults(handler=cmd_report)


def config_of(args):
    """The preset with --config and --set applied, and the train flags as overrides."""
    from ..config import LAYOUT_OVERRIDES, load_config
    layout = getattr(args, "layout", False)
    overrides = [*(LAYOUT_OVERRIDES if layout else ()), *args.set]       # --set wins over the layout overrides
    if getattr(args, "no_compile", False):
        overrides.append("train.compile=no")
    if layout:
        overrides.append("model.layout=true")
    for flag, key in (("steps", "train.steps"), ("batch_size", "train.batch_size"), ("grad_accum", "train.grad_accum"),
                      ("image_size", "model.image_size"), ("lr", "train.lr"), ("seed", "train.seed")):
        v = getattr(args, flag, None)
        if v is not None:
            overrides.append(f"{key}={v}")
    return load_config(args.preset, args.config, overrides)


def cmd_train(args) -> int:
    from ..core.launch import dist_info
    from ..train import train_model
    res = train_model(args.data, args.out, config_of(args), resume=args.resume, overwrite=args.overwrite,
                      max_minutes=args.max_minutes, show_progress=not args.no_progress, log=flag_log("train"))
    if dist_info()[0] == 0:
        print(f"trained to step {res.step} in {res.seconds:.0f} s; model in {res.run_dir / 'model'}")
    return 0


def cmd_report(args) -> int:
    from ..evaluate.report import write_run_report
    print(f"report: {write_run_report(args.run, args.out)}")
    return 0
