"""What each training step draws: the global data order and the step's randomness, pure
functions of (seed, step), and the learning-rate and EMA schedules."""
from __future__ import annotations

import math

import torch

from ..core.seeding import STREAM_DATA_ORDER, STREAM_STEP, derive_seed
from ..data.transforms import AUGMENT_ELEMENTS


class DataOrder:
    """Global sample order: epoch e visits a permutation of all N items (seeded by (seed, e)),
    and global batch s takes positions s*B ... s*B + B - 1 of the concatenated epochs."""

    def __init__(self, n: int, batch_size: int, seed: int):
        self.n, self.b, self.seed = n, batch_size, seed
        self._perms: dict[int, torch.Tensor] = {}

    def perm(self, epoch: int) -> torch.Tensor:
        if epoch not in self._perms:
            if len(self._perms) > 4:
                self._perms.clear()
            g = torch.Generator().manual_seed(derive_seed(self.seed, STREAM_DATA_ORDER, epoch))
            self._perms[epoch] = torch.randperm(self.n, generator=g)
        return self._perms[epoch]

    def batch(self, step: int) -> torch.Tensor:
        pos = torch.arange(step * self.b, (step + 1) * self.b)
        epochs = pos // self.n
        out = torch.empty(self.b, dtype=torch.long)
        for e in epochs.unique().tolist():
            m = epochs == e
            out[m] = self.perm(e)[pos[m] % self.n]
        return out


def step_randomness(seed: int, step: int, batch: int, shape: tuple[int, ...], timesteps: int,
                    label_dropout: float, augment: str, draw_t=None) -> dict[str, torch.Tensor]:
    """All random draws of one global batch, a pure function of (seed, step). Timesteps are
    uniform, or ``draw_t(generator, batch)`` (the recipe's log-normal noise levels, say). The
    dihedral element of each image (``data.transforms.dihedral``) is drawn from ``AUGMENT_ELEMENTS``
    of ``augment`` (``train.augment``)."""
    g = torch.Generator().manual_seed(derive_seed(seed, STREAM_STEP, step))
    elements = torch.tensor(AUGMENT_ELEMENTS[augment])
    return {
        "t": torch.randint(0, timesteps, (batch,), generator=g) if draw_t is None else draw_t(g, batch),
        "noise": torch.randn((batch, *shape), generator=g),
        "drop": torch.rand(batch, generator=g) < label_dropout,
        "dihedral": elements[torch.randint(0, len(elements), (batch,), generator=g)],
    }


def lr_at(step: int, cfg) -> float:
    """The learning rate of ``step`` (0-based) under ``cfg`` (a ``TrainConfig``): a linear warm-up
    over ``warmup_steps``, then ``lr`` (``lr_decay = "none"``), or a half cosine from ``lr`` down to
    0 at ``steps`` (``"cosine"``; a resumed run with more steps continues on the longer curve)."""
    if cfg.warmup_steps > 0 and step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    if cfg.lr_decay == "cosine":
        span = max(cfg.steps - cfg.warmup_steps, 1)
        done = min(max(step - cfg.warmup_steps, 0) / span, 1.0)
        return cfg.lr * 0.5 * (1.0 + math.cos(math.pi * done))
    return cfg.lr


def ema_decay_at(step: int, decay: float) -> float:
    """EMA decay with the usual warm-up min(decay, (1 + s) / (10 + s)), so short runs average sensibly."""
    return min(decay, (1 + step) / (10 + step))
