"""Canvases larger than the network's window, and the windows that cover them.

``Canvas`` is what a sample fills: an image (height, width) or a volume (depth, height, width),
every side at least the training window, a torus when periodic. ``WindowedDenoiser`` denoises
an image canvas of any size >= the window, or a periodic torus (windows wrap around), as
overlapping windows of the training size at every step; their predictions are fused with
weights that taper towards window edges (MultiDiffusion, Bar-Tal et al. 2023, with tapered
weights). The window grid moves randomly at every call, per sample, so no tile grid survives.
``ChunkedDenoiser`` bounds the batch each network call sees.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import torch
from torch import Tensor

from ..core.checks import check_float
from ..core.errors import SettingError
from .denoiser import DenoiserOutput, DenoiserWrapper
from .layout import is_layout, window_conditions

MAX_IMAGE_SIDE, MAX_VOLUME_SIDE = 65536, 4096
MAX_CANVAS_PIXELS = 1 << 26         # 8192 x 8192
SIZE_FORMS = {2: "a side in pixels (256) or WIDTHxHEIGHT (384x256)", 3: "a cube side in voxels (64) or XxYxZ (96x64x64)"}


@dataclass(frozen=True)
class Canvas:
    """What a sample fills: ``shape`` (height, width) of an image or (depth, height, width) of a
    volume (array order Z, Y, X), a torus when ``periodic``. Image canvases larger than the
    window, and periodic ones, are denoised as windows that overlap by at least ``overlap``
    of a window (``WindowedDenoiser``); a volume's sections are canvases too (``section``)."""
    shape: tuple[int, ...]
    periodic: bool = False
    overlap: float = 0.2

    @classmethod
    def of(cls, size, window: int, ndim: int = 2, periodic: bool = False, overlap: float = 0.2,
           name: str = "size") -> "Canvas":
        """``size``: None (the training window), an int (a square or cube), a tuple in array
        order, or text as viewers write it: "S", "WIDTHxHEIGHT" (images), "XxYxZ" (volumes).
        ``name``: the setting that gave it (for the error message)."""
        if size is None:
            shape = (window,) * ndim
        elif isinstance(size, str):
            shape = parse_size(size, ndim, name)
        elif isinstance(size, int) and not isinstance(size, bool):
            shape = (size,) * ndim
        else:
            try:
                shape = tuple(int(v) for v in size)
            except (TypeError, ValueError):
                shape = ()
            if len(shape) != ndim:
                raise SettingError(name, size, f"expected {SIZE_FORMS[ndim]}")
        most = MAX_IMAGE_SIDE if ndim == 2 else MAX_VOLUME_SIDE
        for axis, v in zip("zyx"[-ndim:] if ndim == 3 else ("height", "width"), shape):
            if not window <= v <= most:
                raise SettingError(name, size, f"the {axis} side is {v}; every side must be at least the model's "
                                   f"training size {window} (and at most {most})")
        if ndim == 2 and shape[0] * shape[1] > MAX_CANVAS_PIXELS:
            h, w = shape
            raise SettingError(name, size, f"{h * w:,} pixels would need about {h * w * 48 / 1e9:.1f} GB while "
                               f"sampling; the limit is {MAX_CANVAS_PIXELS:,} pixels (8192 x 8192)")
        check_float("overlap", overlap, 0.0, 0.9, error=SettingError)
        return cls(shape, bool(periodic), float(overlap))

    @property
    def height(self) -> int:
        return self.shape[-2]

    @property
    def width(self) -> int:
        return self.shape[-1]

    @property
    def voxels(self) -> int:
        return math.prod(self.shape)

    def section(self, axis: int) -> "Canvas":
        """The canvas of a volume's sections normal to array axis ``axis``."""
        return Canvas(tuple(n for k, n in enumerate(self.shape) if k != axis), self.periodic, self.overlap)

    def text(self) -> str:
        """The size as viewers write it: WIDTHxHEIGHT, or XxYxZ."""
        return "x".join(str(n) for n in reversed(self.shape))

    def plain(self, window: int) -> bool:
        """One training window, not periodic: the network's own domain."""
        return self.shape == (window, window) and not self.periodic

    def wrap(self, denoiser, seeds: Sequence[int], window: int):
        """The denoiser on this image canvas (itself where the canvas is one plain window)."""
        if self.plain(window):
            return denoiser
        return WindowedDenoiser(denoiser, window, seeds, self.overlap, self.periodic)


