"""A 2D denoiser on 3D volumes (Micro3Diff's multi-plane denoising, Lee & Yun 2024).

``PlanarVolumeDenoiser`` denoises all planar sections normal to one axis as a batch of images
(the axes taking turns call by call), or normal to each of the three axes, combining the three:
averaged (``fuse``), or as a product of the planar experts rank-mapped onto the 2D model's gray
levels (``product``, with a ``VoxelPrior``). A class per axis makes anisotropic volumes.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import torch
from torch import Tensor

from .denoiser import DenoiserOutput, DenoiserWrapper
from .shares import match_fractions, phase_probabilities


PLANE_MODES = ("alternate", "fuse", "product")
EVIDENCE = 1.0             # product mode: weight of each plane's evidence (see PlanarVolumeDenoiser.product_x0)
UNMAPPED_EVIDENCE = 0.5    # the weight for a prior without levels, which keeps the volume fraction unmapped
NORMAL_STD = 1.0           # product: each plane's evidence smoothed along that plane's normal (Gaussian std, voxels)
NORMAL_FADE = 1.0          # gray product: the width times s^2 / (s^2 + NORMAL_FADE^2), s = sigma / alpha (0: every step)
PHASE_NORMAL_FADE = 0.05   # phase product: the same, narrowing only in the last steps (the full width thickens thin films)
NORMAL_FLOOR = 0.0         # gray product: the faded width never below this share of NORMAL_STD (a screen's setting)
MARGINAL_GRID = 8193       # marginal_denoiser: points over a volume's range of x_t, linearly interpolated between


@dataclass(frozen=True, eq=False)
class VoxelPrior:
    """What the product of planes knows of a voxel before its neighbours: its gray-level
    marginal (``values``, ``weights`` in [-1, 1]: the prior of ``marginal_denoiser``) and
    ``levels``: per original-schedule timestep t, the sorted x_0 predictions of 2D samples at that
    step (``generate.volumes.voxel_marginal``), onto which the product's x_0 is rank-mapped (``rank_map``).
    Empty levels: no map (and the unmapped weight); non-empty, they must cover every step walked.
    ``fraction``: the bright phase's share of the final levels (above their Otsu threshold ``cut``) and
    ``s2``: its radially averaged two-point correlation in the 2D samples (r = 0 ...), from which
    ``fraction_std`` predicts how the fraction of a volume scatters."""
    values: Tensor
    weights: Tensor
    levels: dict[int, Tensor] = field(default_factory=dict)
    fraction: float | None = None
    s2: Tensor | None = None
    cut: float | None = None          # the gray level in [-1, 1] above which the bright phase lies

    def fraction_std(self, shape) -> float:
        """The standard deviation of the bright phase's fraction over volumes of ``shape``
        (``fraction_std``), from the 2D samples' S2."""
        if self.fraction is None or self.s2 is None:
            raise ValueError("the prior has no fraction and S2 to predict the scatter from")
        return fraction_std(self.s2, self.fraction, shape)


@dataclass(frozen=True, eq=False)
class PhasePrior:
    """What ``product`` knows of one voxel of a phase model (one-hot channels): the phases'
    shares ``fractions`` (K,), from ``source``: the training data or the model's 2D samples
    (``generate.volumes.phase_marginal``)."""
    fractions: Tensor
    source: str = "2D samples"


