"""The one image path: list class images, read an image, crop and resample, write.

Every reader returns float32 arrays in [0, 1]. One resampling policy everywhere (training,
``prepare``, ``evaluate``, figures): area averaging when shrinking, bicubic when enlarging,
always a square crop (centred by default), never a non-uniform resize.
"""
from __future__ import annotations

import contextlib
import contextvars
from pathlib import Path

import numpy as np

from ..core.errors import DataError, ImageError, MicrodiffError, MissingPathError, setting
from ..core.files import atomic_path

IMAGE_SUFFIXES = {".png", ".tif", ".tiff", ".jpg", ".jpeg", ".bmp", ".npy"}
DEFAULT_MAX_PIXELS = 1 << 28          # 268 M pixels (16384 x 16384); --max-pixels raises it
_MAX_PIXELS: contextvars.ContextVar[int] = contextvars.ContextVar("microdiff_max_pixels", default=DEFAULT_MAX_PIXELS)

__all__ = ["IMAGE_SUFFIXES", "ImageError", "to_unit_float", "read_image", "to_uint8", "save_png", "save_npy",
           "center_box", "crop", "resample", "crop_resample", "list_images", "list_class_images", "read_stack",
           "read_raw", "read_labels", "read_label_stack"]


# ----------------------------------------------------------------------------- reading

def to_unit_float(arr: np.ndarray, source: str = "array") -> np.ndarray:
    """Scale an image array to float32 in [0, 1]: integers by their dtype's range (8/16-bit, not
    clipped), floats must already lie in [0, 1], integer arrays of 0/1 phase labels stay 0/1."""
    if arr.dtype == bool:
        return arr.astype(np.float32)
    if arr.dtype.kind not in "iuf" or arr.size == 0:
        raise ImageError(f"{source}: a {arr.dtype} array of shape {arr.shape} is not an image")
    if np.issubdtype(arr.dtype, np.integer):
        lo, hi = int(arr.min(initial=0)), int(arr.max(initial=0))
        if lo >= 0 and hi <= 1:
            return arr.astype(np.float32)
        if arr.dtype in (np.uint8, np.int8) or hi <= 255 and lo >= 0:
            return arr.astype(np.float32) / 255.0
        if hi <= 65535 and lo >= 0:
            return arr.astype(np.float32) / 65535.0
        raise ImageError(f"{source}: integer values {lo}..{hi} are outside 0..65535; rescale it to [0, 1]")
    arr = arr.astype(np.float32)
    if not np.isfinite(arr).all():
        raise ImageError(f"{source}: contains NaN or infinite pixels; clean the image first")
    if arr.min() < 0 or arr.max() > 1:
        raise ImageError(f"{source}: float values {arr.min():.4g}..{arr.max():.4g} lie outside [0, 1]; "
                         "scale them to [0, 1]")
    return arr


@contextlib.contextmanager
def pixel_limit(max_pixels: int):
    """Read images of up to ``max_pixels`` pixels inside this block (default ``DEFAULT_MAX_PIXELS``)."""
    token = _MAX_PIXELS.set(int(max_pixels))
    try:
        yield
    finally:
        _MAX_PIXELS.reset(token)


def _check_pixels(path: Path, shape: tuple[int, ...]) -> None:
    n = int(np.prod(shape, dtype=np.float64))
    limit = _MAX_PIXELS.get()
    if n > limit:
        raise ImageError(f"{path}: {' x '.join(map(str, shape))} = {n:,} pixels is more than the limit of "
                         f"{limit:,}; if the image is genuine, raise the limit with {setting('max_pixels')} {n}")


def read_image(path: str | Path, allow_rgb: bool = True) -> np.ndarray:
    """Read PNG/TIFF (8/16-bit, first page)/JPEG/BMP/NPY as a 2-D float32 array in [0, 1].

    RGB(A) images are converted to luminance (ITU-R 601, as PIL's "L") unless ``allow_rgb`` is
    False, in which case they are refused. The pixel count is checked from the header before
    anything is decoded (``pixel_limit``). Any file that cannot be read gives an ``ImageError``
    naming it.
    """
    return to_unit_float(read_raw(path, allow_rgb), str(path))