def parse_size(text: str, ndim: int = 2, name: str = "size") -> tuple[int, ...]:
    """The shape in array order of "S", "WIDTHxHEIGHT" (``ndim`` 2) or "XxYxZ" (``ndim`` 3)."""
    try:
        nums = [int(p) for p in str(text).lower().replace(" ", "").split("x")]
    except ValueError:
        nums = []
    if len(nums) == 1:
        return (nums[0],) * ndim
    if len(nums) == ndim:
        return tuple(reversed(nums))
    raise SettingError(name, text, f"expected {SIZE_FORMS[ndim]}")


class ShiftSource:
    """Per-sample generators for the window offsets, so sample i's windows depend on its seed only."""

    def __init__(self, seeds: Sequence[int]):
        from ..core.seeding import STREAM_WINDOWS, derive_seed
        self.generators = [torch.Generator().manual_seed(derive_seed(int(s), STREAM_WINDOWS)) for s in seeds]

    def uniform(self, n: int) -> Tensor:
        """(len(seeds), n) uniform numbers in [0, 1), float64."""
        return torch.stack([torch.rand(n, generator=g, dtype=torch.float64) for g in self.generators])


def windows_per_axis(length: int, window: int, overlap: float, periodic: bool) -> int:
    """How many windows cover an axis with at least ``overlap`` (a fraction of the window) between
    neighbours (non-periodic: including the two at the ends)."""
    step = window * (1 - overlap)
    if periodic:
        return max(1, math.ceil(length / step - 1e-9))
    return 1 if length == window else math.ceil((length - window) / step - 1e-9) + 1


def window_starts(u: Tensor, length: int, window: int, n: int, periodic: bool) -> Tensor:
    """(B, n) window starts on an axis for random numbers ``u`` (B,) in [0, 1).

    Periodic: n starts evenly spaced by length / n, all shifted by u * length / n (mod length).
    Non-periodic: the first window at 0 and the last at length - window; the ones between evenly
    spaced and shifted together by up to +- their overlap, which keeps the axis covered.
    """
    k = torch.arange(n, dtype=torch.float64)
    if periodic:
        return torch.floor(u[:, None] * length / n + k[None, :] * length / n).long() % length
    if n == 1:
        return torch.zeros(len(u), 1, dtype=torch.long)
    spacing = (length - window) / (n - 1)
    shift = (2 * u[:, None] - 1) * (window - spacing)
    starts = torch.round(k[None, :] * spacing + shift).clamp(0, length - window).long()
    starts[:, 0], starts[:, -1] = 0, length - window
    return starts


def taper(window: int, ramp: int, floor: float = 1e-3) -> Tensor:
    """Fusion weights along one window axis: 1 inside, falling linearly over ``ramp`` pixels
    towards each edge (never below ``floor``)."""
    u = torch.arange(window, dtype=torch.float64)
    edge = torch.minimum(u, window - 1 - u) + 1
    return (edge / (ramp + 1)).clamp(floor, 1.0)


