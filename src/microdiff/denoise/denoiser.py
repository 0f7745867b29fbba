"""The network as a denoiser: the one seam that the training loss and every sampler call.

    den = Denoiser.from_config(unet, config, num_classes)
    out = den(x_t, t, y)   # t: original-schedule timesteps, long (B,); y: class labels (B,)
                           # (a layout model: labels and where each window lies, ``layout``)
    out.eps, out.x0, out.v # predicted noise, predicted clean image, variance channels (or None)

It owns everything between "a network" and "a denoiser": the network's time input (t x 1000/T,
improved-diffusion's convention), the epsilon skip, the split of the output into epsilon and
the variance channels, and the x_0 / epsilon conversions at the exact alpha-bar_t. A sampler on
a respaced schedule maps its index to t with ``Diffusion.timesteps_at``.

Wrappers take a denoiser and return one with the same call and fields (``DenoiserWrapper``):
classifier-free guidance here; windows, periodic canvases, masks, volumes and guidance in the
other modules of ``denoise``, composed by ``stack.build_denoiser``. ``GaussianDenoiser`` is the
exact denoiser of Gaussian data, the analytic reference the tests sample with.
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Callable, Sequence

import torch
from torch import Tensor

from ..diffusion.schedule import Diffusion, predict_eps_from_x0, predict_x0_from_eps, split_output
from .layout import coordinate_maps, is_layout, labels_of, network_condition, with_labels


@dataclass(frozen=True)
class DenoiserOutput:
    eps: Tensor              # predicted noise
    x0: Tensor               # predicted clean image (not clipped)
    v: Tensor | None = None  # raw variance channels of eq. 5 (None when Sigma is fixed)


def gaussian_eps(x: Tensor, alpha_bar: Tensor, mean: float | Tensor = 0.0, std: float = 1.0) -> Tensor:
    """E[eps | x_t] when every pixel of the data is N(mean, std^2):
    sqrt(1 - a)(x_t - sqrt(a) mean) / (a std^2 + 1 - a), a = alpha-bar_t per sample (B,).

    With mean 0 it is the epsilon skip (``model.eps_skip_sigma``, cf. EDM's c_skip): added to
    the network's output it gives the identity path that epsilon-prediction needs at low SNR,
    where the image-wide (DC) part of the prediction must equal that of x_t almost exactly (an
    error d there becomes d sqrt((1 - a) / a), x160 at t = T for T = 1000, in x_0). Without it
    the small cpu network reproduced only part of the noise's DC, and its samples' brightness
    followed the mean of their initial noise (README, presets).
    """
    a = alpha_bar.to(device=x.device, dtype=torch.float64)
    shape = (-1, *[1] * (x.ndim - 1))
    c = (torch.sqrt(1 - a) / (a * std ** 2 + 1 - a)).to(x.dtype).view(shape)
    if isinstance(mean, (int, float)) and mean == 0:
        return c * x
    shift = torch.sqrt(a).to(x.dtype).view(shape) * torch.as_tensor(mean, dtype=x.dtype, device=x.device)
    return c * (x - shift)


class DenoiserBase:
    """The schedule and the x_0 / epsilon conversions that every denoiser shares."""

    diffusion: Diffusion
    channels: int

    def alpha_bar(self, t: Tensor) -> Tensor:
        return self.diffusion.alphas_cumprod.to(t.device)[t]

    def predict_x0(self, x: Tensor, t: Tensor, eps: Tensor) -> Tensor:
        return predict_x0_from_eps(self.diffusion, x, t, eps)

    def predict_eps(self, x: Tensor, t: Tensor, x0: Tensor) -> Tensor:
        return predict_eps_from_x0(self.diffusion, x, t, x0)

    def output(self, x: Tensor, t: Tensor, eps: Tensor, v: Tensor | None = None) -> DenoiserOutput:
        return DenoiserOutput(eps, self.predict_x0(x, t, eps), v)

    def output_from_x0(self, x: Tensor, t: Tensor, x0: Tensor, v: Tensor | None = None) -> DenoiserOutput:
        return DenoiserOutput(self.predict_eps(x, t, x0), x0, v)

    def coefficients(self, t: Tensor, x: Tensor) -> tuple[Tensor, Tensor]:
        """alpha_t = sqrt(alpha-bar_t) and sigma_t = sqrt(1 - alpha-bar_t), shaped to broadcast against x."""
        a = self.alpha_bar(t).to(torch.float64)
        shape = (-1, *[1] * (x.ndim - 1))
        return a.sqrt().to(x.dtype).view(shape), (1 - a).sqrt().to(x.dtype).view(shape)


class Denoiser(DenoiserBase):
    """A class-conditional network (diffusers ``UNet2DModel`` or anything with its call) as a
    denoiser on images of its training size.

    ``prediction`` is what the network outputs (the recipe's): ``eps``; ``v`` = alpha eps - sigma x_0
    (x_0 = alpha x_t - sigma v); or ``edm``: EDM's preconditioning in variance-preserving form,
    with s = sigma / alpha the noise level of x_t / alpha: the network sees
    x_t / (alpha sqrt(s^2 + sigma_data^2)) and x_0 = c_skip x_t / alpha + c_out F with
    c_skip = sigma_data^2 / (s^2 + sigma_data^2), c_out = s sigma_data / sqrt(s^2 + sigma_data^2).
    """

    def __init__(self, net, diffusion: Diffusion, channels: int = 1, eps_skip_sigma: float = 0.0,
                 null_label: int | None = None, image_size: int | None = None,
                 autocast: Callable[[], contextlib.AbstractContextManager] | None = None,
                 dtype: torch.dtype | None = None, prediction: str = "eps", sigma_data: float = 0.5):
        self.net, self.diffusion, self.channels = net, diffusion, channels
        self.eps_skip_sigma = eps_skip_sigma
        self.null_label, self.image_size = null_label, image_size
        self.autocast = autocast or contextlib.nullcontext
        self.dtype = dtype
        self.prediction, self.sigma_data = prediction, sigma_data

    @classmethod
    def from_config(cls, net, config, num_classes: int, **kwargs) -> "Denoiser":
        diffusion = Diffusion.from_config(config.diffusion.schedule, config.diffusion.timesteps)
        m, r = config.model, config.diffusion.recipe_spec
        return cls(net, diffusion, m.image_channels, m.eps_skip_sigma, num_classes, m.image_size, **kwargs,
                   prediction=r.prediction, sigma_data=r.sigma_data)

    def network_time(self, t: Tensor) -> Tensor:
        """The network's time input: the original timestep scaled to [0, 1000)."""
        return t.to(torch.float32) * (1000.0 / self.diffusion.num_timesteps)

    def _edm(self, t: Tensor, x: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """(1 / alpha, c_in, c_skip, c_out) of EDM's preconditioning at t."""
        alpha, sigma = self.coefficients(t, x)
        s, sd = sigma / alpha, self.sigma_data
        root = torch.sqrt(s ** 2 + sd ** 2)
        return 1 / alpha, 1 / root, sd ** 2 / root ** 2, s * sd / root

    def __call__(self, x: Tensor, t: Tensor, y: Tensor) -> DenoiserOutput:
        xin = x if self.dtype is None else x.to(self.dtype)
        if self.prediction == "edm":
            inv_alpha, c_in, c_skip, c_out = self._edm(t, x)
            xin = xin * (inv_alpha * c_in).to(xin.dtype)
        net_in, labels = xin, labels_of(y)
        if is_layout(y):                      # a layout model: the coordinate channels after the image's
            maps = coordinate_maps(y, *x.shape[-2:])
            net_in, labels = torch.cat([xin, maps.to(xin.dtype)], 1), network_condition(y, maps)
        with self.autocast():
            raw = self.net(net_in, self.network_time(t), class_labels=labels).sample
        main, v = split_output(raw, self.channels)
        v = None if v is None else v.to(x.dtype)
        if self.prediction == "eps":
            if self.eps_skip_sigma > 0:
                main = main + gaussian_eps(xin, self.alpha_bar(t), 0.0, self.eps_skip_sigma)
            return self.output(x, t, main.to(x.dtype), v)
        main = main.to(x.dtype)
        if self.prediction == "v":
            alpha, sigma = self.coefficients(t, x)
            return self.output_from_x0(x, t, alpha * x - sigma * main, v)
        return self.output_from_x0(x, t, c_skip * inv_alpha * x + c_out * main, v)


class GaussianDenoiser(DenoiserBase):
    """The exact denoiser of data whose pixels are i.i.d. N(mean_y, std^2): an analytic "model"
    (``mean`` a number, or one per class label). ``variance`` adds constant variance channels
    (v = 1: Sigma = beta_t; v = -1: Sigma = beta-tilde_t)."""

    def __init__(self, diffusion: Diffusion, mean: float | Sequence[float] = 0.0, std: float = 1.0,
                 channels: int = 1, variance: float | None = None, image_size: int | None = None):
        self.diffusion, self.channels, self.image_size = diffusion, channels, image_size
        self.mean, self.std, self.variance = mean, std, variance
        self.null_label = len(mean) - 1 if isinstance(mean, Sequence) else None

    def __call__(self, x: Tensor, t: Tensor, y: Tensor | None = None) -> DenoiserOutput:
        m = self.mean
        if isinstance(m, Sequence):
            m = torch.as_tensor(m, dtype=x.dtype, device=x.device)[y].view(-1, *[1] * (x.ndim - 1))
        eps = gaussian_eps(x, self.alpha_bar(t), m, self.std)
        v = None if self.variance is None else torch.full_like(x, self.variance)
        return self.output(x, t, eps, v)


class DenoiserWrapper(DenoiserBase):
    """Base of wrappers: the schedule, conversions and attributes are the wrapped denoiser's."""

    def __init__(self, inner):
        self.inner = inner

    def __getattr__(self, name):
        if name == "inner":
            raise AttributeError(name)
        return getattr(self.inner, name)


class ClassifierFreeGuidance(DenoiserWrapper):
    """eps = eps(x, null) + scale (eps(x, y) - eps(x, null)) (Ho & Salimans 2021); the variance
    channels come from the conditional pass. Both passes run as one batch; ``scale == 1`` is
    plain conditional denoising and costs one pass."""

    def __init__(self, inner, scale: float, null_label: int | None = None):
        super().__init__(inner)
        self.scale = float(scale)
        self.guide_label = inner.null_label if null_label is None else null_label

    def __call__(self, x: Tensor, t: Tensor, y: Tensor) -> DenoiserOutput:
        if self.scale == 1.0:
            return self.inner(x, t, y)
        null = with_labels(y, self.guide_label)
        out = self.inner(torch.cat([x, x]), torch.cat([t, t]), torch.cat([y, null]))
        n = x.shape[0]
        cond, uncond = out.eps[:n], out.eps[n:]
        eps = uncond + self.scale * (cond - uncond)
        return self.output(x, t, eps, None if out.v is None else out.v[:n])


def classifier_free_guidance(denoiser, scale: float, null_label: int | None = None) -> ClassifierFreeGuidance:
    return ClassifierFreeGuidance(denoiser, scale, null_label)


def inference_denoiser(net, config, num_classes: int) -> Denoiser:
    """The network in eval mode as a denoiser; bf16 autocast on a CUDA device."""
    net = net.eval()
    param = next(net.parameters())
    autocast = None
    if param.device.type == "cuda":
        autocast = lambda: torch.autocast("cuda", dtype=torch.bfloat16)  # noqa: E731
    return Denoiser.from_config(net, config, num_classes, autocast=autocast, dtype=param.dtype)


def bind_labels(denoiser, labels: Tensor) -> Callable[[Tensor, Tensor], DenoiserOutput]:
    """The sampler's view of a denoiser: ``model(x, t)`` with the class labels fixed."""
    return lambda x, t: denoiser(x, t, labels)
