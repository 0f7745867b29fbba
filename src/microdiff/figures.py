"""Image grids for previews and reports (Table 3 / Table 5 layouts)."""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import torch


def image_grid(imgs: torch.Tensor, ncol: int, pad: int = 2) -> np.ndarray:
    """(N, C, H, W) in [0, 1] -> one HxW(x3) array with ``ncol`` images per row and white gaps."""
    n, c, h, w = imgs.shape
    nrow = math.ceil(n / ncol)
    grid = np.ones((nrow * (h + pad) - pad, ncol * (w + pad) - pad, c), dtype=np.float32)
    for i in range(n):
        r, k = divmod(i, ncol)
        grid[r * (h + pad):r * (h + pad) + h, k * (w + pad):k * (w + pad) + w] = imgs[i].permute(1, 2, 0).numpy()
    return grid[..., 0] if c == 1 else grid


def labelled_grid(grid: np.ndarray, tile: int, pad: int, col_labels: Sequence[str] = (),
                  row_labels: Sequence[str] = ()) -> np.ndarray:
    """Add column headers above and row labels left of a gray ``image_grid`` (PIL's built-in font)."""
    from PIL import Image, ImageDraw, ImageFont
    font = ImageFont.load_default()
    left = 6 + max((int(font.getlength(s)) for s in row_labels), default=0) if row_labels else 0
    top = 14 if col_labels else 0
    h, w = grid.shape[:2]
    canvas = Image.new("L", (w + left, h + top), 255)
    canvas.paste(Image.fromarray(np.clip(np.rint(grid * 255), 0, 255).astype(np.uint8)), (left, top))
    draw = ImageDraw.Draw(canvas)
    for k, s in enumerate(col_labels):
        draw.text((left + k * (tile + pad) + 2, 1), s[: max(1, tile // 6)], fill=0, font=font)
    for r, s in enumerate(row_labels):
        draw.text((2, top + r * (tile + pad) + tile // 2 - 5), s, fill=0, font=font)
    return np.asarray(canvas, dtype=np.float32) / 255.0
