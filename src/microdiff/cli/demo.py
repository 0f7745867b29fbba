"""``demo``: the whole job on the built-in data."""
from __future__ import annotations

from .common import COUNT, POSITIVE
from .flags import flag_log, option


def register(sub) -> None:
    p = sub.add_parser("demo", help="the whole job on built-in data: data, model, samples, report")
    option(p, "out", default="demo")
    option(p, "from_scratch", action="store_true", help="train the cpu preset here instead of using the shipped model")
    option(p, "train_minutes", type=POSITIVE, default=None, help="training budget with --from-scratch (default 7)")
    option(p, "num", type=COUNT, default=16, help="samples per class")
    option(p, "overwrite", action="store_true")
    p.set_defaults(handler=cmd_demo)


def cmd_demo(args) -> int:
    from ..core.errors import UsageError
    from ..demo import run_demo
    from ..evaluate.report import MISSING
    if args.train_minutes is not None and not args.from_scratch:
        raise UsageError("--train-minutes is the training budget of --from-scratch; give --from-scratch too")
    res = run_demo(args.out, from_scratch=args.from_scratch, train_minutes=args.train_minutes or 7.0,
                   num=args.num, overwrite=args.overwrite, log=flag_log("demo"))
    print(res.report_path.read_text())
    print(f"report: {res.html_path}" if res.html_path.is_file() else f"note: {MISSING}")
    return 0
