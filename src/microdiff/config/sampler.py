"""A sampler as a setting: its name and, for the stochastic one, how much noise and where.

``sample.sampler`` (``--sampler``) is a name of ``diffusion.samplers.SAMPLERS``, optionally with
options after a colon, as ``--segment`` takes ``threshold:T``::

    dpmpp_sde                          eta 1 at every step
    dpmpp_sde:eta=2,smin=0.1,smax=3    twice the SDE's rate of fresh noise, only at steps with 0.1 <= sigma <= 3

``eta`` scales the fresh noise of ``dpmpp_sde`` per step (0: the ODE, as ``dpmpp``; above 1 more
of x_t is replaced by fresh noise per unit of log-SNR, as EDM's S_churn does). ``smin`` and
``smax`` bound the noise levels sigma = sigma_t / alpha_t (EDM's sigma, data in [-1, 1]) at
which noise is added, as EDM's S_tmin and S_tmax (Karras et al. 2022, Alg. 2); elsewhere a
step is the ODE's. ``SamplerSpec.parse`` checks a text and ``str`` gives its canonical form,
which run records hold, so a resume compares options too.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from ..core.errors import SettingError

SAMPLER_NAMES = ("ancestral", "ddim", "dpmpp", "dpmpp_sde")     # diffusion.samplers.SAMPLERS (a test keeps them equal)
OPTIONS = {"dpmpp_sde": ("eta", "smin", "smax")}                # the samplers that take options, and which
EXAMPLE = "dpmpp_sde:eta=2,smin=0.1,smax=3"


@dataclass(frozen=True)
class SamplerSpec:
    name: str                      # a key of diffusion.samplers.SAMPLERS
    eta: float = 1.0               # dpmpp_sde: fresh noise per step, a multiple of the reverse SDE's (0: the ODE)
    smin: float = 0.0              # dpmpp_sde: no fresh noise at steps with sigma below this
    smax: float = math.inf         # dpmpp_sde: ... nor above this

    @classmethod
    def parse(cls, text: str, setting: str = "sampler") -> "SamplerSpec":
        """The spec of ``text`` (``NAME`` or ``NAME:key=value,...``); a bad one raises a
        ``SettingError`` naming ``setting``, the value and what is allowed."""
        if not isinstance(text, str):
            raise SettingError(setting, text, f"expected a sampler name: {', '.join(SAMPLER_NAMES)}")
        name, colon, rest = text.strip().partition(":")
        if name not in SAMPLER_NAMES:
            raise SettingError(setting, text, f"choose one of {', '.join(SAMPLER_NAMES)} (options: {EXAMPLE})")
        allowed = OPTIONS.get(name, ())
        if colon and not allowed:
            raise SettingError(setting, text, f"{name} takes no options; only {', '.join(OPTIONS)} does ({EXAMPLE})")
        values = {}
        for part in filter(None, rest.split(",")):
            key, eq, value = part.partition("=")
            key = key.strip()
            if key not in allowed or not eq or key in values:
                raise SettingError(setting, text, f"{name}'s options are {', '.join(allowed)}, each once as "
                                   f"key=value ({EXAMPLE})")
            try:
                number = float(value)
            except ValueError:
                number = math.nan
            if not (number >= 0 and (math.isfinite(number) or key == "smax")):     # smax may be inf
                raise SettingError(setting, text, f"{key} must be a number >= 0, got {value.strip()!r}")
            values[key] = number
        spec = cls(name, **values)
        if spec.smin > spec.smax:
            raise SettingError(setting, text, f"smin {spec.smin:g} is above smax {spec.smax:g}; the noise needs "
                               "smin <= smax")
        return spec

    def __str__(self) -> str:
        """The canonical text: the name, then the options that differ from their defaults."""
        defaults = SamplerSpec(self.name)
        parts = [f"{k}={getattr(self, k):g}" for k in OPTIONS.get(self.name, ())
                 if getattr(self, k) != getattr(defaults, k)]
        return self.name + (":" + ",".join(parts) if parts else "")

    def options(self) -> dict:
        """The keyword arguments of the sampler function beyond the common signature."""
        return {k: getattr(self, k) for k in OPTIONS.get(self.name, ())}


def check_sampler(setting: str, text, error: type[Exception] = SettingError) -> str:
    """``text`` as a checked, canonical sampler spec (``SamplerSpec``); ``error`` other than
    ``SettingError`` gets the same message as one line."""
    try:
        return str(SamplerSpec.parse(text, setting))
    except SettingError as e:
        if error is SettingError:
            raise
        raise error(f"{setting} = {text!r}: {e.problem}") from None
