"""Errors to the closest training image (eqs. 8-10): E = min_i MSE(D(M_i), D(M_rec)).

Descriptors are flattened to vectors whose squared Euclidean distance divided by ``dim`` is the
MSE of the full descriptor (a symmetric K x K correlation matrix is stored as its upper triangle
with the off-diagonal entries scaled by sqrt 2, which halves memory and disk). Distances use the
float64 expansion |g|^2 + |t|^2 - 2 g.t over chunks of training descriptors.
"""
from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Callable, Iterable, Sequence

import numpy as np
import torch
from torch import Tensor


def pack_symmetric(s: Tensor) -> Tensor:
    """(B, K, K) symmetric -> (B, K(K+1)/2) with ||pack(a) - pack(b)||^2 = ||a - b||_F^2."""
    k = s.shape[-1]
    iu = torch.triu_indices(k, k, device=s.device)
    v = s[:, iu[0], iu[1]]
    one = torch.ones((), dtype=v.dtype, device=v.device)
    scale = torch.where(iu[0] == iu[1], one, one * 2.0 ** 0.5)
    return v * scale


def min_mse(gen: Tensor, train_chunks: Iterable[Tensor], dim: int) -> tuple[Tensor, Tensor]:
    """For each row of ``gen`` (G, D): the smallest MSE to any training row and its index.

    ``train_chunks`` yields (n_i, D) blocks (so training descriptors can stream from disk);
    ``dim`` is the number of entries the MSE averages over.
    """
    g = gen.double()
    gn = (g ** 2).sum(1)
    best = torch.full((g.shape[0],), float("inf"), dtype=torch.float64)
    arg = torch.full((g.shape[0],), -1, dtype=torch.long)
    offset = 0
    for t in train_chunks:
        t = t.double()
        d = (gn[:, None] + (t ** 2).sum(1)[None, :] - 2 * g @ t.T).clamp(min=0) / dim
        v, i = d.min(1)
        better = v < best
        best = torch.where(better, v, best)
        arg = torch.where(better, i + offset, arg)
        offset += t.shape[0]
    if offset == 0:
        raise ValueError("no training images to compare with")
    return best, arg


def file_key(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:32]


class DescriptorCache:
    """Training-image descriptors on disk, keyed by the image file's hash and the settings."""

    def __init__(self, root: str | Path | None):
        self.root = Path(root) if root else None
        if self.root:
            self.root.mkdir(parents=True, exist_ok=True)

    def get_many(self, paths: Sequence[Path], tag: str, compute: Callable[[list[Path]], Tensor],
                 batch: int = 4, progress=None) -> list[Path] | Tensor:
        """Descriptors of ``paths`` (computed in batches where not cached): a stacked tensor when
        there is no cache, else the list of cache files (to stream)."""
        if self.root is None:
            out = []
            for s in range(0, len(paths), batch):
                out.append(compute(list(paths[s:s + batch])).float())
                if progress:
                    progress(len(paths[s:s + batch]))
            return torch.cat(out)
        files = [self.root / f"{file_key(p)}_{tag}.npy" for p in paths]
        todo = [i for i, f in enumerate(files) if not f.exists()]
        if progress and len(paths) > len(todo):
            progress(len(paths) - len(todo))
        for s in range(0, len(todo), batch):
            idx = todo[s:s + batch]
            desc = compute([paths[i] for i in idx]).float().cpu().numpy()
            for i, d in zip(idx, desc):
                tmp = files[i].with_suffix(".tmp.npy")
                np.save(tmp, d)
                tmp.replace(files[i])
            if progress:
                progress(len(idx))
        return files


def iter_chunks(source, chunk: int = 32):
    """Yield (n, D) tensors from a stacked tensor or a list of .npy cache files."""
    if isinstance(source, Tensor):
        for s in range(0, source.shape[0], chunk):
            yield source[s:s + chunk]
        return
    for s in range(0, len(source), chunk):
        yield torch.from_numpy(np.stack([np.load(f) for f in source[s:s + chunk]]))