def read_raw(path: str | Path, allow_rgb: bool = True, color: bool = False) -> np.ndarray:
    """The file's array as stored (integers or floats, not scaled): 2-D, or with ``color``
    (H, W, 3) RGB (gray images repeated in three channels). Errors as ``read_image``."""
    path = Path(path)
    if path.is_dir():
        raise _unreadable(path, "is a folder, not an image file")
    if not path.is_file():
        raise _unreadable(path, "no such file")
    if path.suffix.lower() == ".vti":
        raise _unreadable(path, "a .vti file is written for ParaView; read the volume.npy or volume.tif beside it")
    try:
        arr = _read_npy(path, color, allow_rgb) if path.suffix.lower() == ".npy" else _read_pil(path, allow_rgb, color)
    except MicrodiffError:
        raise
    except Exception as e:  # noqa: BLE001  decoders raise many kinds for a damaged file
        what = "a readable .npy array" if path.suffix.lower() == ".npy" else "a readable image"
        raise _unreadable(path, f"not {what} ({type(e).__name__}: {' '.join(str(e).split())[:200]})",
                          "remove or replace the file") from None
    return arr


def _unreadable(path: Path, reason: str, fix: str = "") -> ImageError:
    """The error of a file that cannot be read; ``reason`` (without the fix, which fits a data
    folder) is kept for callers that read one named file and give their own fix."""
    err = ImageError(f"{path}: {reason}" + (f"; {fix}" if fix else ""))
    err.reason = reason
    return err


def _read_npy(path: Path, color: bool = False, allow_rgb: bool = False) -> np.ndarray:
    try:
        mm = np.load(path, mmap_mode="r", allow_pickle=False)   # the header, checked against the file's length
    except ValueError:
        raise _unreadable(path, "not a .npy array of numbers (a pickled or object array, or not a .npy file)",
                          "save it with numpy.save from an array of numbers") from None
    _check_pixels(path, mm.shape)
    if mm.dtype.kind not in "biuf":
        raise ImageError(f"{path}: a {mm.dtype} array is not an image; save numbers (integers or floats in [0, 1])")
    arr = np.squeeze(np.array(mm))
    if arr.ndim == 3 and arr.shape[-1] == 3 and (color or allow_rgb):
        if color:
            return arr
        gray = arr.astype(np.float64) @ np.array([0.299, 0.587, 0.114])              # luminance, as PIL's "L"
        return gray.astype(np.float32) if arr.dtype.kind == "f" else np.rint(gray).astype(arr.dtype)
    if arr.ndim != 2:
        raise ImageError(f"{path}: expected a 2-D array{' or H x W x 3' if color else ''}, got shape {arr.shape}")
    return np.repeat(arr[..., None], 3, -1) if color else arr


def _read_pil(path: Path, allow_rgb: bool, color: bool = False) -> np.ndarray:
    import warnings

    from PIL import Image
    limit = Image.MAX_IMAGE_PIXELS
    Image.MAX_IMAGE_PIXELS = None          # our own limit applies instead of PIL's bomb check
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")                # damaged metadata: the read succeeds or raises
            with Image.open(path) as im:
                _check_pixels(path, (im.size[1], im.size[0]))
                im.seek(0)
                im.load()
                if color:
                    rgb = im.convert("RGB") if im.mode not in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F") else None
                    return np.asarray(rgb) if rgb is not None else np.repeat(_pil_to_array(im, path, True)[..., None], 3, -1)
                return _pil_to_array(im, path, allow_rgb)
    finally:
        Image.MAX_IMAGE_PIXELS = limit


