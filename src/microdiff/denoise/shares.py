"""Phases' shares of a volume: one log-odds offset per volume and phase that fixes each phase's
share, of the mean probabilities (``match_fractions``, at every step of the product of planes)
or of the arg-max labels (``match_label_shares``, once a volume is finished); and a phase model's
channels read as probabilities (``phase_probabilities``)."""
from __future__ import annotations

import torch
from torch import Tensor


def phase_probabilities(x: Tensor, floor: float = 1e-4) -> Tensor:
    """A phase model's one-hot channels in [0, 1] (B, K, ...) as probabilities: clipped at
    ``floor`` and normalised over the K channels (``data.encoding.probabilities``' form)."""
    p = x.clamp(min=floor)
    return p / p.sum(1, keepdim=True)


def match_fractions(logp: Tensor, fractions: Tensor, iters: int = 50, tol: float = 1e-6) -> Tensor:
    """``logp`` (B, K, ...) plus one offset per item and phase such that the mean over the
    voxels of softmax(logp + offset) is ``fractions``: iterative proportional fitting (each
    round adds log(target / current mean)), which converges for any logits with fractions > 0."""
    dims = tuple(range(2, logp.ndim))
    target = fractions.double().clamp_min(1e-12).to(logp.device)
    target = (target / target.sum()).reshape((1, -1) + (1,) * len(dims))
    offset = torch.zeros(logp.shape[:2] + (1,) * len(dims), dtype=logp.dtype, device=logp.device)
    for _ in range(iters):
        mean = torch.softmax(logp + offset, dim=1).mean(dims, keepdim=True)
        step = target.log() - mean.clamp_min(1e-300).log()
        offset = offset + step
        if float(step.abs().max()) < tol:
            break
    return logp + offset


def match_label_shares(logp: Tensor, fractions: Tensor, iters: int = 50) -> Tensor:
    """``logp`` (B, K, ...) plus one offset per item and phase such that each phase's share of
    the voxels whose arg-max it is equals ``fractions`` (to one voxel, ties aside): the hard
    counterpart of ``match_fractions``, for the labels a finished volume is read as. Coordinate
    ascent on the offsets, each step exact: phase k takes the round(f_k N) voxels where its
    log-odds over the best other phase, logp_k - max_{j != k} (logp_j + o_j), is largest, the
    offset set halfway between that count's value and the next. One offset per phase keeps the
    order of each phase's evidence: a voxel labelled k stays k if its log-odds for k rise.
    Mean probabilities are not shares: where the phases are uncertain a thin minority phase
    holds probability in many voxels that it wins in few, so a volume matched only on its mean
    probabilities comes out short of that phase once labelled."""
    k = logp.shape[1]
    target = fractions.double().clamp_min(0).to(logp.device)
    target = target / target.sum()
    flat = logp.double().flatten(2)                              # (B, K, N)
    n = flat.shape[2]
    want = torch.round(target * n).long()
    offset = torch.zeros(flat.shape[:2], dtype=flat.dtype, device=flat.device)
    for _ in range(iters):
        for j in range(k):
            shifted = flat + offset[:, :, None]
            others = torch.cat([shifted[:, :j], shifted[:, j + 1:]], 1).amax(1)      # (B, N)
            lead = (others - flat[:, j]).sort(1).values          # phase j wins where its offset > lead
            m = int(want[j])
            if m == 0:
                offset[:, j] = lead[:, 0] - 1
            elif m == n:
                offset[:, j] = lead[:, -1] + 1
            else:
                offset[:, j] = (lead[:, m - 1] + lead[:, m]) / 2
        counts = torch.stack([(flat + offset[:, :, None]).argmax(1).eq(j).sum(1) for j in range(k)], 1)
        if int((counts - want[None]).abs().max()) <= k:
            break
    return logp + offset.reshape(offset.shape + (1,) * (logp.ndim - 2)).to(logp.dtype)
