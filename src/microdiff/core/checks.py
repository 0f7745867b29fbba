"""Checks of values where they enter (flags, settings, function arguments): type, range and
finiteness, with one-line messages that name the flag or setting, the bad value and what is
allowed. Each check returns the value, converted where that is lossless."""
from __future__ import annotations

import math
from typing import Iterable

from .errors import ConfigError, SettingError


def _fail(name: str, value, allowed: str, error: type[Exception]) -> None:
    if issubclass(error, SettingError):
        raise error(name, value, f"expected {allowed}")
    raise error(f"{name} = {value!r}: expected {allowed}")


def check_int(name: str, value, lo: int | None = None, hi: int | None = None,
              error: type[Exception] = ConfigError) -> int:
    """An integer (an integral float such as 3.0 is accepted) in [lo, hi]."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        _fail(name, value, "an integer" + describe_range(lo, hi), error)
    if isinstance(value, float) and (not math.isfinite(value) or value != int(value)):
        _fail(name, value, "an integer" + describe_range(lo, hi), error)
    value = int(value)
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        _fail(name, value, "an integer" + describe_range(lo, hi), error)
    return value


def check_float(name: str, value, lo: float | None = None, hi: float | None = None, lo_open: bool = False,
                hi_open: bool = False, error: type[Exception] = ConfigError) -> float:
    """A finite number in the interval [lo, hi] (ends open where asked)."""
    allowed = "a finite number" + describe_range(lo, hi, lo_open, hi_open)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        _fail(name, value, allowed, error)
    value = float(value)
    if not math.isfinite(value):
        _fail(name, value, allowed, error)
    if lo is not None and (value < lo or (lo_open and value == lo)):
        _fail(name, value, allowed, error)
    if hi is not None and (value > hi or (hi_open and value == hi)):
        _fail(name, value, allowed, error)
    return value


def check_choice(name: str, value, choices: Iterable[str], error: type[Exception] = ConfigError) -> str:
    choices = list(choices)
    if value not in choices:
        _fail(name, value, "one of " + ", ".join(map(str, choices)), error)
    return value


def check_bool(name: str, value, error: type[Exception] = ConfigError) -> bool:
    if not isinstance(value, bool):
        _fail(name, value, "true or false", error)
    return value


def describe_range(lo, hi, lo_open: bool = False, hi_open: bool = False) -> str:
    if lo is not None and hi is not None:
        return f" in {'(' if lo_open else '['}{lo}, {hi}{')' if hi_open else ']'}"
    if lo is not None:
        return f" {'>' if lo_open else '>='} {lo}"
    if hi is not None:
        return f" {'<' if hi_open else '<='} {hi}"
    return ""
