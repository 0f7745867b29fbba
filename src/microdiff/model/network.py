"""The U-Net: diffusers ``UNet2DModel`` built from a ``ModelConfig`` to equal improved-diffusion's."""
from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from ..config import ModelConfig

FRAME_NUMBERS = 6           # a window's frame in its source (denoise.layout.window_frame)
FRAME_FREQUENCIES = 6       # Fourier features pi * 2^k, k < 6: the finest period is 1/32 of the source


def unet_kwargs(cfg: ModelConfig, num_classes: int) -> dict:
    """UNet2DModel arguments equal to improved-diffusion's U-Net for ``cfg``.

    Scale-shift norm, the class embedding added to the time embedding (``num_classes + 1``
    embeddings: the last is the null class of classifier-free guidance), attention at the levels
    whose feature map size is in ``attention_resolutions`` and in the middle block, the same
    group norm in the attention blocks (32 groups in the paper preset, as improved-diffusion).

    With one channel per group GroupNorm becomes an instance norm, which removes each channel's
    spatial mean, including the final one before the output convolution: the network then can
    hardly predict the image-wide (DC) part of epsilon, and samples drift in global brightness
    (seen with 32 groups on 32 channels). Hence ``ModelConfig`` requires at least 4 channels per group.

    A layout model (``cfg.layout``) reads two more input channels: the coordinates of each pixel
    in its source micrograph (``denoise.layout``); its output is the image's channels alone. Its
    class embedding is a ``RegionEmbedding`` (``build_unet`` installs it).
    """
    levels = len(cfg.channel_mult)
    sizes = [cfg.image_size // 2 ** i for i in range(levels)]
    attn = [s in cfg.attention_resolutions for s in sizes]
    chans = cfg.block_channels                  # ModelConfig checked divisibility and groups
    head_dim = chans[-1] // cfg.num_heads
    return dict(
        sample_size=cfg.image_size,
        in_channels=cfg.image_channels + (2 if cfg.layout else 0),    # a layout model's coordinate channels
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


class RegionEmbedding(nn.Module):
    """A layout model's class embedding: the class label's, plus an embedding of where the window
    lies in its source.

    It takes (B, 1 + ``FRAME_NUMBERS``) float rows, the class label and the window's frame
    (``denoise.layout.window_frame``: the source coordinates of its first pixel and their change
    down its rows and across its columns). The frame enters with the time embedding, through the
    scale and shift of every residual block, so each block knows the window's place exactly; the
    coordinate channels of the input alone reach the blocks only through their group norms, which
    remove each window's mean and scale it by its content's spread. Fourier features (periods down
    to 1/32 of the source) let a small MLP place an edge to about a pixel. The MLP's last layer
    starts at zero: an untrained layout model is the plain class-conditional one.
    """

    def __init__(self, num_embeds: int, dim: int):
        super().__init__()
        self.labels = nn.Embedding(num_embeds, dim)
        self.register_buffer("frequencies", math.pi * 2.0 ** torch.arange(FRAME_FREQUENCIES, dtype=torch.float32),
                             persistent=False)
        self.frame = nn.Sequential(nn.Linear(FRAME_NUMBERS * (1 + 2 * FRAME_FREQUENCIES), dim), nn.SiLU(),
                                   nn.Linear(dim, dim))
        nn.init.zeros_(self.frame[-1].weight)
        nn.init.zeros_(self.frame[-1].bias)

    def forward(self, y: Tensor) -> Tensor:
        if y.ndim != 2 or y.shape[1] != 1 + FRAME_NUMBERS:
            raise ValueError(f"a layout model's condition is (B, {1 + FRAME_NUMBERS}) rows, got {tuple(y.shape)}")
        frame = y[:, 1:].to(self.frequencies.dtype)
        angles = (frame[..., None] * self.frequencies).flatten(1)
        features = torch.cat([frame, angles.sin(), angles.cos()], 1).to(self.frame[0].weight.dtype)
        return self.labels(y[:, 0].round().long()) + self.frame(features)


def build_unet(cfg: ModelConfig, num_classes: int):
    """The U-Net of ``cfg``, freshly initialised; a layout model's with its ``RegionEmbedding``."""
    from diffusers import UNet2DModel
    unet = UNet2DModel(**unet_kwargs(cfg, num_classes))
    if cfg.layout:
        unet.class_embedding = RegionEmbedding(num_classes + 1, unet.class_embedding.embedding_dim)
    return unet