def _pil_to_array(im, path: Path, allow_rgb: bool) -> np.ndarray:
    mode = im.mode
    if mode == "LA":
        return np.asarray(im.convert("L"))
    if mode in ("RGB", "RGBA", "P", "CMYK", "YCbCr", "PA"):
        if not allow_rgb:
            raise ImageError(f"{path}: is a colour ({mode}) image; convert it to grayscale first")
        return np.asarray(im.convert("L"))
    if mode == "1":
        return np.asarray(im, dtype=np.uint8)
    if mode in ("I;16", "I;16B", "I;16L", "I;16N"):
        return np.asarray(im, dtype=np.uint16)
    if mode == "I":
        arr = np.asarray(im, dtype=np.int64)
        return arr.astype(np.uint16) if arr.min() >= 0 and arr.max() <= 65535 else arr
    if mode == "F":
        return np.asarray(im, dtype=np.float32)
    return np.asarray(im.convert("L"))


# ----------------------------------------------------------------------------- writing

def to_uint8(image: np.ndarray) -> np.ndarray:
    """[0, 1] floats -> 8-bit, rounded to nearest."""
    return np.clip(np.rint(np.asarray(image, dtype=np.float64) * 255.0), 0, 255).astype(np.uint8)


def save_png(path: str | Path, image: np.ndarray) -> None:
    """Write a float image in [0, 1] (HxW or HxWx3) as an 8-bit PNG, atomically."""
    from PIL import Image
    with atomic_path(path) as tmp:
        Image.fromarray(to_uint8(image)).save(tmp, format="PNG")


def save_npy(path: str | Path, array: np.ndarray) -> None:
    """``np.save`` atomically (never a truncated .npy under the final name)."""
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            np.save(fh, array, allow_pickle=False)


# ----------------------------------------------------------------------------- crop and resample

def center_box(h: int, w: int) -> tuple[int, int, int]:
    """(top, left, side) of the centred square of the shorter side."""
    s = min(h, w)
    return (h - s) // 2, (w - s) // 2, s


def crop(a: np.ndarray, box: tuple[int, int, int]) -> np.ndarray:
    t, l_, side = box
    return a[t:t + side, l_:l_ + side]


def resample(a: np.ndarray, size: int) -> np.ndarray:
    """Square float image -> ``size`` x ``size``: area averaging down, bicubic up (clipped to [0, 1])."""
    if a.shape[0] == size and a.shape[1] == size:
        return a.astype(np.float32)
    from PIL import Image
    im = Image.fromarray(np.ascontiguousarray(a, dtype=np.float32))
    method = Image.Resampling.BOX if a.shape[0] > size else Image.Resampling.BICUBIC
    return np.clip(np.asarray(im.resize((size, size), method), dtype=np.float32), 0, 1)


def crop_resample(a: np.ndarray, size: int, box: tuple[int, int, int] | None = None) -> np.ndarray:
    """A square crop (default: the centred square of the shorter side) resampled to ``size``."""
    return resample(crop(a, box or center_box(*a.shape[:2])), size)


# ----------------------------------------------------------------------------- folders

LABELS_SUFFIX = "_labels"            # NNNN_labels.{npy,png}: the phase label map of NNNN


def is_label_file(path: Path) -> bool:
    """``NNNN_labels.*`` (2D samples) or ``labels.*`` (a volume's folder from ``sample3d``)."""
    stem = Path(path).stem
    return stem.endswith(LABELS_SUFFIX) or stem == "labels"


def list_images(folder: str | Path, labels: bool = False) -> list[Path]:
    """Image files below ``folder`` (recursive, sorted, hidden files skipped); of ``x.npy`` and
    ``x.png`` in one folder only the lossless ``x.npy`` is kept. Label maps (``*_labels.*``) are
    left out, or with ``labels`` are the only files listed."""
    by_key: dict[tuple[Path, str], Path] = {}
    for f in sorted(Path(folder).rglob("*")):
        if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES and not f.name.startswith(".") \
                and is_label_file(f) == labels:
            key = (f.parent, f.stem)
            if key not in by_key or f.suffix.lower() == ".npy":
                by_key[key] = f
    return sorted(by_key.values())


