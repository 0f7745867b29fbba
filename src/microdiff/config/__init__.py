"""Configuration: what a model is and how it trains and samples, as data.

- ``settings``: frozen, self-checking dataclasses (``Config``: ``ModelConfig``,
  ``DiffusionConfig`` with its ``Recipe``, ``TrainConfig``, ``SampleConfig``), ``RECIPES``.
- ``presets``: ``PRESETS`` (``cpu``, ``cpu-paper``, ``paper``, ``paper-edm``), ``get_preset``,
  ``apply_overrides``, ``load_config``; ``LAYOUT_OVERRIDES``, what a layout model trains with.

Nothing here imports torch, so ``microdiff --help`` stays fast.
"""
from .presets import LAYOUT_OVERRIDES, PRESETS, apply_overrides, get_preset, load_config
from .settings import (RECIPES, SAMPLER_NAMES, SCHEDULES, Config, DiffusionConfig, ModelConfig, Recipe, SampleConfig,
                       TrainConfig)

__all__ = ["Config", "ModelConfig", "DiffusionConfig", "Recipe", "TrainConfig", "SampleConfig", "RECIPES",
           "SAMPLER_NAMES", "SCHEDULES", "PRESETS", "LAYOUT_OVERRIDES", "get_preset", "apply_overrides",
           "load_config"]