class WindowedDenoiser(DenoiserWrapper):
    """The wrapped denoiser on a canvas of any size >= its window (and on a torus with ``periodic``)."""

    def __init__(self, inner, window: int, seeds: Sequence[int], overlap: float = 0.2, periodic: bool = False,
                 chunk: int = 64):
        super().__init__(inner)
        self.window, self.overlap, self.periodic, self.chunk = int(window), float(overlap), bool(periodic), chunk
        self.shifts = ShiftSource(seeds)
        ramp = max(1, round(self.overlap * self.window / 2))
        w1 = taper(self.window, ramp)
        self.weight = w1[:, None] * w1[None, :]

    def layout(self, height: int, width: int) -> tuple[int, int]:
        return (windows_per_axis(height, self.window, self.overlap, self.periodic),
                windows_per_axis(width, self.window, self.overlap, self.periodic))

    def _indices(self, b: int, height: int, width: int) -> tuple[Tensor, Tensor]:
        """Row and column pixel indices of every window: (B, nh, h) and (B, nw, w)."""
        nh, nw = self.layout(height, width)
        u = self.shifts.uniform(2)[:b]
        r0 = window_starts(u[:, 0], height, self.window, nh, self.periodic)
        c0 = window_starts(u[:, 1], width, self.window, nw, self.periodic)
        off = torch.arange(self.window)
        rows, cols = r0[..., None] + off, c0[..., None] + off
        if self.periodic:
            rows, cols = rows % height, cols % width
        return rows, cols

    def __call__(self, x: Tensor, t: Tensor, y: Tensor) -> DenoiserOutput:
        b, c, height, width = x.shape
        if height == width == self.window and not self.periodic:
            self.shifts.uniform(2)                       # keep the stream in step with other sizes
            return self.inner(x, t, y)
        rows, cols = (i.to(x.device) for i in self._indices(b, height, width))
        nh, nw, h = rows.shape[1], cols.shape[1], self.window
        bi = torch.arange(b, device=x.device).view(b, 1, 1, 1, 1)
        ri, ci = rows.view(b, nh, 1, h, 1), cols.view(b, 1, nw, 1, h)
        windows = x.permute(0, 2, 3, 1)[bi, ri, ci]                          # (B, nh, nw, h, w, C)
        n = nh * nw
        if is_layout(y):          # each window's share of the canvas's region in its source
            yw = window_conditions(y, rows[..., 0], cols[..., 0], h, height, width)
        else:
            yw = y.repeat_interleave(n)
        out = denoise_in_chunks(self.inner, windows.reshape(b * n, h, h, c).permute(0, 3, 1, 2),
                                t.repeat_interleave(n), yw, self.chunk)
        flat = (ri * width + ci).expand(b, nh, nw, h, h).reshape(b, -1)        # canvas pixel of each window pixel
        wgt = self.weight.to(x.device, x.dtype).expand(b, nh, nw, h, h).reshape(b, -1)
        norm = torch.zeros(b, height * width, dtype=x.dtype, device=x.device).scatter_add_(1, flat, wgt)

        def fuse(field: Tensor) -> Tensor:
            f = field.reshape(b, nh, nw, c, h, h).permute(0, 1, 2, 4, 5, 3).reshape(b, -1, c)
            acc = torch.zeros(b, height * width, c, dtype=x.dtype, device=x.device)
            acc.scatter_add_(1, flat[..., None].expand(-1, -1, c), f * wgt[..., None])
            return (acc / norm[..., None]).view(b, height, width, c).permute(0, 3, 1, 2)
        return self.output(x, t, fuse(out.eps), None if out.v is None else fuse(out.v))


def denoise_in_chunks(inner, x: Tensor, t: Tensor, y: Tensor, chunk: int) -> DenoiserOutput:
    """``inner`` on a batch ``chunk`` items at a time (bounded memory at any batch size)."""
    if len(x) <= chunk:
        return inner(x, t, y)
    outs = [inner(x[s:s + chunk], t[s:s + chunk], y[s:s + chunk]) for s in range(0, len(x), chunk)]
    v = None if outs[0].v is None else torch.cat([o.v for o in outs])
    return DenoiserOutput(torch.cat([o.eps for o in outs]), torch.cat([o.x0 for o in outs]), v)


class ChunkedDenoiser(DenoiserWrapper):
    """The wrapped denoiser on batches of any size, ``chunk`` items per call."""

    def __init__(self, inner, chunk: int = 64):
        super().__init__(inner)
        self.chunk = int(chunk)

    def __call__(self, x: Tensor, t: Tensor, y: Tensor) -> DenoiserOutput:
        return denoise_in_chunks(self.inner, x, t, y, self.chunk)
