"""Noise schedule, forward process, posterior and the learned reverse variance.

Section 2.2 of the paper (after Nichol & Dhariwal, "Improved DDPM"), as pure tensor functions.
All tables are float64; they are gathered per timestep and cast to the data's dtype.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor


def linear_betas(timesteps: int) -> Tensor:
    """Linear beta schedule of improved-diffusion for any T (float64).

    beta_t runs linearly from 1e-4 * 1000/T to 0.02 * 1000/T, so T = 1000 is DDPM's schedule and
    T = 4000 (the paper, Table 2) gives 2.5e-5 ... 5e-3.
    """
    scale = 1000.0 / timesteps
    return torch.linspace(scale * 1e-4, scale * 0.02, timesteps, dtype=torch.float64)


def cosine_betas(timesteps: int, max_beta: float = 0.999) -> Tensor:
    """Cosine schedule of Nichol & Dhariwal (their eq. 17), offered beside the paper's linear one."""
    def f(t):
        return math.cos((t / timesteps + 0.008) / 1.008 * math.pi / 2) ** 2
    b = [min(1 - f(i + 1) / f(i), max_beta) for i in range(timesteps)]
    return torch.tensor(b, dtype=torch.float64)


def make_betas(schedule: str, timesteps: int) -> Tensor:
    if schedule == "linear":
        return linear_betas(timesteps)
    if schedule == "cosine":
        return cosine_betas(timesteps)
    raise ValueError(f"unknown noise schedule {schedule!r} (use 'linear' or 'cosine')")


@dataclass(frozen=True)
class Diffusion:
    """All per-timestep constants of a (possibly respaced) diffusion, float64, shape (T,).

    ``timestep_map[i]`` is the original-schedule timestep that respaced index i stands for and
    ``original_timesteps`` the original T; the network always sees original timesteps.
    """

    betas: Tensor
    timestep_map: Tensor
    original_timesteps: int

    @classmethod
    def from_betas(cls, betas: Tensor, timestep_map: Tensor | None = None,
                   original_timesteps: int | None = None) -> "Diffusion":
        betas = betas.to(torch.float64)
        if betas.ndim != 1 or not bool(((betas > 0) & (betas <= 1)).all()):
            raise ValueError("betas must be a 1-D tensor in (0, 1]")
        n = betas.shape[0]
        tmap = torch.arange(n) if timestep_map is None else timestep_map.to(torch.long)
        return cls(betas, tmap, original_timesteps or n)

    @classmethod
    def from_config(cls, schedule: str, timesteps: int) -> "Diffusion":
        return cls.from_betas(make_betas(schedule, timesteps))

    @property
    def num_timesteps(self) -> int:
        return self.betas.shape[0]

    # Eq. (6): alpha_t = 1 - beta_t, alpha-bar_t = prod_{s<=t} alpha_s
    @property
    def alphas(self) -> Tensor:
        return 1.0 - self.betas

    @property
    def alphas_cumprod(self) -> Tensor:
        return torch.cumprod(self.alphas, 0)

    @property
    def alphas_cumprod_prev(self) -> Tensor:
        return torch.cat([self.betas.new_ones(1), self.alphas_cumprod[:-1]])

    # Eq. (7): beta-tilde_t = (1 - alpha-bar_{t-1}) / (1 - alpha-bar_t) * beta_t
    @property
    def posterior_variance(self) -> Tensor:
        return self.betas * (1.0 - self.alphas_cumprod_prev) / (1.0 - self.alphas_cumprod)

    @property
    def posterior_log_variance_clipped(self) -> Tensor:
        """log beta-tilde_t with the t = 0 entry (which is 0) replaced by t = 1's, as in improved-DDPM."""
        v = self.posterior_variance
        return torch.log(torch.cat([v[1:2], v[1:]]))

    @property
    def posterior_mean_coef1(self) -> Tensor:
        return self.betas * torch.sqrt(self.alphas_cumprod_prev) / (1.0 - self.alphas_cumprod)

    @property
    def posterior_mean_coef2(self) -> Tensor:
        return (1.0 - self.alphas_cumprod_prev) * torch.sqrt(self.alphas) / (1.0 - self.alphas_cumprod)

    def timesteps_at(self, i: int, x: Tensor) -> Tensor:
        """The original-schedule timestep that respaced index ``i`` stands for, one per sample of
        the batch ``x``: what a denoiser is called with."""
        return self.timestep_map[i].to(x.device).expand(x.shape[0])


def extract(table: Tensor, t: Tensor, x: Tensor) -> Tensor:
    """Gather ``table[t]`` and broadcast it against a batch ``x`` of shape (B, ...)."""
    out = table.to(t.device)[t].to(x.dtype)
    return out.reshape(t.shape[0], *([1] * (x.ndim - 1)))


def q_sample(diffusion: Diffusion, x0: Tensor, t: Tensor, noise: Tensor) -> Tensor:
    """Sample q(x_t | x_0) = N(sqrt(alpha-bar_t) x_0, (1 - alpha-bar_t) I) (eqs. 1-2 in closed form)."""
    acp = diffusion.alphas_cumprod
    return extract(acp.sqrt(), t, x0) * x0 + extract((1 - acp).sqrt(), t, x0) * noise


