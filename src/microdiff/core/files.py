"""Files and folders: the one rule for outputs that exist, and atomic writes (a temporary name in
the same folder, then a rename), so an interrupted command never leaves a file that looks complete."""
from __future__ import annotations

import contextlib
import os
import shutil
from pathlib import Path
from typing import Iterator

from .errors import OutputError, OutputExistsError, setting

LOCK = ".lock"


def is_nonempty_dir(path: Path) -> bool:
    """A folder that holds anything besides its lock file."""
    return path.is_dir() and any(p.name != LOCK for p in path.iterdir())


def check_output_free(path: str | Path, overwrite: bool, holds: str = "files",
                      alternative: str = "", marker: str | tuple[str, ...] = "") -> bool:
    """Refuse an output folder that holds something unless ``overwrite``; returns whether it does.

    ``holds`` says what is there ("a data set", "a training run"); ``alternative`` is another way
    out besides overwriting, naming its setting (f"pass {setting('resume')} to continue it").
    ``marker``: the file (or files, any of them) an output of this kind holds from its start
    (``sample.json``, ``dataset.json``):
    overwriting replaces only a folder that holds it, never one of other files (a data set given
    as the output of sampling, say).
    """
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise OutputExistsError(f"{path} is a file, not a folder; choose another {setting('out')}")
    taken = is_nonempty_dir(path)
    marks = (marker,) if isinstance(marker, str) else tuple(marker)
    if taken and overwrite and marker and not any((path / m).exists() for m in marks):
        raise OutputExistsError(f"{path} holds files that are not {holds} (it has no {marks[0]}); overwriting "
                                f"replaces only an earlier output of this kind: choose another {setting('out')}, or "
                                "empty the folder yourself")
    if taken and not overwrite:
        replace = f"pass {setting('overwrite')} to replace it"
        ways = f"{alternative}, or {replace}" if alternative else replace
        raise OutputExistsError(f"{path} already holds {holds}; {ways} (or choose another {setting('out')})")
    return taken


def clear_folder(path: Path) -> None:
    """Remove everything in a folder but its lock file."""
    for p in path.iterdir():
        if p.name != LOCK:
            remove(p)


def temp_sibling(path: Path, tag: str = "tmp") -> Path:
    """A hidden name beside ``path`` for a file or folder being written (unique per process)."""
    return path.parent / f".{path.name}.{tag}-{os.getpid()}"


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it is renamed to ``path`` (replacing
    it), on an exception it is removed. Works for files and folders."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise OutputError(path, e) from None
    tmp = temp_sibling(path)
    remove(tmp)
    try:
        yield tmp
        if path.is_dir() and tmp.is_dir():
            shutil.rmtree(path)
        os.replace(tmp, path)
    except OSError as e:
        remove(tmp)
        if isinstance(e, OutputError) or e.filename not in (str(tmp), str(path), None):
            raise
        raise OutputError(path, e) from None
    except BaseException:
        remove(tmp)
        raise


def remove(path: Path) -> None:
    """Delete a file or a folder tree if it exists."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    elif path.exists() or path.is_symlink():
        path.unlink()


def write_text_atomic(path: str | Path, text: str) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_text(text)
    return Path(path)


def free_bytes(folder: Path) -> int:
    """Free space on the file system of ``folder`` (or of its nearest existing parent)."""
    folder = Path(folder)
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    return shutil.disk_usage(folder).free


def is_disk_full(e: BaseException) -> bool:
    import errno
    if isinstance(e, OSError):
        return e.errno in (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC))
    text = str(e)                                          # safetensors' Rust errors are not OSErrors
    return "No space left" in text or "StorageFull" in text or "code: 28" in text


def mb(n: float) -> str:
    return f"{n / 1e6:.1f} MB"


class RunLock:
    """An exclusive lock on a folder (``FOLDER/.lock``), held while this object is open: a second
    training into the same run folder is refused. The operating system releases it when the
    process ends, also by kill -9, so it never stays stuck."""

    def __init__(self, folder: Path, what: str = "training"):
        from .errors import RunDirError
        self.path = Path(folder) / LOCK
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.file = open(self.path, "a+")
        try:
            import fcntl
        except ImportError:                               # not POSIX: no lock
            return
        try:
            fcntl.flock(self.file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            self.file.seek(0)
            owner = self.file.read().strip() or "?"
            self.file.close()
            raise RunDirError(f"another {what} is running in {folder} (process {owner}); wait for it to finish "
                              f"or choose another {setting('out')}") from None
        self.file.seek(0)
        self.file.truncate()
        self.file.write(str(os.getpid()))
        self.file.flush()

    def close(self, remove: bool = False) -> None:
        """Release the lock; ``remove`` also deletes the lock file (a run that ended cleanly)."""
        if not self.file.closed:
            if remove:
                self.path.unlink(missing_ok=True)
            self.file.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False
