"""The command line: one subcommand per verb, each in the module of its group (``data``,
``train``, ``generate``, ``evaluate``, ``demo``). A handler maps flags to a settings object and
calls one library function; heavy imports happen inside the handlers so ``microdiff --help``
is fast.

Errors a user can cause (``MicrodiffError``, and OS errors that name a path) are printed as one
line with exit code 2, settings named by their flags (``flags.FLAGS``); anything else is a bug
and shows its traceback (as does everything with ``MICRODIFF_DEBUG=1``).
"""
from __future__ import annotations

import os
import sys

from ..core.errors import MicrodiffError
from . import data, demo, evaluate, generate, train
from .common import Parser
from .flags import flag_of

GROUPS = (data, train, generate, evaluate, demo)


def build_parser() -> Parser:
    from .. import __version__
    ap = Parser(prog="microdiff", description="Conditional diffusion-based microstructure reconstruction.")
    ap.add_argument("--version", action="version", version=f"microdiff {__version__}")
    sub = ap.add_subparsers(dest="verb", required=True, metavar="VERB")
    for group in GROUPS:
        group.register(sub)
    return ap


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as e:                      # --help, --version, or a bad flag (already printed)
        return e.code if isinstance(e.code, int) else 2
    n = getattr(args, "num_processes", 1) or 1
    if n > getattr(args, "num", n):
        print(f"microdiff {args.verb}: error: --num-processes {n} for --num {args.num}: use at most {args.num} "
              "processes", file=sys.stderr)
        return 2
    if n > 1 and "WORLD_SIZE" not in os.environ:
        from ..core.launch import launch
        return launch(n, argv)
    from ..core.launch import keep_freed_memory
    keep_freed_memory()
    try:
        return run_handler(args)
    except KeyboardInterrupt:
        print("microdiff: interrupted", file=sys.stderr)
        return 130
    except Exception as e:
        if os.environ.get("MICRODIFF_DEBUG") or not is_user_error(e):
            raise
        if getattr(e, "quiet", False):               # another process already said why
            return 2
        print(f"microdiff {args.verb}: error: {one_line(e, args.verb)}", file=sys.stderr)
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
        return int(args.handler(args) or 0)


def is_user_error(e: BaseException) -> bool:
    """A ``MicrodiffError``, or an OS error about a named path (a permission, a full disk, ...)."""
    return isinstance(e, MicrodiffError) or (isinstance(e, OSError) and e.filename is not None)


def one_line(e: BaseException, verb: str = "") -> str:
    """The error as one line, with settings named by their flags."""
    if isinstance(e, MicrodiffError):
        return " ".join(e.render(lambda name: flag_of(name, verb)).split())
    if isinstance(e, OSError) and e.filename is not None:
        return f"{e.filename}: {e.strerror or e}"
    return " ".join(str(e).split())
