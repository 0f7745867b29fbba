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
    """Add column headers above and row labels left of an ``image_grid``, gray or RGB (PIL's built-in font)."""
    from PIL import Image, ImageDraw, ImageFont
    font = ImageFont.load_default()
    left = 6 + max((int(font.getlength(s)) for s in row_labels), default=0) if row_labels else 0
    top = 14 if col_labels else 0
    h, w = grid.shape[:2]
    mode, white, black = ("RGB", (255, 255, 255), (0, 0, 0)) if grid.ndim == 3 else ("L", 255, 0)
    canvas = Image.new(mode, (w + left, h + top), white)
    canvas.paste(Image.fromarray(np.clip(np.rint(grid * 255), 0, 255).astype(np.uint8)), (left, top))
    draw = ImageDraw.Draw(canvas)
    for k, s in enumerate(col_labels):
        draw.text((left + k * (tile + pad) + 2, 1), s[: max(1, tile // 6)], fill=black, font=font)
    for r, s in enumerate(row_labels):
        draw.text((2, top + r * (tile + pad) + tile // 2 - 5), s, fill=black, font=font)
    return np.asarray(canvas, dtype=np.float32) / 255.0


def orthogonal_slices(volume: np.ndarray, labels: np.ndarray | None = None, min_panel: int = 192) -> np.ndarray:
    """The three mid-planes of a (Z, Y, X) volume in [0, 1] side by side, titled, with the phase
    labels (scaled to [0, 1]) in a second row when given: a gray image in [0, 1]."""
    from PIL import Image, ImageDraw, ImageFont
    z, y, x = volume.shape
    rows = [volume]
    if labels is not None:
        rows.append(labels.astype(np.float32) / max(1, int(labels.max())))
    titles = [f"z = {z // 2} (x right, y down)", f"y = {y // 2} (x right, z down)", f"x = {x // 2} (y right, z down)"]
    scale = max(1, math.ceil(min_panel / max(z, y, x)))
    font = ImageFont.load_default()
    pad, top = 6, 16
    planes = [[v[z // 2], v[:, y // 2], v[:, :, x // 2]] for v in rows]
    widths = [p.shape[1] * scale for p in planes[0]]
    height = max(p.shape[0] for p in planes[0]) * scale
    canvas = Image.new("L", (sum(widths) + pad * 4, (height + top + pad) * len(rows) + pad), 255)
    draw = ImageDraw.Draw(canvas)
    for r, row in enumerate(planes):
        x0, y0 = pad, pad + r * (height + top + pad)
        for k, p in enumerate(row):
            img = Image.fromarray(np.clip(np.rint(p * 255), 0, 255).astype(np.uint8))
            canvas.paste(img.resize((p.shape[1] * scale, p.shape[0] * scale), Image.NEAREST), (x0, y0 + top))
            draw.text((x0, y0 + 2), titles[k] + (" labels" if r else ""), fill=0, font=font)
            x0 += widths[k] + pad
    return np.asarray(canvas, dtype=np.float32) / 255.0