def list_class_images(root: str | Path, what: str = "data folder", labels: bool = False) -> dict[str, list[Path]]:
    """``{class: [image files]}`` (or label maps) for a folder of class subfolders; an empty
    class is an error."""
    root = Path(root)
    if root.is_file():
        raise DataError(f"{what} {root} is a file; give the folder of class subfolders it lies in")
    if not root.is_dir():
        raise MissingPathError(f"{what} {root} does not exist; make one with `microdiff synth fiber` "
                               "or `microdiff prepare`")
    classes = {d.name: list_images(d, labels) for d in sorted(root.iterdir())
               if d.is_dir() and not d.name.startswith(".")}
    if not classes:
        raise DataError(f"{what} {root} has no class subfolders; expected {root}/<class>/*.png")
    empty = [str(root / c) for c, fs in classes.items() if not fs]
    if empty:
        what = "label maps (*_labels.npy/png)" if labels else "images"
        raise DataError(f"class folder(s) {', '.join(empty)} have no {what}; add them or remove the folder")
    return classes


def read_labels(path: str | Path, phases: int | None = None) -> np.ndarray:
    """A label map as uint8 phase ids. An integer .npy, or an image whose values are all below
    16, holds the ids as they are; other images hold gray levels: with ``phases`` K known, the
    levels round(255 k / (K - 1)) of ``*_labels.png`` (exactly; others are refused), else the
    levels present numbered 0, 1, ... from dark to bright."""
    return read_label_stack([path], phases)[0]


def read_label_stack(files: list[Path], phases: int | None = None) -> np.ndarray:
    """Label maps (N, H, W) of one size as uint8 ids (``read_labels``), each file read once.
    Gray-level images without a known ``phases`` are numbered by the levels present in *all* the
    files together, so a map that lacks a phase keeps the ids of the others."""
    from .encoding import MAX_PHASES, levels_to_labels
    raws = [np.squeeze(read_raw(f, allow_rgb=False)) for f in files]
    if len({r.shape for r in raws}) > 1:
        raise DataError(f"label maps in {Path(files[0]).parent} have different sizes "
                        f"{sorted({r.shape for r in raws})}; give them at one size")
    for f, r in zip(files, raws):
        if r.dtype.kind not in "iub" or r.min(initial=0) < 0 or r.max(initial=0) > 255:
            raise ImageError(f"{f}: a label map holds phase ids 0..255 as integers, not {r.dtype} "
                             f"{r.min(initial=0)}..{r.max(initial=0)}; save the phase of each pixel as an integer")
    gray = [i for i, (f, r) in enumerate(zip(files, raws))
            if Path(f).suffix.lower() != ".npy" and int(r.max(initial=0)) >= MAX_PHASES]
    if gray and phases is not None:
        for i in gray:
            raws[i] = levels_to_labels(raws[i], phases, str(files[i]))
    elif gray:
        levels = np.unique(np.concatenate([np.unique(raws[i]) for i in gray]))
        if len(levels) > MAX_PHASES:
            raise ImageError(f"{files[gray[0]]}: {len(levels)} gray levels is not a label map (at most {MAX_PHASES} "
                             "phases; a photo?): label maps hold one integer phase id per pixel")
        for i in gray:
            raws[i] = np.searchsorted(levels, raws[i])
    return np.stack([r.astype(np.uint8) for r in raws])


def read_stack(files: list[Path], size: int | None = None, allow_rgb: bool = False) -> np.ndarray:
    """(N, H, W) float32 in [0, 1]; brought to ``size`` by ``crop_resample`` where given, else
    all files must have one size."""
    arrs = []
    for f in files:
        a = read_image(f, allow_rgb=allow_rgb)
        arrs.append(crop_resample(a, size) if size is not None and a.shape != (size, size) else a)
    shapes = sorted({a.shape for a in arrs})
    if len(shapes) > 1:
        raise ImageError(f"images in {files[0].parent} have different sizes {shapes}; pass them at one size")
    return np.stack(arrs)
