"""The eight rotations and mirrors of a square image (the dihedral group D4), one implementation
for ``prepare`` (NumPy, one image) and training (PyTorch, per-sample elements of a batch)."""
from __future__ import annotations

import numpy as np

DIHEDRAL_NAMES = ("identity", "rot90", "rot180", "rot270", "flip", "rot90+flip", "rot180+flip", "rot270+flip")


AUGMENT_ELEMENTS = {                 # train.augment: the dihedral elements a training image is drawn from
    "dihedral": tuple(range(8)),     # every turn and mirror: for images with no preferred direction
    "flips": (0, 2, 4, 6),           # identity, half turn, the two mirrors: rows stay rows (oriented sections)
    "none": (0,),
}


def dihedral(x, k: int):
    """Element k of D4 on the last two axes: rot90^(k mod 4) (counter-clockwise), then a mirror
    of the last axis if k >= 4. NumPy arrays stay NumPy (contiguous), tensors stay tensors."""
    if isinstance(x, np.ndarray):
        y = np.rot90(x, k % 4, axes=(-2, -1))
        return np.ascontiguousarray(y[..., ::-1] if k >= 4 else y)
    import torch
    y = torch.rot90(x, k % 4, dims=(-2, -1))
    return torch.flip(y, dims=(-1,)) if k >= 4 else y


def dihedral_batch(x, ks):
    """``dihedral(x[i], ks[i])`` for every element of a batch tensor."""
    import torch
    return torch.stack([dihedral(x[i], int(k)) for i, k in enumerate(ks)])
