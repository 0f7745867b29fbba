"""The U-Net (diffusers ``UNet2DModel``) built from a ``ModelConfig``, and the saved pipeline.

A model directory is a diffusers pipeline folder::

    model/model_index.json          (diffusers) pipeline class and components
    model/unet/                     UNet2DModel config + safetensors weights
    model/scheduler/                DDPMScheduler (learned-range variance, the same betas)
    model/microdiff.json            microdiff's full config and the class names

``MicrodiffPipeline.from_pretrained(dir)`` loads it in one line; a plain diffusers user gets the
network with ``UNet2DModel.from_pretrained(dir, subfolder="unet")``.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

import torch
from torch import Tensor

from .config import Config, ModelConfig

MICRODIFF_JSON = "microdiff.json"


class ModelDirError(ValueError):
    """A model directory that is missing, incomplete or corrupt."""


def unet_kwargs(cfg: ModelConfig, num_classes: int) -> dict:
    """UNet2DModel arguments equal to improved-diffusion's U-Net for ``cfg``.

    Scale-shift norm, the class embedding added to the time embedding (``num_classes + 1``
    embeddings: the last is the null class of classifier-free guidance), attention at the levels
    whose feature map size is in ``attention_resolutions`` and in the middle block, the same
    group norm in the attention blocks (32 groups in the paper preset, as improved-diffusion).

    With one channel per group GroupNorm becomes an instance norm, which removes each channel's
    spatial mean, including the final one before the output convolution: the network then can
    hardly predict the image-wide (DC) part of epsilon, and samples drift in global brightness
    (seen with 32 groups on 32 channels). Hence at least 4 channels per group are required.
    """
    levels = len(cfg.channel_mult)
    sizes = [cfg.image_size // 2 ** i for i in range(levels)]
    attn = [s in cfg.attention_resolutions for s in sizes]
    if cfg.image_size % 2 ** (levels - 1):
        raise ValueError(f"image_size {cfg.image_size} is not divisible by 2^{levels - 1}")
    chans = cfg.block_channels
    if any(c % cfg.norm_groups or c // cfg.norm_groups < 4 for c in chans):
        raise ValueError(f"every block's channel count must be a multiple of norm_groups={cfg.norm_groups} "
                         "with at least 4 channels per group")
    head_dim = chans[-1] // cfg.num_heads
    return dict(
        sample_size=cfg.image_size,
        in_channels=cfg.image_channels,
        out_channels=cfg.image_channels * (2 if cfg.learn_sigma else 1),
        layers_per_block=cfg.num_res_blocks,
        block_out_channels=chans,
        down_block_types=tuple("AttnDownBlock2D" if a else "DownBlock2D" for a in attn),
        up_block_types=tuple("AttnUpBlock2D" if a else "UpBlock2D" for a in reversed(attn)),
        resnet_time_scale_shift="scale_shift",
        num_class_embeds=num_classes + 1,
        norm_num_groups=cfg.norm_groups,
        attn_norm_num_groups=cfg.norm_groups,
        attention_head_dim=head_dim,
        dropout=cfg.dropout,
        flip_sin_to_cos=True,
        freq_shift=0,
    )


def build_unet(cfg: ModelConfig, num_classes: int):
    from diffusers import UNet2DModel
    return UNet2DModel(**unet_kwargs(cfg, num_classes))


def eps_skip(x: Tensor, alpha_bar: Tensor, sigma_data: float) -> Tensor:
    """The exact E[eps | x_t] if the data were N(0, sigma_data^2) per pixel:
    sqrt(1 - a) x_t / (a sigma_data^2 + 1 - a), a = alpha-bar_t (cf. EDM's c_skip).

    Added to the network's epsilon output (``model.eps_skip_sigma > 0``), it gives the network
    the identity path that epsilon-prediction needs at low SNR, where the image-wide (DC) part of
    the prediction must equal that of x_t almost exactly: an error d there becomes an error of
    d sqrt((1 - a) / a) (x160 at t = T for T = 1000) in the predicted image. Measured on the cpu
    preset after 1000 steps without it: the network reproduced ~20 % of the noise's DC and the
    brightness of a sample correlated 0.98 with the mean of its initial noise.
    """
    a = alpha_bar.to(device=x.device, dtype=torch.float64)
    c = torch.sqrt(1 - a) / (a * sigma_data ** 2 + 1 - a)
    return c.to(x.dtype).view(-1, *[1] * (x.ndim - 1)) * x


def unet_forward(unet, x: Tensor, tau: Tensor, labels: Tensor, alpha_bar: Tensor | None = None,
                 sigma_data: float = 0.0) -> Tensor:
    """The network as the samplers and the loss see it: output (B, 2C, H, W); with
    ``sigma_data > 0`` the epsilon channels get ``eps_skip`` added (needs ``alpha_bar`` per sample)."""
    out = unet(x, tau, class_labels=labels).sample
    if sigma_data > 0:
        c = x.shape[1]
        out = torch.cat([out[:, :c] + eps_skip(x, alpha_bar, sigma_data), out[:, c:]], dim=1)
    return out


def _scheduler_for(config: Config):
    from diffusers import DDPMScheduler

    from .diffusion import make_betas
    betas = make_betas(config.diffusion.schedule, config.diffusion.timesteps)
    return DDPMScheduler(num_train_timesteps=config.diffusion.timesteps,
                         trained_betas=betas.tolist(), variance_type="learned_range",
                         clip_sample=True, prediction_type="epsilon")


def _make_pipeline_class():
    from diffusers import DiffusionPipeline

    class MicrodiffPipeline(DiffusionPipeline):
        """Class-conditional improved DDPM. ``pipe(["FVC40"], num=4, steps=25)`` -> float images in [0, 1]."""

        model_cpu_offload_seq = "unet"

        def __init__(self, unet, scheduler):
            super().__init__()
            self.register_modules(unet=unet, scheduler=scheduler)
            self.microdiff_config: Config | None = None
            self.class_names: list[str] = []

        @classmethod
        def create(cls, config: Config, class_names: Sequence[str]) -> "MicrodiffPipeline":
            pipe = cls(unet=build_unet(config.model, len(class_names)), scheduler=_scheduler_for(config))
            pipe.microdiff_config = config
            pipe.class_names = list(class_names)
            return pipe

        def save_pretrained(self, save_directory, **kwargs):
            super().save_pretrained(save_directory, safe_serialization=True, **kwargs)
            meta = {"class_names": self.class_names, "config": self.microdiff_config.to_dict()}
            (Path(save_directory) / MICRODIFF_JSON).write_text(json.dumps(meta, indent=2))

        @classmethod
        def from_pretrained(cls, pretrained_model_name_or_path, **kwargs):
            path = Path(pretrained_model_name_or_path)
            meta_path = path / MICRODIFF_JSON
            if not meta_path.is_file():
                raise ModelDirError(f"{path} is not a microdiff model directory (no {MICRODIFF_JSON}); "
                                    "point --model at RUN/model written by `microdiff train`")
            try:
                meta = json.loads(meta_path.read_text())
                config = Config.from_dict(meta["config"])
                names = list(meta["class_names"])
            except (json.JSONDecodeError, KeyError, TypeError, ValueError) as e:
                raise ModelDirError(f"{meta_path} is corrupt ({e}); re-export the model") from None
            from diffusers import DDPMScheduler, UNet2DModel
            try:   # the two components directly: no progress bar, clear errors
                unet = UNet2DModel.from_pretrained(str(path), subfolder="unet", **kwargs)
                scheduler = DDPMScheduler.from_pretrained(str(path), subfolder="scheduler")
            except Exception as e:  # diffusers raises many kinds for missing or truncated files
                raise ModelDirError(f"cannot load the model in {path} ({type(e).__name__}: {e}); "
                                    "re-export it or retrain") from None
            pipe = cls(unet=unet, scheduler=scheduler)
            pipe.microdiff_config = config
            pipe.class_names = names
            return pipe

        def class_index(self, name: str) -> int:
            if name not in self.class_names:
                raise ValueError(f"class {name!r} is not in this model; it knows: {', '.join(self.class_names)}")
            return self.class_names.index(name)

        @torch.no_grad()
        def __call__(self, class_names: Sequence[str], num: int = 1, steps: int | None = None,
                     sampler: str | None = None, guidance: float | None = None, seed: int = 0):
            from .sample import generate, sample_seed
            labels = [self.class_index(n) for n in class_names for _ in range(num)]
            seeds = [sample_seed(seed, self.class_index(n), i) for n in class_names for i in range(num)]
            s = self.microdiff_config.sample
            return generate(self, labels, seeds, steps or s.steps, sampler or s.sampler,
                            s.guidance if guidance is None else guidance)

    MicrodiffPipeline.__module__ = __name__
    return MicrodiffPipeline


_PIPELINE_CLS = None


def __getattr__(name):  # lazy: diffusers is imported only when the pipeline is used
    global _PIPELINE_CLS
    if name == "MicrodiffPipeline":
        if _PIPELINE_CLS is None:
            _PIPELINE_CLS = _make_pipeline_class()
        return _PIPELINE_CLS
    raise AttributeError(name)


def load_pipeline(path: str | Path, device: str | torch.device = "cpu"):
    """Load a model directory, with a clear error when it is missing or corrupt."""
    path = Path(path)
    if not path.exists():
        raise ModelDirError(f"model directory {path} does not exist; train one with `microdiff train`")
    from . import model as _m
    pipe = _m.MicrodiffPipeline.from_pretrained(path)
    if pipe.unet.dtype != torch.float32:   # weights may be stored in half precision (the demo model)
        pipe.unet.to(torch.float32)
    return pipe.to(device)


def save_half(src: str | Path, dst: str | Path) -> Path:
    """Copy a model folder with the U-Net weights stored in float16 (half the size; loaded back
    as float32). How the shipped demo model is made from ``RUN/model``."""
    pipe = load_pipeline(src)
    pipe.unet.to(torch.float16)
    dst = Path(dst)
    pipe.save_pretrained(dst)
    return dst
