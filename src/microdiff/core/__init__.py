"""Core: what every stage leans on, with no heavy imports.

- ``errors``: ``MicrodiffError`` and its kinds (every error a user can cause), ``SettingError``
  and ``setting`` (messages that name settings, shown as flags by the CLI).
- ``checks``: ``check_int``, ``check_float``, ``check_choice``, ``check_bool`` at the boundary.
- ``files``: the output-folder rule (``check_output_free``), atomic writes (``atomic_path``,
  ``write_text_atomic``), ``RunLock``.
- ``seeding``: seeds named by what they are for (``derive_seed``, ``sample_seed``, ``volume_seed``).
- ``launch``: processes, devices and memory (``dist_info``, ``distributed_state``, ``default_device``,
  ``launch``, ``keep_freed_memory``, ``process_map`` over the CPU's cores).
"""
from .errors import (CheckpointError, ConfigError, DataError, GenerationError, ImageError, MicrodiffError,
                     MissingPathError, ModelDirError, OutputError, OutputExistsError, PrepareError, RunDirError, SettingError,
                     TrainingError, UsageError, setting)

__all__ = ["MicrodiffError", "UsageError", "SettingError", "ConfigError", "DataError", "ImageError",
           "MissingPathError", "OutputError", "OutputExistsError", "ModelDirError", "CheckpointError", "RunDirError",
           "PrepareError", "TrainingError", "GenerationError", "setting"]
