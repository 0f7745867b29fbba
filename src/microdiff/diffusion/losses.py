"""The hybrid loss L_simple + lambda * L_vlb of improved-DDPM (Section 2.3)."""
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
