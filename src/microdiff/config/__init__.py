"""Configuration: what a model is and how it trains and samples, as data.

- ``settings``: frozen, self-checking dataclasses (``Config``: ``ModelConfig``,
  ``DiffusionConfig`` with its ``Recipe``, ``TrainConfig``, ``SampleConfig``), ``RECIPES``.
- ``sampler``: ``SamplerSpec``, a sampler setting's name and options (``dpmpp_sde:eta=2``),
  ``check_sampler``, ``SAMPLER_NAMES``.
- ``presets``: ``PRESETS`` (``cpu``, ``cpu-paper``, ``paper``, ``paper-edm``), ``get_preset``,
  ``apply_overrides``, ``load_config``; ``LAYOUT_OVERRIDES``, what a layout model trains with.

Nothing here imports torch, so ``microdiff --help`` stays fast.
"""
from .presets import LAYOUT_OVERRIDES, PRESETS, apply_overrides, get_preset, load_config
from .sampler import SAMPLER_NAMES, SamplerSpec, check_sampler
from .settings import (RECIPES, SCHEDULES, Config, DiffusionConfig, ModelConfig, Recipe, SampleConfig,
                       TrainConfig)

__all__ = ["Config", "ModelConfig", "DiffusionConfig", "Recipe", "TrainConfig", "SampleConfig", "RECIPES",
           "SAMPLER_NAMES", "SamplerSpec", "check_sampler", "SCHEDULES", "PRESETS", "LAYOUT_OVERRIDES", "get_preset",
           "apply_overrides", "load_config"]
