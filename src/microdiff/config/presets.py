"""Named presets, and configs from a preset, a JSON file and ``KEY=VALUE`` overrides.

Presets are data, not code paths: ``paper`` (Table 2 of the paper, improved-DDPM defaults
elsewhere) and ``cpu`` (a small 64x64 model that trains on a laptop CPU) differ only in numbers.
"""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from ..core.errors import ConfigError, setting
from .settings import Config, DiffusionConfig, ModelConfig, SampleConfig, TrainConfig


# Table 2: num_channels 128, num_res_blocks 3, diffusion_steps 4000, learn_sigma, linear,
# class_cond; improved-diffusion's 256x256 channel_mult (1,1,2,2,4,4), attention at 16x16,
# lr 1e-4, EMA 0.9999, batch 8 (the paper's A100 run).
_PAPER = Config(
    model=ModelConfig(image_size=256, base_channels=128, channel_mult=(1, 1, 2, 2, 4, 4),
                      num_res_blocks=3, attention_resolutions=(16,), num_heads=4, norm_groups=32),
    diffusion=DiffusionConfig(timesteps=4000),
    train=TrainConfig(steps=300_000, batch_size=8, lr=1e-4, warmup_steps=0, ema_decay=0.9999,
                      grad_clip=0.0, augment="none", checkpoint_every=10_000,
                      sample_every=10_000, log_every=100),
    sample=SampleConfig(sampler="ancestral", steps=4000, batch_size=16),
)

PRESETS: dict[str, Config] = {
    "paper": _PAPER,
    # Table 2's network, schedule and training settings with the EDM recipe (at equal compute it
    # beat the paper's recipe on fiber and UHCS data, BENCHMARKS.md); no learned Sigma, DPM-Solver++.
    "paper-edm": dataclasses.replace(
        _PAPER, model=dataclasses.replace(_PAPER.model, learn_sigma=False),
        diffusion=dataclasses.replace(_PAPER.diffusion, recipe="edm"),
        sample=dataclasses.replace(_PAPER.sample, sampler="dpmpp", steps=25)),
    # A 64x64 model for a 2-core CPU: the same U-Net family, smaller numbers, trained with the
    # EDM recipe (preconditioning, log-normal noise levels, no learned Sigma).
    "cpu": Config(model=ModelConfig(learn_sigma=False), diffusion=DiffusionConfig(recipe="edm")),
    # The `cpu` network with the paper's recipe (epsilon, hybrid loss, learned Sigma) and the
    # epsilon skip that a network this small needs for it to get image brightness right.
    "cpu-paper": Config(model=ModelConfig(eps_skip_sigma=0.5)),
}

# What a layout model (model.layout) trains with besides its preset, as overrides that --set can
# undo: the learning rate falls to 0 along a cosine, so that the last weights, and their EMA, agree
# on where the layers lie; and training noise shifted up, where a layer's place is decided
# (BENCHMARKS.md, layout). `train --layout` applies them.
LAYOUT_OVERRIDES: tuple[str, ...] = ("train.lr_decay=cosine", "diffusion.noise_shift=0.8")


def get_preset(name: str) -> Config:
    try:
        return PRESETS[name]
    except KeyError:
        raise ConfigError(f"{setting('preset')} {name!r}: choose one of {', '.join(PRESETS)}") from None


def _override_key(cfg_dict: dict, key: str) -> tuple[str, str]:
    """(section, name) of an override key ``section.name`` or a unique ``name``."""
    if "." in key:
        section, name = key.split(".", 1)
    else:
        owners = [s for s, sub in cfg_dict.items() if key in sub]
        if key in cfg_dict:
            raise ConfigError(f"{setting('set')} {key}: {key} is a section; write {key}.SETTING=VALUE "
                              f"(one of {', '.join(cfg_dict[key])})")
        if len(owners) != 1:
            where = " and ".join(owners) if owners else "no section"
            raise ConfigError(f"{setting('set')} {key}: that setting is in {where}; write section.{key}")
        section, name = owners[0], key
    if section not in cfg_dict or name not in cfg_dict[section]:
        raise ConfigError(f"{setting('set')} {key}: unknown setting")
    return section, name


def apply_overrides(cfg: Config, overrides: list[str]) -> Config:
    """A new config with ``section.key=value`` (or unique ``key=value``) overrides, all applied
    before the result is validated (so one may fix what another would break)."""
    if not overrides:
        return cfg
    d = cfg.to_dict()
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"{setting('set')} {item!r}: expected KEY=VALUE, e.g. train.lr=2e-4")
        key, value = item.split("=", 1)
        section, name = _override_key(d, key.strip())
        d[section][name] = value.strip()
    return Config.from_dict(d)


def load_config(preset: str = "cpu", config_file: str | Path | None = None,
                overrides: list[str] | None = None) -> Config:
    """Preset, then a JSON file (partial, same nesting as ``Config.to_dict``), then overrides."""
    cfg = get_preset(preset)
    if config_file is not None:
        cfg = _merge_file(cfg, Path(config_file))
    return apply_overrides(cfg, overrides or [])


def _merge_file(cfg: Config, path: Path) -> Config:
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"config file {path} does not exist") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ConfigError(f"config file {path} is not valid JSON: {e}") from None
    except OSError as e:
        raise ConfigError(f"config file {path} cannot be read: {e.strerror or e}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path}: expected an object of sections, got {type(data).__name__}")
    merged = cfg.to_dict()
    for section, values in data.items():
        if section not in merged:
            raise ConfigError(f"config file {path}: unknown section {section!r}")
        if not isinstance(values, dict):
            raise ConfigError(f"config file {path}: section {section} = {values!r}: expected an object of settings")
        merged[section].update(values)
    try:
        return Config.from_dict(merged)
    except ConfigError as e:
        raise ConfigError(f"config file {path}: {e}") from None
