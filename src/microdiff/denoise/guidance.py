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
from .layout import labels_of, with_labels

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


def bracket_weights(values: Tensor, target: float, reach: float = 1.0) -> Tensor:
    """Mixture weights (K, B) over K candidates for each of B samples: the two candidates whose
    ``values`` (K, B) bracket ``target`` most closely, interpolated linearly so that the weighted
    value equals the target. Beyond all candidates the two nearest are extrapolated, up to
    ``reach`` times their spacing beyond the last (0: all weight on the nearest one); one
    candidate takes all weight."""
    k = values.shape[0]
    vs, order = values.sort(dim=0)
    j = (vs < target).sum(0, keepdim=True)                           # candidates below the target
    lo = (j - 1).clamp(0, max(k - 2, 0))
    hi = (lo + 1).clamp(max=k - 1)
    vlo, vhi = vs.gather(0, lo), vs.gather(0, hi)
    a = torch.where(hi == lo, torch.zeros_like(vlo), (target - vlo) / (vhi - vlo).clamp_min(1e-12))
    a = a.clamp(-reach, 1 + reach)
    w_sorted = torch.zeros_like(vs).scatter_add(0, lo, 1 - a).scatter_add(0, hi, a)
    return torch.zeros_like(vs).scatter(0, order, w_sorted)


class ClassMixture(DenoiserWrapper):
    """Class interpolation towards a target measure of x0_hat (the path of ``--target-mix``).

    Every call denoises each sample as each of ``labels`` (and as its own class when that is not
    among them), measures each prediction with ``measure`` (x0_hat (N, C, H, W) -> (N,)), and
    returns the mixture of the candidates' epsilons with ``bracket_weights``: the two classes
    whose predictions straddle ``target``, weighted so that the measure interpolates to it. The
    model's own classes then move the structure (for fibers: how many fibers, not how thick), so
    the sample stays on what the model learned; outside the classes' range the two outermost are
    extrapolated, up to ``reach`` class spacings. ``last_weights`` (B, K) and ``candidates``
    record the last call. Costs K network passes per step (one class: the denoiser itself).
    """

    def __init__(self, inner, labels, measure: Callable[[Tensor], Tensor], target: float, reach: float = 1.0):
        super().__init__(inner)
        self.labels, self.measure, self.target = tuple(int(k) for k in labels), measure, float(target)
        self.reach = float(reach)
        self.last_weights: Tensor | None = None
        self.candidates: Tensor | None = None

    def __call__(self, x: Tensor, t: Tensor, y: Tensor) -> DenoiserOutput:
        mix = torch.tensor(self.labels, device=y.device)
        cand = [with_labels(y, k) for k in self.labels]
        if not bool(torch.isin(labels_of(y), mix).all()):
            cand = [y] + cand
        k, b = len(cand), x.shape[0]
        if k == 1:
            self.last_weights, self.candidates = torch.ones(b, 1, dtype=x.dtype), labels_of(y)[:, None]
            return self.inner(x, t, y)
        out = self.inner(torch.cat([x] * k), torch.cat([t] * k), torch.cat(cand))
        w = bracket_weights(self.measure(out.x0.detach()).view(k, b).to(torch.float64), self.target, self.reach)
        w = w.to(x.dtype).view(k, b, *[1] * (x.ndim - 1))

        def mixed(f: Tensor) -> Tensor:
            return (w * f.view(k, b, *f.shape[1:])).sum(0)
        self.last_weights, self.candidates = w.view(k, b).T, torch.stack([labels_of(c) for c in cand], 1)
        return self.output(x, t, mixed(out.eps), None if out.v is None else mixed(out.v))
