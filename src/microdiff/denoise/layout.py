"""Where a window lies in its source micrograph: the condition of a layout model.

Coatings, surfaces and interfaces are not stationary: a crop's content depends on where it sits
in its micrograph. A layout model (``model.layout``) sees, besides the image, two coordinate
channels: the row and the column of every pixel as a fraction of its source image's height and
width, mapped to [-1, 1]. Per-pixel coordinates, and not one position vector per window, because
a canvas cuts its windows anywhere: each window's coordinates are the slice of the canvas's own,
so windows laid over a whole-source canvas place the layers where the sources have them.

The condition travels as the class labels do (``y`` of the denoiser's call), one row per sample
of ``LAYOUT_COLUMNS`` numbers: the class label, the region (top, left, height, width; fractions
of the source) and the dihedral element (``data.transforms``) that maps the source's pixel grid
to the window's -- training crops are turned and mirrored, and their coordinates with them, so
the network learns the orientation from the coordinate channels; samples are upright (element 0).
Plain class labels (B,) stay what non-layout models take. The network gets the class label with
the window's frame (``network_condition``), which its ``model.network.RegionEmbedding`` embeds.
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import Tensor

from ..data.transforms import dihedral

LAYOUT_COLUMNS = 6                  # label, top, left, height, width, dihedral element
WHOLE_SOURCE = (0.0, 0.0, 1.0, 1.0)


def is_layout(y: Tensor) -> bool:
    """Whether ``y`` is a layout condition (B, 6) float rather than class labels (long: (B,), or a
    volume's (B, 3), one class per axis)."""
    return y.ndim == 2 and y.is_floating_point()


def labels_of(y: Tensor) -> Tensor:
    """The class labels (B,) long of a condition."""
    return y[:, 0].round().long() if is_layout(y) else y


def with_labels(y: Tensor, label: int) -> Tensor:
    """``y`` with every class label replaced by ``label`` (the null class of guidance, or another class)."""
    if not is_layout(y):
        return torch.full_like(y, int(label))
    out = y.clone()
    out[:, 0] = label
    return out


def layout_condition(labels: Sequence[int] | Tensor, regions: Sequence[Sequence[float]] | Tensor,
                     elements: Sequence[int] | Tensor | None = None) -> Tensor:
    """The condition (B, 6) float64 of samples with ``labels``, source ``regions`` (top, left,
    height, width) and dihedral ``elements`` (default 0, upright)."""
    lab = torch.as_tensor(labels, dtype=torch.float64).reshape(-1, 1)
    reg = torch.as_tensor(regions, dtype=torch.float64).reshape(-1, 4)
    if reg.shape[0] == 1 and lab.shape[0] > 1:
        reg = reg.expand(lab.shape[0], 4)
    el = torch.zeros(lab.shape[0], 1, dtype=torch.float64) if elements is None else \
        torch.as_tensor(elements, dtype=torch.float64).reshape(-1, 1)
    return torch.cat([lab, reg, el], 1)


def _composition_table() -> list[list[int]]:
    """table[a][b]: the element equal to applying a, then b (found on a 2 x 2 array, on which D4 acts faithfully)."""
    base = torch.arange(4).view(2, 2)
    images = [dihedral(base, k) for k in range(8)]
    return [[next(c for c in range(8) if torch.equal(images[c], dihedral(images[a], b))) for b in range(8)]
            for a in range(8)]


COMPOSE = _composition_table()


def compose(first: Tensor, then: Tensor) -> Tensor:
    """Per sample, the dihedral element of applying ``first``, then ``then`` (both (B,) long)."""
    table = torch.tensor(COMPOSE, dtype=torch.long)
    return table[first.long(), then.long()]


def coordinate_maps(y: Tensor, height: int, width: int | None = None) -> Tensor:
    """The two coordinate channels (B, 2, height, width) of a layout condition: pixel centres'
    row and column as fractions of the source, mapped to [-1, 1], then turned by each sample's
    dihedral element (the window is that element of the upright crop, so are its coordinates).
    A turn by 90 degrees swaps the sides, so elements 1, 3, 5, 7 need square windows."""
    width = height if width is None else width
    y64 = y.to(torch.float64)
    top, left, hgt, wid = (y64[:, i + 1].view(-1, 1, 1) for i in range(4))
    k = y64[:, 5].round().long()
    turned = (k % 2).bool()
    if bool(turned.any()) and height != width:
        raise ValueError(f"a turned window must be square, got {height} x {width}")
    rows = (torch.arange(height, dtype=torch.float64, device=y.device) + 0.5) / height
    cols = (torch.arange(width, dtype=torch.float64, device=y.device) + 0.5) / width
    r = (top + hgt * rows.view(1, -1, 1)).expand(-1, height, width)
    c = (left + wid * cols.view(1, 1, -1)).expand(-1, height, width)
    maps = torch.stack([r, c], 1) * 2 - 1
    if bool((k != 0).any()):
        maps = torch.stack([dihedral(maps[i], int(k[i])) for i in range(len(k))])
    return maps


def window_frame(maps: Tensor) -> Tensor:
    """The frame (B, 6) of windows with coordinate channels ``maps`` (B, 2, H, W): the coordinates
    of the first pixel, their change from the first to the last row, and from the first to the
    last column -- the affine map from the window's pixel grid to its source, orientation
    included (a turned window's rows run along the source's columns)."""
    first = maps[:, :, 0, 0]
    return torch.cat([first, maps[:, :, -1, 0] - first, maps[:, :, 0, -1] - first], 1)


def network_condition(y: Tensor, maps: Tensor) -> Tensor:
    """What a layout model's network takes as its class labels: (B, 7) rows of the class label and
    the frame of windows with coordinate channels ``maps``."""
    return torch.cat([labels_of(y).to(maps.dtype)[:, None], window_frame(maps)], 1)


def window_conditions(y: Tensor, rows0: Tensor, cols0: Tensor, window: int, height: int, width: int) -> Tensor:
    """The conditions (B * nh * nw, 6) of the windows of a canvas (B samples of height x width)
    starting at rows ``rows0`` (B, nh) and columns ``cols0`` (B, nw): each window's region is its
    share of the canvas's (upright canvases only)."""
    b, nh, nw = y.shape[0], rows0.shape[1], cols0.shape[1]
    y64 = y.to(torch.float64)
    top, left, hgt, wid = (y64[:, i + 1] for i in range(4))
    r = top[:, None] + hgt[:, None] * rows0.to(torch.float64) / height                  # (B, nh)
    c = left[:, None] + wid[:, None] * cols0.to(torch.float64) / width                  # (B, nw)
    out = torch.empty(b, nh, nw, LAYOUT_COLUMNS, dtype=torch.float64, device=y.device)
    out[..., 0] = y64[:, 0].view(b, 1, 1)
    out[..., 1] = r[:, :, None]
    out[..., 2] = c[:, None, :]
    out[..., 3] = (hgt * window / height).view(b, 1, 1)
    out[..., 4] = (wid * window / width).view(b, 1, 1)
    out[..., 5] = y64[:, 5].view(b, 1, 1)
    return out.reshape(b * nh * nw, LAYOUT_COLUMNS).to(y.dtype)


def canvas_region(canvas_shape: Sequence[int], source_shape: Sequence[int],
                  position: Sequence[float] | None) -> tuple[float, float, float, float]:
    """The region (top, left, height, width) of a canvas in its source: the whole source without
    ``position``; else a canvas of its own size at the training scale (``source_shape``: a whole
    source's height and width in pixels at that scale) centred at ``position`` (row, column as
    fractions of the source)."""
    if position is None:
        return WHOLE_SOURCE
    h, w = canvas_shape[-2] / source_shape[0], canvas_shape[-1] / source_shape[1]
    return (float(position[0]) - h / 2, float(position[1]) - w / 2, h, w)
