"""Guidance on the predicted x_0: a differentiable loss of x0_hat(x_t) steers every step.

``GradientGuidance`` is the gradient step of DPS (Chung et al. 2023) written on epsilon, as
universal guidance does (Bansal et al. 2023): with L(x0_hat) a per-sample loss,

    eps' = eps + scale * sigma_t * grad_{x_t} L(x0_hat(x_t))

(the score of p(target | x_t) ~ exp(-L) added to the denoiser's), so any sampler moves x_t
towards images whose predicted x_0 has a small loss; the gradient flows through the network
(and through window fusion on large or periodic canvases). With ``scale`` 0 it returns the
wrapped denoiser's output untouched.
"""
from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor

from .denoiser import DenoiserOutput, DenoiserWrapper

LossFn = Callable[[Tensor], Tensor]          # x0_hat (B, C, H, W) in [-1, 1] -> loss per sample (B,)


class GradientGuidance(DenoiserWrapper):
    """eps' = eps + scale * sigma_t * d L(x0_hat) / d x_t, the loss ``loss_fn`` per sample."""

    def __init__(self, inner, loss_fn: LossFn, scale: float):
        super().__init__(inner)
        self.loss_fn, self.scale = loss_fn, float(scale)
        self.last_loss: Tensor | None = None

    def __call__(self, x: Tensor, t: Tensor, y: Tensor) -> DenoiserOutput:
        if self.scale == 0:
            return self.inner(x, t, y)
        with torch.enable_grad():
            xg = x.detach().requires_grad_(True)
            out = self.inner(xg, t, y)
            loss = self.loss_fn(out.x0)
            (grad,) = torch.autograd.grad(loss.sum(), xg)
        self.last_loss = loss.detach()
        _, sigma = self.coefficients(t, x)
        eps = out.eps.detach() + self.scale * sigma * grad
        return self.output(x, t, eps, None if out.v is None else out.v.detach())


class X0Guidance(DenoiserWrapper):
    """Descent on the predicted x_0 itself (as DDS, Chung et al. 2024, does for inverse problems):
    ``iters`` normalised gradient steps x0 <- x0 - step * g / max|g| on the loss, epsilon made
    consistent with the new x_0. No gradient through the network; ``step`` 0 is the wrapped
    denoiser's output untouched."""

    def __init__(self, inner, loss_fn: LossFn, step: float, iters: int = 3, min_sigma: float = 0.0):
        super().__init__(inner)
        self.loss_fn, self.step, self.iters, self.min_sigma = loss_fn, float(step), int(iters), float(min_sigma)

    def __call__(self, x: Tensor, t: Tensor, y: Tensor) -> DenoiserOutput:
        out = self.inner(x, t, y)
        if self.step == 0 or float(self.coefficients(t, x)[1].min()) < self.min_sigma:
            return out
        x0 = out.x0.detach()
        for _ in range(self.iters):
            with torch.enable_grad():
                xg = x0.clone().requires_grad_(True)
                (grad,) = torch.autograd.grad(self.loss_fn(xg).sum(), xg)
            scale = grad.flatten(1).abs().amax(1).clamp_min(1e-12).view(-1, *[1] * (x.ndim - 1))
            x0 = (x0 - self.step * grad / scale).clamp(-1, 1)
        return self.output_from_x0(x, t, x0, None if out.v is None else out.v.detach())
