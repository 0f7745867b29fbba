"""The training loss: the hybrid L_simple + lambda * L_vlb of improved-DDPM (Section 2.3), and
the recipe's weighting of the x_0 error for the faster recipes (min-SNR, v, EDM)."""
from __future__ import annotations

import math

import torch
from torch import Tensor

from .schedule import Diffusion, p_mean_variance, q_posterior


def normal_kl(mean1: Tensor, logvar1: Tensor, mean2: Tensor, logvar2: Tensor) -> Tensor:
    """KL(N(mean1, e^logvar1) || N(mean2, e^logvar2)), elementwise, in nats."""
    return 0.5 * (-1.0 + logvar2 - logvar1 + torch.exp(logvar1 - logvar2)
                  + (mean1 - mean2) ** 2 * torch.exp(-logvar2))


def discretized_gaussian_log_likelihood(x: Tensor, mean: Tensor, log_scale: Tensor) -> Tensor:
    """log P(x) for x in [-1, 1] quantised to 256 levels (bin width 2/255) under N(mean, e^{2 log_scale}).

    The decoder L_0 of DDPM: the edge bins extend to -inf / +inf. Uses the exact normal CDF
    (improved-diffusion uses a tanh approximation of it; they agree to ~1e-3).
    """
    centered = x - mean
    inv_std = torch.exp(-log_scale)
    upper = inv_std * (centered + 1.0 / 255.0)
    lower = inv_std * (centered - 1.0 / 255.0)
    log_cdf_upper = torch.special.log_ndtr(upper)
    log_sf_lower = torch.special.log_ndtr(-lower)
    # P(lower < z < upper), from whichever tail keeps it accurate; clamped as in improved-DDPM so
    # that neither branch of the where() below produces inf/NaN gradients.
    ndtr = torch.special.ndtr
    delta = torch.where(lower > 0, ndtr(-lower) - ndtr(-upper), ndtr(upper) - ndtr(lower))
    mid = torch.log(delta.clamp(min=1e-12))
    return torch.where(x < -0.999, log_cdf_upper, torch.where(x > 0.999, log_sf_lower, mid))


def mean_flat(x: Tensor) -> Tensor:
    return x.mean(dim=tuple(range(1, x.ndim)))


def vb_terms_bpd(diffusion: Diffusion, pred_x0: Tensor, v: Tensor | None, x0: Tensor, xt: Tensor,
                 t: Tensor) -> Tensor:
    """L_{t-1} in bits per dimension: KL(q(x_{t-1}|x_t,x_0) || p(x_{t-1}|x_t)) for t > 0 and the
    discretized decoder NLL at t = 0, with p's mean from ``pred_x0`` (unclipped). Per batch element."""
    true_mean, _, true_logvar = q_posterior(diffusion, x0, xt, t)
    mean, log_var = p_mean_variance(diffusion, pred_x0, v, xt, t)
    kl = mean_flat(normal_kl(true_mean, true_logvar, mean, log_var)) / math.log(2.0)
    nll = -mean_flat(discretized_gaussian_log_likelihood(x0, mean, 0.5 * log_var))
    return torch.where(t == 0, nll / math.log(2.0), kl)


def hybrid_loss(diffusion: Diffusion, out, x0: Tensor, xt: Tensor, t: Tensor,
                noise: Tensor, lambda_vlb: float = 0.001) -> dict[str, Tensor]:
    """L_hybrid = L_simple + lambda L_vlb (Nichol & Dhariwal eq. 16), per batch element, for a
    denoiser's output ``out`` (``eps``, ``x0``, ``v``) at x_t.

    L_simple is the epsilon MSE. L_vlb is the single-timestep term L_t, which with t drawn
    uniformly estimates L_vlb / T; improved-diffusion therefore multiplies it by T, so with
    lambda = 0.001 the term carries the factor T / 1000. The mean inside L_vlb uses a stopped
    gradient of epsilon (x_0 predicted from the detached epsilon), so L_vlb trains only Sigma (eq. 5).
    """
    mse = mean_flat((noise - out.eps) ** 2)
    terms = {"mse": mse}
    if out.v is not None and lambda_vlb > 0:
        vb = vb_terms_bpd(diffusion, out.x0.detach(), out.v, x0, xt, t)
        terms["vb"] = vb * (lambda_vlb * diffusion.num_timesteps)
        terms["loss"] = mse + terms["vb"]
    else:
        terms["loss"] = mse
    return terms


