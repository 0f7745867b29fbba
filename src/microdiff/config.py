"""Settings as frozen dataclasses, with named presets.

Presets are data, not code paths: ``paper`` (Table 2 of the paper, improved-DDPM defaults
elsewhere) and ``cpu`` (a small 64x64 model that trains on a laptop CPU) differ only in
numbers. Nothing here imports torch, so ``microdiff --help`` stays fast.
"""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from .errors import ConfigError


@dataclass(frozen=True)
class ModelConfig:
    """The U-Net (diffusers ``UNet2DModel``), as in improved-diffusion.

    ``channel_mult`` multiplies ``base_channels`` per resolution level; ``attention_resolutions``
    are feature-map sizes (16 -> self-attention at 16x16), the middle block always attends.
    ``out_channels`` is 2 x ``image_channels`` when Sigma is learned (eq. 5).
    """

    image_size: int = 64
    image_channels: int = 1
    base_channels: int = 32
    channel_mult: tuple[int, ...] = (1, 2, 2)
    num_res_blocks: int = 1
    attention_resolutions: tuple[int, ...] = (16,)
    num_heads: int = 4
    norm_groups: int = 8             # GroupNorm groups; keep >= 4 channels per group (see model.unet_kwargs)
    dropout: float = 0.0
    learn_sigma: bool = True
    eps_skip_sigma: float = 0.0      # > 0: add the exact epsilon of N(0, sigma^2) data to the output (see model.eps_skip)

    @property
    def block_channels(self) -> tuple[int, ...]:
        return tuple(self.base_channels * m for m in self.channel_mult)


@dataclass(frozen=True)
class DiffusionConfig:
    """Forward process and loss (Sections 2.2-2.3)."""

    timesteps: int = 1000            # T
    schedule: str = "linear"         # improved-diffusion's linear schedule, scaled by 1000/T
    lambda_vlb: float = 0.001        # hybrid loss weight, improved-diffusion convention


@dataclass(frozen=True)
class TrainConfig:
    steps: int = 3000
    batch_size: int = 16
    lr: float = 1e-3
    warmup_steps: int = 200
    weight_decay: float = 0.0
    ema_decay: float = 0.999
    grad_clip: float = 1.0
    label_dropout: float = 0.1       # probability of the null class (classifier-free guidance)
    augment: str = "dihedral"        # "dihedral" (8 rotations/mirrors) or "none"
    seed: int = 0
    checkpoint_every: int = 500
    sample_every: int = 500
    log_every: int = 10
    grad_accum: int = 1              # micro-batches per step: per-device batch = batch_size / (processes x grad_accum)
    mixed_precision: str = "auto"    # "auto" = bf16 on CUDA, fp32 elsewhere; "no"; "bf16"
    compile: str = "auto"            # torch.compile the U-Net: "auto" = on CUDA only; "yes"; "no"
    channels_last: str = "auto"      # channels_last memory format: "auto" = on CUDA only; "yes"; "no"
    grad_checkpointing: bool = False # recompute activations in the backward pass (saves memory)
    audit_order: bool = False        # write the sample indices each process trains on (RUN/order/)


@dataclass(frozen=True)
class SampleConfig:
    sampler: str = "dpmpp"
    steps: int = 25
    guidance: float = 1.0
    batch_size: int = 32
    clip_denoised: bool = True


