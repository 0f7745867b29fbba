"""Reading and writing micrographs. Every reader returns float32 arrays in [0, 1]."""
from __future__ import annotations

from pathlib import Path

import numpy as np

IMAGE_SUFFIXES = {".png", ".tif", ".tiff", ".jpg", ".jpeg", ".bmp", ".npy"}


class ImageError(ValueError):
    """A file that is not a usable image; the message names the file and the fix."""


def to_unit_float(arr: np.ndarray, source: str = "array") -> np.ndarray:
    """Scale an image array to float32 in [0, 1]: integers by their dtype's range (8/16-bit, not
    clipped), floats must already lie in [0, 1], integer arrays of 0/1 phase labels stay 0/1."""
    if arr.dtype == bool:
        return arr.astype(np.float32)
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


def read_image(path: str | Path, allow_rgb: bool = True) -> np.ndarray:
    """Read PNG/TIFF (8/16-bit, first page)/JPEG/BMP/NPY as a 2-D float32 array in [0, 1].

    RGB(A) images are converted to luminance (ITU-R 601, as PIL's "L") unless ``allow_rgb`` is
    False, in which case they are refused.
    """
    path = Path(path)
    if not path.is_file():
        raise ImageError(f"{path}: no such file")
    if path.suffix.lower() == ".npy":
        try:
            arr = np.load(path, allow_pickle=False)
        except Exception as e:
            raise ImageError(f"{path}: not a readable .npy array ({e})") from None
        arr = np.squeeze(arr)
        if arr.ndim != 2:
            raise ImageError(f"{path}: expected a 2-D array, got shape {arr.shape}")
        return to_unit_float(arr, str(path))
    from PIL import Image, UnidentifiedImageError
    try:
        with Image.open(path) as im:
            im.seek(0)
            im.load()
            arr = _pil_to_array(im, path, allow_rgb)
    except (UnidentifiedImageError, OSError, SyntaxError) as e:
        raise ImageError(f"{path}: not a readable image ({e}); remove or replace the file") from None
    return to_unit_float(arr, str(path))


def _pil_to_array(im, path: Path, allow_rgb: bool) -> np.ndarray:
    mode = im.mode
    if mode in ("RGB", "RGBA", "P", "CMYK", "YCbCr", "LA", "PA"):
        if mode in ("LA",):
            return np.asarray(im.convert("L"))
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
        arr = np.asarray(im, dtype=np.float32)
        return arr
    return np.asarray(im.convert("L"))


def save_png(path: str | Path, image: np.ndarray) -> None:
    """Write a float image in [0, 1] (HxW or HxWx3) as an 8-bit PNG."""
    from PIL import Image
    arr = np.clip(np.rint(np.asarray(image, dtype=np.float64) * 255.0), 0, 255).astype(np.uint8)
    Image.fromarray(arr).save(path)


def center_square(arr: np.ndarray) -> np.ndarray:
    h, w = arr.shape[:2]
    s = min(h, w)
    top, left = (h - s) // 2, (w - s) // 2
    return arr[top:top + s, left:left + s]


def resize_area(arr: np.ndarray, size: int) -> np.ndarray:
    """Resample a square float image to ``size`` x ``size`` by area averaging (box filter)."""
    if arr.shape[0] == size and arr.shape[1] == size:
        return arr.astype(np.float32)
    from PIL import Image
    im = Image.fromarray(arr.astype(np.float32), mode="F")
    return np.asarray(im.resize((size, size), Image.Resampling.BOX), dtype=np.float32)


def list_class_folders(root: str | Path) -> dict[str, list[Path]]:
    """``{class: [image files]}`` for a folder of class subfolders (sorted, hidden files skipped)."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"data folder {root} does not exist; make one with `microdiff synth fiber` "
                                "or `microdiff prepare`")
    classes = {}
    for d in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        files = sorted(f for f in d.rglob("*") if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES
                       and not f.name.startswith("."))
        classes[d.name] = files
    if not classes:
        raise FileNotFoundError(f"data folder {root} has no class subfolders; expected {root}/<class>/*.png")
    return classes


def load_class_folders(root: str | Path, image_size: int) -> tuple[np.ndarray, np.ndarray, list[str], list[str]]:
    """All images of a class-folder tree, centre-cropped square and area-resampled to
    ``image_size``: (uint8 array (N, S, S), labels (N,), class names, skipped-file messages).

    Unreadable files are skipped and reported; a class left without images is an error.
    """
    classes = list_class_folders(root)
    images, labels, skipped = [], [], []
    names = list(classes)
    for ci, name in enumerate(names):
        n_ok = 0
        for f in classes[name]:
            try:
                arr = read_image(f)
            except ImageError as e:
                skipped.append(str(e))
                continue
            arr = resize_area(center_square(arr), image_size)
            images.append(np.clip(np.rint(arr * 255), 0, 255).astype(np.uint8))
            labels.append(ci)
            n_ok += 1
        if n_ok == 0:
            raise ValueError(f"class folder {Path(root) / name} has no readable images; add images or remove it")
    return np.stack(images), np.asarray(labels, dtype=np.int64), names, skipped
