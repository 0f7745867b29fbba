"""Microstructure descriptors in PyTorch (CPU and GPU), matching MCRpy 0.2.0.

The math, as MCRpy computes it for the paper's settings (``CharacterizationSettings(
descriptor_types=['Correlations', 'GramMatrices'], use_multigrid_descriptor=False, limit_to=32,
use_multiphase=False)``; single phase, one grid level, periodic), is written out in
``shared/reference/mcrpy/notes.md``; the tests compare with MCRpy's own outputs.

Inputs are fields x in [0, 1] of shape (B, H, W) (grayscale micrographs are used unsegmented,
as in the paper).
"""
from __future__ import annotations

import math
from functools import lru_cache

import torch
import torch.nn.functional as F
from torch import Tensor

from ..core.errors import DataError, setting

# soft threshold phi(c) = a * sigmoid(10 (c - 0.75)) + b, scaled so phi(0) ~ 0, phi(1) ~ 1, with
# sigmoid(-7.5) and sigmoid(2.5) evaluated in float32 exactly as MCRpy (TensorFlow) does
_SIG_LO = float.fromhex("0x1.21d0b2p-11")
_SIG_HI = float.fromhex("0x1.d9291ep-1")
PHI_A = 1.0 / (_SIG_HI - _SIG_LO)
PHI_B = -PHI_A * _SIG_LO
PHI_STEEPNESS = 10.0
PHI_THRESHOLD = 0.75


def correlation_offsets(limit_to: int = 32) -> list[tuple[int, int]]:
    """MCRpy's channel order: (i, j) for i, j in 0..L-1 (L^2 channels), then (i, -m) for
    i, m in 1..L-1 ((L-1)^2 channels). K = L^2 + (L-1)^2 = 1985 for L = 32."""
    pos = [(i, j) for i in range(limit_to) for j in range(limit_to)]
    neg = [(i, -m) for i in range(1, limit_to) for m in range(1, limit_to)]
    return pos + neg


def num_channels(limit_to: int = 32) -> int:
    """K = L^2 + (L - 1)^2 correlation channels."""
    return limit_to ** 2 + (limit_to - 1) ** 2


def soft_threshold(c: Tensor) -> Tensor:
    return PHI_A * torch.sigmoid(PHI_STEEPNESS * (c - PHI_THRESHOLD)) + PHI_B


def _check_field(x: Tensor, limit_to: int) -> Tensor:
    if x.ndim == 2:
        x = x[None]
    if x.ndim != 3:
        raise DataError(f"expected images of shape (B, H, W) or (H, W), got {tuple(x.shape)}")
    if min(x.shape[-2:]) < limit_to:
        raise DataError(f"image size {tuple(x.shape[-2:])} is smaller than limit_to={limit_to}; "
                         f"use a larger image or a smaller {setting('limit_to')}")
    if not torch.isfinite(x).all():
        raise DataError("image contains NaN or infinite pixels")
    if x.min() < 0 or x.max() > 1:
        raise DataError(f"image values {float(x.min()):.4g}..{float(x.max()):.4g} lie outside [0, 1]")
    return x


def correlation_features(x: Tensor, limit_to: int = 32, mcrpy_shift: bool = True) -> Tensor:
    """f_k(p, q) = phi(c_k(p, q)) for every channel k: (B, K, H*W).

    c_k is the mean of the pixel at (p, q) and the one at offset r_k (periodic). MCRpy displaces
    the negative-offset maps by s = 2L mod W columns (``mcrpy_shift=True``, the default,
    reproduces it); ``mcrpy_shift=False`` aligns them (s = 0), the correct three-point statistic.
    """
    b, h, w = x.shape
    L = limit_to
    s = (2 * L) % w if mcrpy_shift else 0
    K = L * L + (L - 1) ** 2
    # periodic padding: L-1 rows at the bottom, L-1 columns on both sides
    xp = F.pad(x[:, None], (L - 1, L - 1, 0, L - 1), mode="circular")[:, 0]
    xs = torch.roll(x, shifts=-s, dims=-1) if s else x
    xsp = F.pad(xs[:, None], (L - 1, L - 1, 0, L - 1), mode="circular")[:, 0] if s else xp
    c0 = L - 1
    if torch.is_grad_enabled() and x.requires_grad:        # differentiable (descriptor targets)
        out = torch.stack([(x if j >= 0 else xs) + (xp if j >= 0 else xsp)[:, i:i + h, c0 + j:c0 + j + w]
                           for i, j in correlation_offsets(L)], dim=1)
        return soft_threshold(0.5 * out).reshape(b, K, h * w)
    out = torch.empty(b, K, h, w, dtype=x.dtype, device=x.device)
    for k, (i, j) in enumerate(correlation_offsets(L)):
        if j >= 0:   # c = (x[p, q] + x[p + i, q + j]) / 2
            torch.add(x, xp[:, i:i + h, c0 + j:c0 + j + w], alpha=1.0, out=out[:, k])
        else:        # c = (x[p, q + s] + x[p + i, q + s - m]) / 2
            torch.add(xs, xsp[:, i:i + h, c0 + j:c0 + j + w], alpha=1.0, out=out[:, k])
    out.mul_(0.5)
    return soft_threshold(out).reshape(b, K, h * w)