def q_posterior(diffusion: Diffusion, x0: Tensor, xt: Tensor, t: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Mean, variance (eq. 7) and clipped log variance of q(x_{t-1} | x_t, x_0)."""
    mean = extract(diffusion.posterior_mean_coef1, t, xt) * x0 + extract(diffusion.posterior_mean_coef2, t, xt) * xt
    return (mean, extract(diffusion.posterior_variance, t, xt),
            extract(diffusion.posterior_log_variance_clipped, t, xt))


def predict_x0_from_eps(diffusion: Diffusion, xt: Tensor, t: Tensor, eps: Tensor) -> Tensor:
    acp = diffusion.alphas_cumprod
    return extract(torch.rsqrt(acp), t, xt) * xt - extract(torch.sqrt(1 / acp - 1), t, xt) * eps


def predict_eps_from_x0(diffusion: Diffusion, xt: Tensor, t: Tensor, x0: Tensor) -> Tensor:
    acp = diffusion.alphas_cumprod
    return (extract(torch.rsqrt(acp), t, xt) * xt - x0) / extract(torch.sqrt(1 / acp - 1), t, xt)


def learned_log_variance(diffusion: Diffusion, v: Tensor, t: Tensor) -> Tensor:
    """Eq. (5): log Sigma = f log beta_t + (1 - f) log beta-tilde_t.

    The network's raw variance output v lies in roughly [-1, 1]; as in improved-diffusion the
    interpolation weight is f = (v + 1) / 2 (the paper writes f as v_theta directly).
    """
    min_log = extract(diffusion.posterior_log_variance_clipped, t, v)
    max_log = extract(torch.log(diffusion.betas), t, v)
    frac = (v + 1) / 2
    return frac * max_log + (1 - frac) * min_log


def split_output(model_output: Tensor, channels: int) -> tuple[Tensor, Tensor | None]:
    """Split a network output into epsilon and the variance channels (None when Sigma is fixed)."""
    if model_output.shape[1] == 2 * channels:
        return model_output[:, :channels], model_output[:, channels:]
    if model_output.shape[1] == channels:
        return model_output, None
    raise ValueError(f"model output has {model_output.shape[1]} channels, expected {channels} or {2 * channels}")


def p_mean_variance(diffusion: Diffusion, pred_x0: Tensor, v: Tensor | None, xt: Tensor,
                    t: Tensor) -> tuple[Tensor, Tensor]:
    """Mean (eq. 4, through the predicted x_0 as improved-DDPM computes it: the posterior mean of
    eq. 7 at x_0 = pred_x0) and log variance (eq. 5; with no learned variance Sigma = beta-tilde_t,
    fixed small) of p_theta(x_{t-1} | x_t). ``t`` indexes ``diffusion`` (respaced indices on a
    respaced diffusion)."""
    if v is None:
        log_var = extract(diffusion.posterior_log_variance_clipped, t, xt).expand_as(xt)
    else:
        log_var = learned_log_variance(diffusion, v, t)
    mean, _, _ = q_posterior(diffusion, pred_x0, xt, t)
    return mean, log_var


def space_timesteps(num_timesteps: int, count: int) -> list[int]:
    """Evenly spaced subset of ``count`` timesteps, first and last kept (improved-diffusion's
    ``space_timesteps`` with one section; Python's round-half-even as there)."""
    if not 1 <= count <= num_timesteps:
        raise ValueError(f"cannot respace {num_timesteps} timesteps to {count} steps "
                         f"(choose 1..{num_timesteps})")
    if count == 1:
        return [0]
    stride = (num_timesteps - 1) / (count - 1)
    return sorted({round(i * stride) for i in range(count)})


def logsnr_timesteps(diffusion: Diffusion, count: int) -> list[int]:
    """``count`` distinct timesteps (0 and T-1 included) evenly spaced in log-SNR
    lambda_t = log(alpha-bar_t / (1 - alpha-bar_t)) / 2, each the nearest integer timestep.

    With a linear schedule, steps evenly spaced in t leave one huge log-SNR jump at the end
    (t = 42 -> 0 for T = 1000, K = 25), where a multistep ODE solver overshoots; log-SNR spacing
    is what DPM-Solver recommends for pixel-space models.
    """
    n = diffusion.num_timesteps
    if not 2 <= count <= n:
        return space_timesteps(n, count)
    acp = diffusion.alphas_cumprod
    lam = 0.5 * torch.log(acp / (1 - acp))            # decreasing in t
    targets = torch.linspace(float(lam[-1]), float(lam[0]), count, dtype=torch.float64)
    ts = sorted(int(torch.argmin((lam - v).abs())) for v in targets)
    for i in range(1, count):                         # make them distinct, keep 0 and n - 1
        ts[i] = max(ts[i], ts[i - 1] + 1)
    ts[-1] = n - 1
    for i in range(count - 2, -1, -1):
        ts[i] = min(ts[i], ts[i + 1] - 1)
    return ts


SPACINGS = ("uniform", "logsnr")


def respace(diffusion: Diffusion, count: int, spacing: str = "uniform") -> Diffusion:
    """A diffusion on ``count`` of the timesteps with betas recomputed from alpha-bar, so that
    alpha-bar at the kept steps is unchanged: beta'_i = 1 - alpha-bar_{t_i} / alpha-bar_{t_{i-1}}.

    ``spacing``: "uniform" (improved-diffusion's evenly spaced steps) or "logsnr".
    """
    if spacing == "uniform":
        keep = space_timesteps(diffusion.num_timesteps, count)
    elif spacing == "logsnr":
        keep = logsnr_timesteps(diffusion, count)
    else:
        raise ValueError(f"unknown timestep spacing {spacing!r}; choose one of {', '.join(SPACINGS)}")
    acp = diffusion.alphas_cumprod
    last = torch.tensor(1.0, dtype=torch.float64)
    betas = []
    for i in keep:
        betas.append(1 - acp[i] / last)
        last = acp[i]
    tmap = diffusion.timestep_map[torch.tensor(keep)]
    return Diffusion(torch.stack(betas), tmap, diffusion.original_timesteps)
