"""Volume files: a 3-D .npy or a multi-page TIFF stack, gray or phase labels; shapes are read
from headers before anything is decoded."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..core.errors import ImageError
from .io import _check_pixels, is_label_file, to_unit_float


VOLUME_SUFFIXES = (".npy", ".tif", ".tiff")


def volume_shape(path: str | Path) -> tuple[int, ...] | None:
    """The (Z, Y, X) shape of a volume file (a 3-D .npy, a multi-page TIFF stack), None for a
    single image; read from the header only. An array of more dimensions is refused."""
    path = Path(path)
    suffix = path.suffix.lower()
    try:
        if suffix == ".npy":
            shape = tuple(n for n in np.load(path, mmap_mode="r", allow_pickle=False).shape if n != 1)
        elif suffix in (".tif", ".tiff"):
            import tifffile
            with tifffile.TiffFile(path) as tf:
                shape = tuple(n for n in tf.series[0].shape if n != 1)
        else:
            return None
    except ImportError:
        raise ImageError(f"{path}: reading TIFF stacks needs tifffile: pip install 'microdiff[volume]'") from None
    except Exception as e:  # noqa: BLE001
        raise ImageError(f"{path}: not a readable image or volume ({type(e).__name__}: {e})") from None
    if len(shape) > 3:
        raise ImageError(f"{path}: a {len(shape)}-D array of shape {shape}; expected a 2-D image or a 3-D volume "
                         "(Z, Y, X)")
    return shape if len(shape) == 3 else None


def read_volume(path: str | Path, labels: bool | None = None) -> tuple[np.ndarray, bool]:
    """A volume file as (array (Z, Y, X), is_labels): phase labels as uint8 (integer data in a
    ``labels.*`` / ``*_labels.*`` file, or ``labels``), else gray float32 in [0, 1]."""
    path = Path(path)
    shape = volume_shape(path)
    if shape is None:
        raise ImageError(f"{path}: not a volume (expected a 3-D .npy or a multi-page TIFF stack)")
    _check_pixels(path, shape)
    if path.suffix.lower() == ".npy":
        arr = np.squeeze(np.load(path, allow_pickle=False))
    else:
        import tifffile
        arr = np.squeeze(tifffile.imread(path))
    labels = is_label_file(path) if labels is None else labels
    if labels:
        if arr.dtype.kind not in "iub" or arr.min(initial=0) < 0 or arr.max(initial=0) > 255:
            raise ImageError(f"{path}: phase labels are integers 0..255, not {arr.dtype} "
                             f"{arr.min(initial=0)}..{arr.max(initial=0)}")
        return arr.astype(np.uint8), True
    return to_unit_float(arr, str(path)), False


def list_volumes(folder: str | Path, what: str = "volume folder") -> list[Path]:
    """The volumes of a folder, sorted: each ``NNNN/`` subfolder's ``labels.*`` (else its
    ``volume.*``), as ``sample3d`` writes them, and the 3-D files directly inside (``*_labels.npy``
    of ``synth``'s truth, TIFF stacks, 3-D .npy), hidden files skipped."""
    from ..core.errors import MissingPathError
    folder = Path(folder)
    if not folder.is_dir():
        raise MissingPathError(f"{folder}: no such folder (the {what})")
    out = []
    for sub in sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")):
        for stem in ("labels", "volume"):
            hit = next((sub / f"{stem}{s}" for s in (".npy", ".tif") if (sub / f"{stem}{s}").is_file()), None)
            if hit is not None:
                out.append(hit)
                break
    files = [p for p in sorted(folder.iterdir()) if p.is_file() and not p.name.startswith(".")
             and p.suffix.lower() in VOLUME_SUFFIXES]
    for p in files:
        if volume_shape(p) is None:
            raise ImageError(f"{p}: a single 2-D image among the volumes of {folder}; move it out (volumes are 3-D "
                             ".npy files or multi-page TIFF stacks)")
        out.append(p)
    return out
