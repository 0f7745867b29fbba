"""How images become the network's channels, and back: one ``Encoding`` per model.

- ``gray``: one channel, the gray value g in [0, 1] as 2g - 1 (the paper).
- ``rgb``: three channels, each colour channel as 2c - 1 (colour micrographs).
- ``phases``: K channels, the one-hot indicator of each pixel's phase as 2 [id == k] - 1.
  One-hot treats the phases symmetrically: every pair of phases is the same distance apart, so a
  boundary between phase 0 and phase 2 need not pass through phase 1, as it must when ids are
  diffused as ordered gray levels. A sample's channel values, brought to [0, 1], are normalised
  to per-phase probabilities, and its label map is their arg-max (the first phase on ties).

Stored training data are uint8 (B, C, H, W): gray levels, RGB, or phase ids (C = 1). The math
takes arrays and returns arrays; torch is imported where tensors are made.
"""
from __future__ import annotations

from dataclasses import dataclass

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from torch import Tensor

KINDS = ("gray", "rgb", "phases")
MAX_PHASES = 16

# one colour per phase for label maps a person looks at (phase 0 dark, then distinct hues)
PALETTE = np.array([
    [0.10, 0.10, 0.12], [0.90, 0.62, 0.10], [0.20, 0.55, 0.85], [0.85, 0.25, 0.25], [0.35, 0.75, 0.35],
    [0.65, 0.45, 0.80], [0.95, 0.95, 0.90], [0.55, 0.35, 0.20], [0.95, 0.55, 0.75], [0.50, 0.50, 0.50],
    [0.75, 0.80, 0.20], [0.20, 0.80, 0.80], [0.10, 0.30, 0.55], [0.60, 0.10, 0.40], [0.30, 0.45, 0.15],
    [0.98, 0.80, 0.55]], dtype=np.float32)


@dataclass(frozen=True)
class Encoding:
    """The network's view of an image: ``kind`` (gray | rgb | phases) and, for phases, K."""
    kind: str = "gray"
    phases: int = 0

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"encoding kind {self.kind!r}: choose {', '.join(KINDS)}")
        if (self.kind == "phases") != (self.phases >= 2) or self.phases > MAX_PHASES:
            raise ValueError(f"encoding {self.kind} with {self.phases} phases: phases take 2..{MAX_PHASES}, "
                             "the others 0")

    @classmethod
    def of_model(cls, model_config) -> "Encoding":
        """The encoding of a ``ModelConfig`` (``phases`` >= 2: phases; 3 channels: rgb; else gray)."""
        if model_config.phases >= 2:
            return cls("phases", model_config.phases)
        return cls("rgb") if model_config.image_channels == 3 else cls("gray")

    @property
    def channels(self) -> int:
        """Network channels."""
        return {"gray": 1, "rgb": 3}.get(self.kind, self.phases)

    @property
    def stored_channels(self) -> int:
        """Channels of the stored uint8 data (phase ids are one channel)."""
        return 3 if self.kind == "rgb" else 1

    def encode(self, stored: Tensor) -> Tensor:
        """Stored uint8 (B, C, H, W) -> float (B, channels, H, W) in [-1, 1]."""
        import torch
        if self.kind != "phases":
            return stored.float() / 127.5 - 1
        ids = stored[:, 0].long()
        if int(ids.max()) >= self.phases:
            raise ValueError(f"phase id {int(ids.max())} in data of {self.phases} phases")
        return torch.nn.functional.one_hot(ids, self.phases).permute(0, 3, 1, 2).float() * 2 - 1

    def encode_labels(self, labels: Tensor) -> Tensor:
        """Label maps (..., H, W) of ids -> the channels (..., K, H, W) in [-1, 1] (known pixels)."""
        import torch
        one = torch.nn.functional.one_hot(labels.long(), self.phases).float() * 2 - 1
        return one.movedim(-1, -3)


def probabilities(unit: np.ndarray, axis: int = 0) -> np.ndarray:
    """Channel values in [0, 1] normalised to sum 1 along ``axis`` (uniform where all are 0)."""
    u = np.clip(np.asarray(unit, dtype=np.float32), 0, 1)
    total = u.sum(axis=axis, keepdims=True)
    k = u.shape[axis]
    return np.where(total > 0, u / np.maximum(total, 1e-12), np.float32(1.0 / k)).astype(np.float32)


def argmax_labels(unit: np.ndarray, axis: int = 0) -> np.ndarray:
    """The most probable phase of each pixel (uint8 ids; the first phase on ties)."""
    return np.argmax(np.asarray(unit), axis=axis).astype(np.uint8)


def colorize(labels: np.ndarray) -> np.ndarray:
    """A label map (H, W) as an RGB image (H, W, 3) in [0, 1], one palette colour per phase."""
    return PALETTE[np.asarray(labels, dtype=np.int64) % len(PALETTE)]


def viewable(images, encoding: Encoding):
    """Samples (N, C, H, W) in [0, 1] as a person views them: a phase model's as colour-mapped
    label maps (N, 3, H, W), others as they are (a tensor in, a tensor out)."""
    if encoding.kind != "phases":
        return images
    import torch
    rgb = colorize(argmax_labels(images.numpy(), axis=1))               # (N, H, W, 3)
    return torch.from_numpy(np.ascontiguousarray(rgb.transpose(0, 3, 1, 2)))


def label_levels(labels: np.ndarray, phases: int) -> np.ndarray:
    """A label map as gray k / (K - 1) in [0, 1] (how ``*_labels.png`` stores ids; exact in 8 bits)."""
    return np.asarray(labels, dtype=np.float32) / max(1, phases - 1)


def levels_to_labels(gray8: np.ndarray, phases: int, source: str = "label map") -> np.ndarray:
    """8-bit gray levels round(255 k / (K - 1)) back to ids k; other levels are refused."""
    from ..core.errors import ImageError
    g = np.asarray(gray8, dtype=np.int64)
    ids = np.rint(g * (phases - 1) / 255.0).astype(np.int64)
    expected = np.rint(255.0 * ids / max(1, phases - 1)).astype(np.int64)
    if (expected != g).any():
        bad = int(g[expected != g].ravel()[0])
        raise ImageError(f"{source}: gray level {bad} is not one of the {phases} phase levels round(255 k / "
                         f"{phases - 1}); write label maps as phase ids (.npy) or as those levels")
    return ids.astype(np.uint8)


__all__ = ["KINDS", "MAX_PHASES", "PALETTE", "Encoding", "probabilities", "argmax_labels", "colorize", "viewable",
           "label_levels", "levels_to_labels"]
