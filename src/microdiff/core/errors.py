"""Every error a user can cause is a ``MicrodiffError``: its message is one line that names the
file, flag or setting, the bad value and the fix. The CLI prints exactly these (and OS errors
that name a path) as one line with exit code 2; anything else is a bug and shows its traceback.

The subclasses also derive from the built-in exception a Python caller would expect
(``ValueError``, ``FileNotFoundError``, ``FileExistsError``), so ``except ValueError`` keeps working.
"""
from __future__ import annotations


class MicrodiffError(Exception):
    """Base of every error a user can cause and fix."""


class UsageError(MicrodiffError, ValueError):
    """A bad flag or argument value."""


class ConfigError(MicrodiffError, ValueError):
    """A bad setting in a preset, a config file or ``--set``."""


class DataError(MicrodiffError, ValueError):
    """A data folder that cannot be used as it is (no class folders, an empty class, ...)."""


class ImageError(DataError):
    """A file that is not a usable image."""


class MissingPathError(MicrodiffError, FileNotFoundError):
    """An input file or folder that does not exist."""


class OutputExistsError(MicrodiffError, FileExistsError):
    """An output that already exists and would be replaced."""


class ModelDirError(MicrodiffError, ValueError):
    """A model directory that is missing, incomplete or corrupt."""


class CheckpointError(MicrodiffError, ValueError):
    """A training checkpoint that cannot be read or written."""


class RunDirError(MicrodiffError, ValueError):
    """A run folder that does not fit the command (nothing to resume, a run already there, ...)."""


class PrepareError(MicrodiffError, ValueError):
    """An input collection that ``microdiff prepare`` cannot turn into a data set."""


class TrainingError(MicrodiffError, RuntimeError):
    """Training stopped for a reason the user can act on (a non-finite loss, say)."""