def snr(diffusion: Diffusion, t: Tensor) -> Tensor:
    """SNR_t = alpha-bar_t / (1 - alpha-bar_t), float64, (B,)."""
    a = diffusion.alphas_cumprod.to(t.device)[t]
    return a / (1 - a)


def x0_weight(weighting: str, snr_t: Tensor, min_snr_gamma: float = 5.0, sigma_data: float = 0.5) -> Tensor:
    """w(SNR) on |x0_hat - x0|^2 (float64): eps MSE = SNR x (x_0 MSE), v MSE = (SNR + 1) x (x_0
    MSE), min-SNR-gamma = min(SNR, gamma), EDM's lambda(sigma) = 1 / c_out^2 = SNR + 1 / sigma_data^2."""
    if weighting == "eps":
        return snr_t
    if weighting == "v":
        return snr_t + 1
    if weighting == "min_snr":
        return snr_t.clamp(max=min_snr_gamma)
    if weighting == "edm":
        return snr_t + 1 / sigma_data ** 2
    raise ValueError(f"unknown loss weighting {weighting!r}")


class DiffusionLoss:
    """The loss of one recipe, per batch element: ``terms["loss"]`` to minimise, ``terms["mse"]``
    (the epsilon MSE, logged for every recipe so runs compare) and ``terms["vb"]`` (lambda L_vlb,
    when the variance is learned).

    The ``eps`` weighting is L_simple itself (the paper, computed as the epsilon MSE); the others
    weight the x_0 error by ``x0_weight``. With learned Sigma the hybrid term trains the variance
    channels in every recipe (its mean uses the detached x_0).
    """

    def __init__(self, recipe, lambda_vlb: float = 0.001):
        self.recipe, self.lambda_vlb = recipe, lambda_vlb

    def __call__(self, diffusion: Diffusion, out, x0: Tensor, xt: Tensor, t: Tensor,
                 noise: Tensor) -> dict[str, Tensor]:
        r = self.recipe
        if r.weighting == "eps":
            return hybrid_loss(diffusion, out, x0, xt, t, noise, self.lambda_vlb)
        w = x0_weight(r.weighting, snr(diffusion, t), r.min_snr_gamma, r.sigma_data).to(x0.dtype)
        main = w * mean_flat((out.x0 - x0) ** 2)
        terms = {"mse": mean_flat((noise - out.eps) ** 2).detach(), "loss": main}
        if out.v is not None and self.lambda_vlb > 0:
            terms["vb"] = vb_terms_bpd(diffusion, out.x0.detach(), out.v, x0, xt, t) * (
                self.lambda_vlb * diffusion.num_timesteps)
            terms["loss"] = main + terms["vb"]
        return terms


def lognormal_timesteps(diffusion: Diffusion, normal: Tensor, mean: float, std: float) -> Tensor:
    """EDM's noise levels ln(sigma) = mean + std * normal, with sigma_t = sqrt((1 - alpha-bar_t) /
    alpha-bar_t), as the nearest timestep of ``diffusion`` (in ln sigma; clamped to its range)."""
    acp = diffusion.alphas_cumprod
    log_sigma = 0.5 * torch.log((1 - acp) / acp)                 # increasing in t
    target = mean + std * normal.to(torch.float64)
    idx = torch.searchsorted(log_sigma, target).clamp(1, len(log_sigma) - 1)
    lower_closer = (target - log_sigma[idx - 1]) < (log_sigma[idx] - target)
    return torch.where(lower_closer, idx - 1, idx)