def phase_product(x0s: Sequence[Tensor], fractions: Tensor | None = None,
                  floor: float = 1e-4, normal_std: float = 0.0, periodic: bool = False) -> Tensor:
    """The three planes' phase probabilities combined for one-hot phases, as x_0 in [-1, 1]
    (B, K, ...): each plane's x_0 read as probabilities p_a = (x0_a + 1) / 2 (clipped at
    ``floor``, normalised), their geometric mean log p = (1/n) sum_a log p_a (a product of the
    planar experts, each tempered by 1/n), and with ``fractions`` (K,) each volume's phases shifted
    by one log-odds offset per phase so that its mean probabilities are the fractions
    (``match_fractions``; the categorical counterpart of the gray product's rank map: the order of
    each phase's evidence is kept, its share fixed). Returned as E[e_k] = 2 p - 1.

    ``normal_std`` > 0: log p = (1/n) sum_a G_a log p_a, each plane's log-probabilities smoothed
    along that plane's normal (``smooth_along``, wrapped when ``periodic``), as the gray product
    smooths its evidence (``PlanarVolumeDenoiser.product_x0``): a plane's sections are decided
    independently, so without G_a the phases flip from section to section where the planes are
    unsure, which speckles the volume with single voxels (far too much triple-phase boundary on
    the three-phase truth; measured with and without G_a in BENCHMARKS.md). Smoothing the planes'
    departure from the voxel's own posterior instead (as the gray rule does) kept the speckle.

    Two stronger combinations were measured worse on the three-phase truth (BENCHMARKS.md, "Phase
    volumes"): the full product with the voxel's own evidence divided out twice (log p = sum_a
    log p_a - (n - 1) log p_ref, p_ref the voxel's own posterior) gave volumes of voxel noise, since a 2D denoiser's
    planes smooth the voxel's own noise, so dividing its exact likelihood out twice leaves that
    noise with a negative weight; the gray rule in x_0 space (ref + sum_a (x0_a - ref)) lost the
    minority phase (0.5 % binder for 13 %)."""
    logp = 0
    for a, xa in enumerate(x0s):
        p = phase_probabilities((xa.double() + 1) / 2, floor)
        logp = logp + smooth_along(p.log(), a, normal_std, periodic) / len(x0s)
    if fractions is not None:
        logp = match_fractions(logp, fractions)
    return (2 * torch.softmax(logp, dim=1) - 1).to(x0s[0].dtype)


