"""Every error a user can cause is a ``MicrodiffError``: its message is one line that names the
file or setting, the bad value and the fix. The CLI prints exactly these (and OS errors that
name a path) as one line with exit code 2; anything else is a bug and shows its traceback.

A message names settings symbolically (``setting("num")``): a Python caller reads the
setting's own name (``num = 0: expected ...``), the CLI the flag that sets it (``--num 0:
expected ...``), from the one table in ``microdiff.cli.flags``. ``SettingError`` is the error of
one setting's value.

The subclasses also derive from the built-in exception a Python caller would expect
(``ValueError``, ``FileNotFoundError``, ``FileExistsError``), so ``except ValueError`` keeps working.
"""
from __future__ import annotations

import re
from typing import Callable

_OPEN, _CLOSE = "\u27e6", "\u27e7"
_MARK = re.compile(f"{_OPEN}([A-Za-z_][\\w.:-]*){_CLOSE}")
NO_VALUE = object()               # a SettingError about a setting that was not given


def setting(name: str) -> str:
    """A setting's name inside a message, rendered as its Python name or its flag (see module doc)."""
    return f"{_OPEN}{name}{_CLOSE}"


PYTHON_WORDS = {"overwrite": "overwrite=True", "resume": "resume=True", "strict": "strict=True",
                "from_scratch": "from_scratch=True", "out": "output folder"}


def _plain(name: str) -> str:
    """A setting as a Python caller writes it (a switch with its value; the output folder in words)."""
    return PYTHON_WORDS.get(name, name.split(":", 1)[-1])


def render_text(text: str, name: Callable[[str], str] = _plain) -> str:
    """A message that names settings (``setting``), with each shown as ``name(setting)``."""
    return _MARK.sub(lambda m: name(m.group(1)), text)


def say(text: str) -> None:
    """Print a note that may name settings, as a Python caller writes them (the default ``log``)."""
    print(render_text(text))


class MicrodiffError(Exception):
    """Base of every error a user can cause and fix."""

    def render(self, name: Callable[[str], str] = _plain) -> str:
        """The message with each setting it names shown as ``name(setting)``."""
        return render_text(str(self.args[0]) if self.args else "", name)

    def __str__(self) -> str:
        return self.render()


class UsageError(MicrodiffError, ValueError):
    """A bad argument or setting value."""


class SettingError(UsageError):
    """A bad value of one named setting: ``SettingError("num", 0, "expected an integer >= 1")``.
    ``value`` may be ``NO_VALUE`` (a setting that is missing or does not fit the others)."""

    def __init__(self, name: str, value=NO_VALUE, problem: str = ""):
        super().__init__(problem)
        self.setting, self.value, self.problem = name, value, problem

    def __reduce__(self):                                  # whole across processes (``core.launch.process_map``)
        return _setting_error, (type(self), self.setting, self.value is NO_VALUE,
                                None if self.value is NO_VALUE else self.value, self.problem)

    def render(self, name: Callable[[str], str] = _plain) -> str:
        shown = name(self.setting) if name is not _plain else self.setting
        problem = _MARK.sub(lambda m: name(m.group(1)), self.problem)
        if self.value is NO_VALUE:
            return f"{shown}: {problem}"
        if shown.startswith("-"):                          # a flag: as it was typed
            value = repr(self.value) if isinstance(self.value, str) else str(self.value)
            return f"{shown} {value}: {problem}"
        return f"{shown} = {self.value!r}: {problem}"


def _setting_error(cls, name: str, missing: bool, value, problem: str) -> SettingError:
    return cls(name, NO_VALUE if missing else value, problem)


class ConfigError(MicrodiffError, ValueError):
    """A bad setting in a preset, a config file or ``--set``."""


class DataError(MicrodiffError, ValueError):
    """A data folder or file that cannot be used as it is (no class folders, an empty class, ...)."""


class ImageError(DataError):
    """A file that is not a usable image."""


class MissingPathError(MicrodiffError, FileNotFoundError):
    """An input file or folder that does not exist."""


class OutputExistsError(MicrodiffError, FileExistsError):
    """An output that already exists and would be replaced."""


class OutputError(MicrodiffError, OSError):
    """An output that cannot be written (no such folder, no permission, a file in the way, a full
    disk): the path the user asked for, never a temporary name; the OS error number is kept."""

    def __init__(self, path, err: OSError):
        OSError.__init__(self, err.errno, err.strerror or str(err), str(path))
        self.message = f"{path}: cannot be written ({err.strerror or err}); choose another {setting('out')}"

    def render(self, name: Callable[[str], str] = _plain) -> str:
        return render_text(self.message, name)


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


class GenerationError(MicrodiffError, RuntimeError):
    """Sampling produced something that must not be written (a sample that is not finite)."""
