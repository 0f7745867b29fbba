"""What every verb's parser shares: one-line argparse errors and the flag types."""
from __future__ import annotations

import argparse

from ..core.checks import describe_range
from .flags import option


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


def add_config_flags(p: argparse.ArgumentParser, default_preset: str = "cpu") -> None:
    option(p, "preset", default=default_preset,
                   help="named settings: cpu (64x64, laptop; EDM recipe), cpu-paper (the same with the "
                        "paper's recipe), paper (Table 2) or paper-edm (Table 2's network with the EDM recipe)")
    option(p, "config", help="JSON file with settings overriding the preset (same nesting as run.json's config)")
    option(p, "set", action="append", default=[], metavar="KEY=VALUE",
                   help="override any setting, e.g. --set train.lr=2e-4 --set model.base_channels=64")


def add_max_pixels(p: argparse.ArgumentParser) -> None:
    option(p, "max_pixels", type=COUNT, default=None,
                   help="refuse images with more pixels than this (default 268435456 = 16384^2)")