def smooth_along(x: Tensor, axis: int, std: float, periodic: bool = False) -> Tensor:
    """x (B, C, Z, Y, X) convolved along array axis ``axis`` (0 = z) with a normalised Gaussian of
    ``std`` voxels (radius ceil(3 std)); the ends replicated, or wrapped when ``periodic``."""
    if std <= 0:
        return x
    r = max(1, int(-(-3 * std // 1)))
    k = torch.exp(-torch.arange(-r, r + 1, dtype=torch.float64) ** 2 / (2 * std * std))
    k = (k / k.sum()).tolist()
    d = 2 + axis
    n = x.shape[d]
    if periodic:
        idx = torch.arange(-r, n + r, device=x.device) % n
    else:
        idx = torch.arange(-r, n + r, device=x.device).clamp(0, n - 1)
    padded = x.index_select(d, idx)
    out = k[0] * padded.narrow(d, 0, n)
    for j in range(1, 2 * r + 1):
        out = out + k[j] * padded.narrow(d, j, n)
    return out


def fraction_std(s2: Tensor, fraction: float, shape) -> float:
    """The standard deviation of a phase's volume fraction over windows of ``shape`` of a
    statistically homogeneous, isotropic structure: Var = (1/N^2) sum over voxel pairs of the
    covariance C(|d|) = S2(|d|) - fraction^2, i.e. sum_d n(d) C(|d|) / N^2 with n(d) = prod_a
    (L_a - |d_a|) the pairs at offset d (Torquato 2002, the variance of the local volume fraction,
    on the voxel grid). ``fraction`` is the phase's share in the images S2 was measured on, so
    C(0) = fraction (1 - fraction). C is taken as 0 from its first zero on and beyond len(s2):
    past the correlation length the estimate is noise about 0 (and any bias of S2's plateau
    against fraction^2), which summed over the far pairs, far more numerous, would swamp the near
    ones."""
    import numpy as np
    c = np.asarray(s2, dtype=np.float64) - fraction ** 2
    zero = np.flatnonzero(c <= 0)
    r = int(zero[0]) if len(zero) else len(c)
    if r == 0:
        return 0.0
    ax = np.arange(-r + 1, r)
    dz, dy, dx = np.meshgrid(ax, ax, ax, indexing="ij")
    dist = np.rint(np.sqrt(dz ** 2 + dy ** 2 + dx ** 2)).astype(np.int64)
    pairs = np.ones_like(dist, dtype=np.float64)
    for d, n in zip((dz, dy, dx), shape):
        pairs = pairs * np.clip(n - np.abs(d), 0, None)
    keep = dist < r
    var = float((pairs[keep] * c[dist[keep]]).sum()) / float(np.prod(shape)) ** 2
    return float(np.sqrt(max(var, 0.0)))


def even_ranks(sorted_values: Tensor, n: int) -> Tensor:
    """``n`` of ``sorted_values`` at evenly spaced ranks, first and last included: the same
    distribution at another sample size (n = its length: itself)."""
    idx = torch.linspace(0, sorted_values.numel() - 1, n, dtype=torch.float64, device=sorted_values.device)
    return sorted_values[idx.round().long()]


def warped_ranks(sorted_values: Tensor, n: int, fraction: float, target: float) -> Tensor:
    """``even_ranks`` with the ranks bent so that the share of values at the top quantile
    ``fraction`` of ``sorted_values`` becomes ``target``: rank fraction u goes to the quantile
    w(u), piecewise linear through (0, 0), (1 - target, 1 - fraction) and (1, 1). A phase that is
    the top ``fraction`` of the levels takes ``target`` of the voxels; within each phase the
    levels keep their order and distribution."""
    u = torch.linspace(0, 1, n, dtype=torch.float64, device=sorted_values.device)
    knot, base = 1.0 - float(target), 1.0 - float(fraction)
    w = torch.where(u <= knot, u * base / max(knot, 1e-12), base + (u - knot) * fraction / max(1.0 - knot, 1e-12))
    idx = (w.clamp(0, 1) * (sorted_values.numel() - 1)).round().long()
    return sorted_values[idx]


def rank_map(x: Tensor, levels: Tensor, fraction: float | None = None, targets: Sequence[float] | None = None
             ) -> Tensor:
    """Each item of x (B, ...) with its values replaced, rank for rank, by ``levels`` (sorted, any
    length; resampled at evenly spaced ranks): the spatial order of x with the distribution of
    ``levels``. Monotone, so every level cut of x keeps its shape and only moves. With
    ``targets`` (one per item), item b's top ``fraction`` of the levels takes ``targets[b]`` of
    its voxels (``warped_ranks``)."""
    out = torch.empty_like(x)
    for b in range(x.shape[0]):
        n = x[b].numel()
        q = even_ranks(levels, n) if targets is None else warped_ranks(levels, n, fraction, targets[b])
        flat = torch.empty(n, dtype=x.dtype, device=x.device)
        flat[x[b].flatten().argsort()] = q.to(x.device, x.dtype)
        out[b] = flat.view_as(x[b])
    return out


def marginal_denoiser(x: Tensor, alpha: Tensor, sigma: Tensor, values: Tensor, weights: Tensor,
                      chunk: int = 1 << 15, grid: int = MARGINAL_GRID) -> Tensor:
    """E[x_0 | x_t = x] voxel by voxel when the voxels of x_0 are i.i.d. with the discrete marginal
    P(x_0 = values[i]) = weights[i]: a softmax over the values of log w_i - (x - alpha v_i)^2 /
    (2 sigma^2). alpha, sigma broadcast per sample against x (B, ...); ``chunk`` voxels at a time.
    A smooth, monotone function of the scalar x, so an item of more than 4 ``grid`` voxels takes
    it on ``grid`` evenly spaced points over its range, linearly interpolated (0: every voxel
    exactly; the interpolation's error is checked against the exact values in the tests)."""
    v = values.to(torch.float64)
    logw = weights.to(torch.float64).clamp_min(1e-300).log()

    def exact(xs: Tensor, a: float, s: float, dst: Tensor) -> None:
        for i in range(0, xs.numel(), chunk):
            xi = xs[i:i + chunk].to(torch.float64)[:, None]
            logits = logw - (xi - a * v) ** 2 / (2 * s * s)
            dst[i:i + chunk] = (torch.softmax(logits, dim=1) @ v).to(dst.dtype)
    out = torch.empty_like(x)
    for b in range(x.shape[0]):
        a, s = float(alpha.flatten()[b]), float(sigma.flatten()[b])
        flat, dst = x[b].reshape(-1), out[b].view(-1)
        if not grid or flat.numel() <= 4 * grid:
            exact(flat, a, s, dst)
            continue
        lo, hi = float(flat.min()), float(flat.max())
        if hi <= lo:
            exact(flat, a, s, dst)
            continue
        knots = torch.linspace(lo, hi, grid, dtype=torch.float64, device=x.device)
        f = torch.empty_like(knots)
        exact(knots, a, s, f)
        pos = ((flat.to(torch.float64) - lo) * ((grid - 1) / (hi - lo))).clamp(0, grid - 1)
        i0 = pos.floor().long().clamp(max=grid - 2)
        w = pos - i0
        dst.copy_((f[i0] * (1 - w) + f[i0 + 1] * w).to(dst.dtype))
    return out


class PlanarVolumeDenoiser(DenoiserWrapper):
    """A 2D denoiser on volumes x (B, C, Z, Y, X) with labels y (B, 3): one class per axis, for
    the sections normal to z, y and x.

    ``planes[a]`` denoises the sections normal to array axis a (0 = z, 1 = y, 2 = x) as a batch
    of images: the volume with that axis moved into the batch, the other two in order (the
    convention of ``data.synth3d``). Each is the 2D denoiser on that section's canvas (windows
    for sections larger than the training size, a torus for periodic volumes). ``mode``:
    ``alternate``: call k uses the axis ``order[k % 3]``, one 2D pass per call; ``fuse``: every
    call averages the epsilon (and variance channels) of all three axes, three passes;
    ``product``: every call adds the three axes' evidence beyond what the voxel alone says
    (``product_x0``; ``prior``: a ``VoxelPrior``, or the voxels' gray-level marginal as (values,
    weights) in [-1, 1] with no levels: then unmapped, with UNMAPPED_EVIDENCE), three passes.
    Volumes of one channel (``rank_map`` maps all voxels of an item onto one set of levels);
    ``fractions`` (one per volume of the batch): the bright phase's share each volume is mapped to
    (``warped_ranks``), else the prior's (every volume at the class's fraction). ``normal_std``:
    the product's smoothing of each plane's evidence along its normal (``product_x0``), its ends
    wrapped when ``periodic`` (None: NORMAL_STD).
    """

    def __init__(self, planes: Sequence, mode: str = "alternate", order: Sequence[int] = (0, 1, 2),
                 prior: "VoxelPrior | tuple[Tensor, Tensor] | None" = None, fractions: Sequence[float] | None = None,
                 normal_std: float | None = None, periodic: bool = False):
        if mode not in PLANE_MODES:
            raise ValueError(f"unknown plane mode {mode!r}; choose one of: {', '.join(PLANE_MODES)}")
        super().__init__(planes[0])
        self.planes, self.mode, self.order = list(planes), mode, tuple(order)
        self.prior = VoxelPrior(*prior) if isinstance(prior, tuple) else prior
        self.fractions = None if fractions is None else tuple(float(f) for f in fractions)
        self.normal_std = NORMAL_STD if normal_std is None else float(normal_std)
        self.periodic = bool(periodic)
        if self.fractions is not None and (self.prior is None or self.prior.fraction is None):
            raise ValueError("volumes at drawn fractions need the prior's fraction (VoxelPrior.fraction)")
        self.calls = 0

    def along(self, axis: int, x: Tensor, t: Tensor, y: Tensor) -> DenoiserOutput:
        """The sections normal to ``axis`` denoised; epsilon and v as volumes like x."""
        b, c = x.shape[:2]
        d = 2 + axis
        n = x.shape[d]
        xs = x.movedim(d, 1).reshape(b * n, c, *[x.shape[k] for k in range(2, 5) if k != d])
        out = self.planes[axis](xs, t.repeat_interleave(n), y[:, axis].repeat_interleave(n))

        def back(f: Tensor) -> Tensor:
            return f.reshape(b, n, f.shape[1], *xs.shape[2:]).movedim(1, d)
        return DenoiserOutput(back(out.eps), back(out.x0), None if out.v is None else back(out.v))

    def product_x0(self, x: Tensor, t: Tensor, x0s: Sequence[Tensor]) -> Tensor:
        """The planes' evidence added, x0 = ref + EVIDENCE * sum_a G_a * (x0_a - ref), then
        rank-mapped onto the prior's levels at this step. ref = ``marginal_denoiser`` under the
        prior's marginal: what the voxel's own noisy value says, which every plane contains and
        which so counts once; each plane's departure from ref is the evidence of its in-plane
        neighbours. G_a: a Gaussian of ``normal_std`` voxels along plane a's normal.

        Why G_a: a plane never looks across its sections, so its evidence is a set of independent
        2D estimates, one per section, and the sum of three such "pancake" estimates passes modes
        that vary along one axis only, which no plane sees as structure: sheets one voxel thick
        normal to each axis (too much surface, too short chords, too thin features). For a
        Gaussian field at high noise the exact 3D posterior mean is the field's covariance applied
        to x_t in all three directions; each plane applies it in its own two, and smoothing its
        evidence along the third on the covariance's own scale brings the sum close to it (tested
        in closed form). One width for all models: about a voxel removes the one-voxel sheets and
        keeps features of a few voxels; chosen on real micro-CT (Ketton) against 0, 0.7 and 2
        (BENCHMARKS.md); for gray volumes it fades with the noise level (``width``). For i.i.d.
        voxels the planes add nothing (x0_a = ref) and G_a changes nothing.

        EVIDENCE = 1 is the product of the three planar experts with the voxel's own evidence,
        which each of them holds, divided out twice, to first order in each plane's departure
        (1/3 is ``fuse``'s average, a third of each plane's structure; 1/2 would count once each
        neighbour on the axis lines two planes share). Unmapped (a prior without levels, which
        uses UNMAPPED_EVIDENCE = 1/2), 1/2 keeps the volume fraction but leaves the structure too
        fine (too much surface), and weights above it coarsen the structure while the field's
        amplitude grows and the level cut drifts (at 1 the gray levels saturate). The rank map
        takes the drift out: the product's x0 keeps its spatial order and gets the distribution of
        2D samples' x0 at the same step (``VoxelPrior.levels``), so the weight sets only the
        structure and the 2D model the gray levels (measured against other weights in
        BENCHMARKS.md). For i.i.d. voxels x0_a = ref, the exact denoiser whatever the weight, and
        the levels are (up to sampling) ref's own distribution."""
        if self.prior is None:
            raise ValueError("the product of planes needs the voxels' marginal: prior=VoxelPrior(values, weights)")
        alpha, sigma = self.coefficients(t, x)
        if isinstance(self.prior, PhasePrior):
            width = self.width(alpha, sigma, PHASE_NORMAL_FADE)
            return phase_product(x0s, self.prior.fractions, normal_std=width, periodic=self.periodic)
        ref = marginal_denoiser(x, alpha, sigma, self.prior.values, self.prior.weights)
        levels = self.prior.levels
        weight = EVIDENCE if levels else UNMAPPED_EVIDENCE
        width = self.width(alpha, sigma, NORMAL_FADE, NORMAL_FLOOR)
        x0 = ref + weight * sum(smooth_along(xa - ref, a, width, self.periodic) for a, xa in enumerate(x0s))
        if not levels:
            return x0
        step = int(t.flatten()[0])
        if step not in levels:
            raise ValueError(f"the prior's levels were recorded for other timesteps than {step}: record them with "
                             "the volume's own sampler and steps (generate.volumes.voxel_marginal)")
        return rank_map(x0, levels[step], self.prior.fraction, self.fractions).to(x.dtype)

    def width(self, alpha: Tensor, sigma: Tensor, fade: float, floor: float = 0.0) -> float:
        """The smoothing along each plane's normal at this noise level: ``normal_std`` times
        max(floor, s^2 / (s^2 + fade^2)), s = sigma / alpha, so the full width at high noise, where
        the planes' sections are independent estimates, and ``floor`` times it (none at floor 0) in
        the last steps, where x_t already ties neighbouring sections together (fade 0: the full
        width at every step). Gray volumes fade (NORMAL_FADE; it joined more pores on Ketton at the
        same surface, BENCHMARKS.md) to none (NORMAL_FLOOR 0: a floor adds the fibers' missing surface
        as single-voxel speckle on their edges, BENCHMARKS.md).
        Phase volumes fade only in the last steps (PHASE_NORMAL_FADE): the full width there
        thickens thin films, and fading earlier lets the voxel speckle of the unsmoothed product
        back in."""
        if fade <= 0:
            return self.normal_std
        s2 = float((sigma / alpha).flatten()[0]) ** 2
        return self.normal_std * max(floor, s2 / (s2 + fade ** 2))

    def __call__(self, x: Tensor, t: Tensor, y: Tensor) -> DenoiserOutput:
        if x.ndim != 5 or y.ndim != 2 or y.shape[1] != 3:
            raise ValueError(f"expected volumes (B, C, Z, Y, X) and labels (B, 3), got {tuple(x.shape)} "
                             f"and {tuple(y.shape)}")
        axes = [self.order[self.calls % len(self.order)]] if self.mode == "alternate" else [0, 1, 2]
        self.calls += 1
        outs = [self.along(a, x, t, y) for a in axes]
        if len(outs) == 1:
            return self.output(x, t, outs[0].eps, outs[0].v)
        v = None if outs[0].v is None else sum(o.v for o in outs) / len(outs)
        if self.mode == "product":
            return self.output_from_x0(x, t, self.product_x0(x, t, [o.x0 for o in outs]), v)
        return self.output(x, t, sum(o.eps for o in outs) / len(outs), v)
