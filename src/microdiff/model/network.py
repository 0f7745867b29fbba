"""The U-Net: diffusers ``UNet2DModel`` built from a ``ModelConfig`` to equal improved-diffusion's."""
from __future__ import annotations

from ..config import ModelConfig


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
    in its source micrograph (``denoise.layout``); its output is the image's channels alone.
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


def build_unet(cfg: ModelConfig, num_classes: int):
    from diffusers import UNet2DModel
    return UNet2DModel(**unet_kwargs(cfg, num_classes))
