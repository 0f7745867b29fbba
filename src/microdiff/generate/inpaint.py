"""``microdiff inpaint``: regenerate the masked pixels of a real micrograph (white = generate)
consistently with the rest, or grow it on all sides (``extend``: outpainting). Known pixels are
kept exactly (``denoise.mask``: the known pixels' gradient and their projection at every step).
Images of any size >= the training size are denoised as windows. The folder has the layout of
``sample``'s, and each ``NNNN.json`` records the image and the mask.
"""
from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import torch

from ..core.errors import SettingError, setting
from ..denoise.canvas import Canvas
from .driver import GenerationResult, run_to_folder
from .images import ImageProducer, sample_run
from .settings import InpaintSettings, settings_of
from .writers import ImageWriter

DATABAR = "databar"        # mask "databar": the SEM data bar at the bottom, detected as `prepare` does


def _sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def read_known(image: str | Path, encoding) -> np.ndarray:
    """The image to inpaint as the model's channels in [0, 1], (C, H, W): gray, RGB, or for a
    phase model the one-hot phases of a label map (ids checked against the model's)."""
    from ..data.io import read_image, read_labels, read_raw, to_unit_float
    if encoding.kind == "phases":
        ids = read_labels(image)
        if int(ids.max()) >= encoding.phases:
            raise SettingError("image", str(image), f"it holds phase id {int(ids.max())}; this model has "
                               f"{encoding.phases} phases (0..{encoding.phases - 1})")
        return (np.arange(encoding.phases)[:, None, None] == ids[None]).astype(np.float32)
    if encoding.kind == "rgb":
        return np.moveaxis(to_unit_float(read_raw(image, color=True), str(image)), -1, 0).astype(np.float32)
    return read_image(image, allow_rgb=False)[None]


def load_inpaint_inputs(image: str | Path, mask: str | Path | None, extend: int, window: int, encoding=None
                        ) -> tuple[np.ndarray, np.ndarray]:
    """The (padded) image (C, H, W) in [0, 1] and the boolean mask (H, W) of pixels to generate, checked."""
    from ..data.encoding import Encoding
    from ..data.io import read_image
    img = read_known(image, encoding or Encoding())
    gen = np.zeros(img.shape[1:], dtype=bool)
    if str(mask) == DATABAR:
        from ..data.prepare import detect_bar
        rows = detect_bar(img.mean(0)) if (encoding is None or encoding.kind != "phases") else 0
        if rows == 0:
            raise SettingError("mask", DATABAR, f"no SEM data bar found at the bottom of {image}; give a mask image")
        gen[-rows:] = True
    elif mask is not None:
        m = read_image(mask)
        if m.shape != gen.shape:
            raise SettingError("mask", str(mask), f"the mask is {m.shape[1]}x{m.shape[0]} px but the image {image} is "
                               f"{gen.shape[1]}x{gen.shape[0]}; give a mask of the image's size")
        gen = m > 0.5
        if not gen.any() and extend == 0:
            raise SettingError("mask", str(mask), "the mask is empty (no white pixels): nothing to generate")
    if extend:
        img = np.pad(img, ((0, 0), (extend, extend), (extend, extend)))
        gen = np.pad(gen, extend, constant_values=True)
    if gen.all():
        raise SettingError("mask", str(mask), "the mask covers the whole image: nothing is known; use `sample`")
    if min(gen.shape) < window:
        raise SettingError("image", str(image), f"it is {gen.shape[1]}x{gen.shape[0]} px (with {setting('extend')}); "
                           f"the model works on at least {window}x{window}: give a larger image or extend it more")
    return img.astype(np.float32), gen


def inpaint_to_folder(pipe, out_dir: str | Path, settings: InpaintSettings | None = None, overwrite: bool = False,
                      resume: bool = False, show_progress: bool = True, **fields) -> GenerationResult:
    """``settings.num`` inpainted versions of ``settings.image`` into ``out_dir/<class>/``, in the
    layout of ``sample_to_folder`` (``NNNN.json`` records the image and mask). ``settings`` or
    its fields as keywords."""
    from ..denoise.mask import KnownImage
    s = settings_of(InpaintSettings, settings, fields)
    cfg = pipe.microdiff_config
    enc = pipe.encoding
    window = cfg.model.image_size
    img, gen = load_inpaint_inputs(s.image, s.mask, s.extend, window, enc)
    canvas = Canvas.of(gen.shape, window, 2, False, s.overlap, name="image")
    info = {"image": str(s.image), "image_sha256": _sha256(Path(s.image)), "extend": s.extend,
            "mask": None if s.mask is None else str(s.mask),
            "mask_sha256": None if s.mask is None or str(s.mask) == DATABAR else _sha256(Path(s.mask)),
            "generated_fraction": round(float(gen.mean()), 6), "consistency": s.consistency}
    run = sample_run(pipe, s, canvas, classes=[s.class_name], inpaint=info)
    known = KnownImage(torch.from_numpy(img), torch.from_numpy(gen), s.consistency)
    producer = ImageProducer(pipe, run, mask=known, finish=known.keep)
    return run_to_folder(pipe, run, Path(out_dir), producer, ImageWriter(run.segment, enc), overwrite, resume, show_progress)