@dataclass(frozen=True)
class Config:
    model: ModelConfig = field(default_factory=ModelConfig)
    diffusion: DiffusionConfig = field(default_factory=DiffusionConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    sample: SampleConfig = field(default_factory=SampleConfig)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Config":
        parts = {}
        for f in fields(cls):
            sub_cls = f.default_factory  # type: ignore[misc]
            sub = d.get(f.name, {})
            unknown = set(sub) - {g.name for g in fields(sub_cls)}
            if unknown:
                raise ConfigError(f"unknown {f.name} setting(s): {', '.join(sorted(unknown))}")
            parts[f.name] = sub_cls(**{k: _coerce(sub_cls, k, v) for k, v in sub.items()})
        return cls(**parts)


PRESETS: dict[str, Config] = {
    # Table 2: num_channels 128, num_res_blocks 3, diffusion_steps 4000, learn_sigma, linear,
    # class_cond; improved-diffusion's 256x256 channel_mult (1,1,2,2,4,4), attention at 16x16,
    # lr 1e-4, EMA 0.9999, batch 8 (the paper's A100 run).
    "paper": Config(
        model=ModelConfig(image_size=256, base_channels=128, channel_mult=(1, 1, 2, 2, 4, 4),
                          num_res_blocks=3, attention_resolutions=(16,), num_heads=4, norm_groups=32),
        diffusion=DiffusionConfig(timesteps=4000),
        train=TrainConfig(steps=300_000, batch_size=8, lr=1e-4, warmup_steps=0, ema_decay=0.9999,
                          grad_clip=0.0, augment="none", checkpoint_every=10_000,
                          sample_every=10_000, log_every=100),
        sample=SampleConfig(sampler="ancestral", steps=4000, batch_size=16),
    ),
    # A 64x64 model for a 2-core CPU: the same model family and loss, smaller numbers, plus the
    # epsilon skip (model.eps_skip) that a network this small needs to get image brightness right.
    "cpu": Config(model=ModelConfig(eps_skip_sigma=0.5)),
}


def _coerce(cls, name: str, value: Any) -> Any:
    """Coerce a JSON/CLI value to the type of ``cls.name`` (tuples from lists or 'a,b')."""
    default = getattr(cls(), name)
    if isinstance(default, tuple):
        if isinstance(value, str):
            value = [v for v in value.replace("(", "").replace(")", "").split(",") if v.strip()]
        return tuple(type(default[0])(v) if default else int(v) for v in value)
    if isinstance(default, bool):
        if isinstance(value, str):
            if value.lower() in ("1", "true", "yes", "on"):
                return True
            if value.lower() in ("0", "false", "no", "off"):
                return False
            raise ConfigError(f"{name}: expected true/false, got {value!r}")
        return bool(value)
    if isinstance(default, (int, float)) and isinstance(value, str):
        return type(default)(float(value)) if isinstance(default, int) else float(value)
    if isinstance(default, int) and isinstance(value, float):
        if value != int(value):
            raise ConfigError(f"{name}: expected an integer, got {value}")
        return int(value)
    return value


def get_preset(name: str) -> Config:
    try:
        return PRESETS[name]
    except KeyError:
        raise ConfigError(f"unknown preset {name!r}; choose one of: {', '.join(PRESETS)}") from None


def apply_overrides(cfg: Config, overrides: list[str]) -> Config:
    """Return a new config with ``section.key=value`` (or unique ``key=value``) overrides."""
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"--set expects key=value, got {item!r}")
        key, value = item.split("=", 1)
        key = key.strip()
        if "." in key:
            section, name = key.split(".", 1)
        else:
            owners = [f.name for f in fields(cfg) if name_in(getattr(cfg, f.name), key)]
            if len(owners) != 1:
                where = " and ".join(owners) if owners else "no section"
                raise ConfigError(f"setting {key!r} is in {where}; write section.{key}")
            section, name = owners[0], key
        if not hasattr(cfg, section) or not name_in(getattr(cfg, section), name):
            raise ConfigError(f"unknown setting {key!r}")
        sub = getattr(cfg, section)
        cfg = replace(cfg, **{section: replace(sub, **{name: _coerce(type(sub), name, value)})})
    return cfg


def name_in(obj: Any, name: str) -> bool:
    return name in {f.name for f in fields(obj)}


def load_config(preset: str = "cpu", config_file: str | Path | None = None,
                overrides: list[str] | None = None) -> Config:
    """Preset, then a JSON file (partial, same nesting as ``Config.to_dict``), then overrides."""
    cfg = get_preset(preset)
    if config_file is not None:
        path = Path(config_file)
        try:
            data = json.loads(path.read_text())
        except FileNotFoundError:
            raise ConfigError(f"config file {path} does not exist") from None
        except json.JSONDecodeError as e:
            raise ConfigError(f"config file {path} is not valid JSON: {e}") from None
        merged = cfg.to_dict()
        for section, values in data.items():
            if section not in merged:
                raise ConfigError(f"{path}: unknown section {section!r}")
            merged[section].update(values)
        cfg = Config.from_dict(merged)
    return apply_overrides(cfg, overrides or [])
