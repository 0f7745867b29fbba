"""The denoiser and everything that takes a denoiser and returns one (the sampling-time seam).

- ``denoiser``: ``Denoiser(x_t, t, y) -> DenoiserOutput(eps, x0, v)`` (the network: time input,
  preconditioning, conversions), ``DenoiserWrapper``, ``ClassifierFreeGuidance``,
  ``GaussianDenoiser`` (the exact denoiser of Gaussian data), ``inference_denoiser``, ``bind_labels``.
- ``canvas``: ``Canvas`` (what a sample fills: an image or a volume, periodic or not),
  ``WindowedDenoiser`` (overlapping windows, tori), ``ChunkedDenoiser``.
- ``mask``: ``KnownImage`` and ``MaskedDenoiser`` (inpainting: known pixels kept).
- ``volume``: ``PlanarVolumeDenoiser`` (a 2D model on 3D volumes), ``VoxelPrior``, ``rank_map``.
- ``shares``: ``match_fractions``, ``match_label_shares`` (a phase volume's shares fixed).
- ``guidance``: ``GradientGuidance`` (DPS), ``X0Guidance``, ``ClassMixture``.
- ``layout``: a layout model's condition (class, region in the source, dihedral element) and
  its coordinate channels; how a canvas's windows share it.
- ``stack``: ``build_denoiser``, the one place the layers are composed, in one documented order.

Everything here takes tensors and returns tensors: no files and no printing (``Canvas.of`` checks
a size it is given and names the setting that gave it).
"""
from .canvas import Canvas, ChunkedDenoiser, WindowedDenoiser
from .denoiser import (ClassifierFreeGuidance, Denoiser, DenoiserBase, DenoiserOutput, DenoiserWrapper,
                       GaussianDenoiser, bind_labels, inference_denoiser)
from .guidance import ClassMixture, GradientGuidance, X0Guidance, bracket_weights
from .mask import KnownImage, MaskedDenoiser
from .stack import Planes, Ticking, build_denoiser
from .volume import PLANE_MODES, PlanarVolumeDenoiser, VoxelPrior, marginal_denoiser, rank_map

__all__ = ["Denoiser", "DenoiserBase", "DenoiserOutput", "DenoiserWrapper", "GaussianDenoiser",
           "ClassifierFreeGuidance", "inference_denoiser", "bind_labels", "Canvas", "WindowedDenoiser",
           "ChunkedDenoiser", "KnownImage", "MaskedDenoiser", "PlanarVolumeDenoiser", "VoxelPrior", "rank_map",
           "marginal_denoiser", "PLANE_MODES", "GradientGuidance", "X0Guidance", "ClassMixture", "bracket_weights",
           "build_denoiser", "Planes", "Ticking"]