def correlations(x: Tensor, limit_to: int = 32, mcrpy_shift: bool = True, chunk: int = 4) -> Tensor:
    """MCRpy's three-point correlation descriptor S (K x K, K = 1985 for L = 32) per image: (B, K, K).

    S_kl = (1 / HW) sum_{p,q} f_k(p,q) f_l(p,q): the diagonal holds soft two-point correlations
    S2(r_k), the rest approximate three-point correlations of the points {0, r_k, r_l}. The
    product is a symmetric rank-HW update (K^2 HW multiply-adds per image, float32).
    """
    x = _check_field(torch.as_tensor(x), limit_to).float()
    outs = []
    for start in range(0, x.shape[0], chunk):
        f = correlation_features(x[start:start + chunk], limit_to, mcrpy_shift)
        outs.append(torch.stack([gram_upper(fi) for fi in f]) / f.shape[-1])
    return torch.cat(outs)


def gram_upper(f: Tensor, blocks: int = 4) -> Tensor:
    """f f^T for f of shape (K, n), computing only the blocks on and above the diagonal and
    mirroring the rest: 10 of 16 block products (a blocked SYRK, which torch does not expose)."""
    k = f.shape[0]
    edges = [k * i // blocks for i in range(blocks + 1)]
    out = torch.empty(k, k, dtype=f.dtype, device=f.device)
    for i in range(blocks):
        a = f[edges[i]:edges[i + 1]]
        for j in range(i, blocks):
            blk = a @ f[edges[j]:edges[j + 1]].T
            out[edges[i]:edges[i + 1], edges[j]:edges[j + 1]] = blk
            if i != j:
                out[edges[j]:edges[j + 1], edges[i]:edges[i + 1]] = blk.T
    return out


# ---------------------------------------------------------------- Gram matrices (normalised VGG-19)

VGG_BLOCKS = (2, 2, 4, 4, 4)            # conv layers per block; a 2x2 average pool between blocks


@lru_cache(maxsize=2)
def _load_vgg(path: str, device: str, dtype: torch.dtype) -> dict[str, Tensor]:
    from safetensors.torch import load_file
    return {k: v.to(device=device, dtype=dtype) for k, v in load_file(path).items()}


def vgg_weights(device="cpu", dtype=torch.float32) -> dict[str, Tensor]:
    from .weights import weights_path
    return _load_vgg(str(weights_path("vgg19")), str(device), dtype)


def gram_matrices(x: Tensor, weights: dict[str, Tensor] | None = None, dtype=torch.float32) -> Tensor:
    """MCRpy's GramMatrices descriptor: (B, 610304) for any input size.

    The gray field is encoded as 255 x - mean (per RGB channel), then 16 conv+ReLU layers with
    periodic padding of 2 at the bottom/right only and a VALID 3x3 convolution (no kernel flip),
    2x2 average pooling between blocks. Gram matrices G = F^T F / (h w) after conv1_2, conv2_2,
    conv3_4, conv4_4 and conv5_4 are flattened row-major and concatenated.
    """
    x = torch.as_tensor(x)
    if x.ndim == 2:
        x = x[None]
    x = _check_field(x, 16).to(dtype)
    w = weights if weights is not None else vgg_weights(x.device, dtype)
    h = (255.0 * x[:, None] - w["mean"].view(1, 3, 1, 1)).to(dtype)
    grams = []
    layer = 0
    for bi, n in enumerate(VGG_BLOCKS):
        if bi > 0:
            h = F.avg_pool2d(h, 2)
        for _ in range(n):
            h = F.relu(F.conv2d(F.pad(h, (0, 2, 0, 2), mode="circular"), w[f"conv{layer}.weight"], w[f"conv{layer}.bias"]))
            layer += 1
        f = h.flatten(2)                                        # (B, C, hw)
        grams.append((torch.bmm(f, f.transpose(1, 2)) / f.shape[-1]).flatten(1))
    return torch.cat(grams, dim=1)


# ---------------------------------------------------------------- plain descriptors of a segmented image

def otsu_threshold(x: Tensor) -> Tensor:
    """Otsu's threshold per image (B,) of fields in [0, 1] (``segmentation.multi_otsu_thresholds``)."""
    from .segmentation import multi_otsu_thresholds
    x = torch.as_tensor(x)
    if x.ndim == 2:
        x = x[None]
    return torch.tensor([float(multi_otsu_thresholds(img.double().cpu().numpy(), 2)[0]) for img in x],
                        dtype=torch.float64)


def segment(x: Tensor, threshold: float | None = None) -> Tensor:
    """Binary phase indicator (B, H, W): pixels above the threshold (Otsu's by default)."""
    x = torch.as_tensor(x)
    if x.ndim == 2:
        x = x[None]
    if threshold is None:
        t = otsu_threshold(x)
    else:
        t = torch.full((x.shape[0],), float(threshold), dtype=torch.float64)
    return (x.double() > t.to(x.device).view(-1, 1, 1)).double()


def volume_fraction(x: Tensor, threshold: float | None = None) -> Tensor:
    """Volume fraction of the bright phase after segmentation, (B,)."""
    return segment(x, threshold).mean(dim=(1, 2))


def two_point_radial(x: Tensor, threshold: float | None = None, max_radius: int | None = None) -> Tensor:
    """Radially averaged two-point correlation S2(r) of the segmented bright phase, (B, R):
    S2(r) = mean over periodic offsets of length in [r - 0.5, r + 0.5) of P(both points in the
    phase); S2(0) is the volume fraction and S2 -> vf^2 for uncorrelated distances."""
    return radial_s2(segment(x, threshold), max_radius)


def radial_s2(m: Tensor, max_radius: int | None = None, periodic: bool = True) -> Tensor:
    """The one radially averaged two-point correlation: of fields m (B, *shape) (images or
    volumes; indicators, or soft indicators, differentiably), (B, R), R = ``max_radius`` (default
    min(shape) // 2), offsets |d| in [r - 0.5, r + 0.5).

    ``periodic``: the autocorrelation (1/N) sum_p m(p) m(p + d) on the torus, averaged over the
    offsets of each bin. Otherwise within the array: the FFT of the zero-padded field, each
    offset's sum divided by the number of point pairs that offset has, pooled per bin."""
    b, shape = m.shape[0], tuple(m.shape[1:])
    dims = tuple(range(1, m.ndim))
    rmax = max_radius if max_radius is not None else min(shape) // 2
    size = shape if periodic else tuple(2 * n for n in shape)
    f = torch.fft.rfftn(m, s=size, dim=dims)
    corr = torch.fft.irfftn(f * f.conj(), s=size, dim=dims).reshape(b, -1)
    dist2 = torch.zeros(size, dtype=torch.float64)
    for k, (full, n) in enumerate(zip(size, shape)):
        d = torch.minimum(torch.arange(full), full - torch.arange(full)).double()
        if not periodic:
            d[n:full - n + 1] = float("inf")                 # offsets no pair has
        dist2 = dist2 + (d ** 2).view(*[-1 if j == k else 1 for j in range(len(size))])
    bins = torch.round(torch.sqrt(dist2)).flatten()
    if periodic:
        idx = bins.long().to(m.device)
        keep = idx < rmax
        total = torch.zeros(b, rmax, dtype=m.dtype, device=m.device).index_add(1, idx[keep], corr[:, keep] / math.prod(shape))
        return total / torch.bincount(idx[keep], minlength=rmax).to(m.dtype)
    ones = torch.fft.rfftn(torch.ones(shape, dtype=torch.float64), s=size)
    pairs = torch.round(torch.fft.irfftn(ones * ones.conj(), s=size)).flatten()
    keep = (bins < rmax) & (pairs > 0.5)
    idx = bins[keep].long().to(m.device)
    num = torch.zeros(b, rmax, dtype=m.dtype, device=m.device).index_add(1, idx, corr[:, keep.to(m.device)])
    den = torch.zeros(rmax, dtype=torch.float64).index_add(0, idx.cpu(), pairs[keep])
    return num / den.clamp_min(1).to(m.device, m.dtype)


def soft_correlations(x: Tensor, limit_to: int = 32) -> Tensor:
    """The correlations descriptor (as MCRpy's, its negative-offset shift included), flattened
    (B, K^2), differentiable in x (B, H, W) in [0, 1]: what correlations targets steer with."""
    f = correlation_features(x, limit_to, mcrpy_shift=True)
    return torch.bmm(f, f.transpose(1, 2)).flatten(1) / f.shape[-1]


def pixels(x: Tensor) -> Tensor:
    """The gray values themselves, flattened (B, H*W): E_px's descriptor."""
    return torch.as_tensor(x).flatten(1)


def flops_correlations(h: int, w: int, limit_to: int = 32) -> float:
    """2 K^2 H W: the FLOPs of the full K x K product over H W positions (the blocked symmetric
    product in ``gram_upper`` does 10/16 of them)."""
    k = limit_to ** 2 + (limit_to - 1) ** 2
    return 2.0 * h * w * k * k


def flops_gram(h: int, w: int) -> float:
    """FLOPs of the VGG-19 convolutions and the five Gram products for one H x W image."""
    total, c_in, hh, ww = 0.0, 3, h, w
    chans = (64, 128, 256, 512, 512)
    for bi, n in enumerate(VGG_BLOCKS):
        if bi > 0:
            hh, ww = hh // 2, ww // 2
        for _ in range(n):
            total += 2.0 * hh * ww * 9 * c_in * chans[bi]
            c_in = chans[bi]
        total += 2.0 * hh * ww * c_in * c_in
    return total


__all__ = ["correlations", "correlation_features", "correlation_offsets", "num_channels", "gram_matrices", "volume_fraction",
           "two_point_radial", "otsu_threshold", "radial_s2", "soft_correlations", "pixels", "segment",
           "flops_correlations", "flops_gram", "soft_threshold",
           "PHI_A", "PHI_B"]
