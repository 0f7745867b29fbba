"""Transport descriptors of a phase: tortuosity factor and effective diffusivity along each axis.

Both take a binary indicator array (1 = the conducting phase, 0 = insulating) of shape
(Z, Y, X), or (Y, X) for a planar section, axis order z, y, x as in ``volume``, and solve the
steady diffusion (Laplace) equation in the phase with TauFactor's ``Solver`` (Kench & Cooper,
SoftwareX 2021): a fixed potential on the two faces normal to the axis, no flux through the other
faces and through the phase's interface, voxel faces conducting between face neighbours
(6-connectivity in 3D, 4 in 2D). Per axis:

- ``effective_diffusivity``: D_eff / D, the flux through the array relative to that through the
  same array filled with the phase (TauFactor's ``D_rel``), in [0, 1]; 0 when no face-connected
  cluster of the phase joins the two faces normal to the axis (``volume.percolates``).
- ``tortuosity``: the tortuosity factor tau = vf / (D_eff / D), vf the volume fraction of the
  whole phase (TauFactor's definition, isolated and dead-end clusters included in vf); 1 for
  straight channels along the axis, inf when the phase does not percolate along it (as TauFactor
  reports), also for an empty phase.

TauFactor is an optional dependency (``pip install 'microdiff[transport]'``). It solves along
its first array axis, so the other axes are solved on transposed copies. Only the clusters that
join the two faces take part in the solve (the others carry no flux at steady state, so D_eff is
unchanged, and the solve converges faster). Convergence is TauFactor's test, checked every 100
over-relaxation (SOR) sweeps: the flux through every plane normal to the axis within
``conv_crit`` (default 1e-2, relative spread max - min over max) of the others and tau changed by
< 2e-3 since the last check, at most ``iter_limit`` (default 10000) sweeps, in float32 on the CPU
(``device``), with ``threads`` torch threads during the solve (default 1, restored after; None
keeps torch's setting): a sweep is a few memory-bound elementwise operations, and parallel
regions this small cost more than they save, badly on a shared CPU (BENCHMARKS.md). A solve that hits ``iter_limit`` returns its
last estimate with a ``RuntimeWarning``.
"""
from __future__ import annotations

import contextlib
import io
import warnings

import numpy as np

from ..core.errors import UsageError
from .morphology import _memo


def _indicator(ind) -> np.ndarray:
    a = np.asarray(ind)
    if a.ndim not in (2, 3):
        raise ValueError(f"expected a 2D or 3D indicator, got shape {a.shape}")
    return a.astype(bool)


def _taufactor():
    try:
        import taufactor
    except ImportError as e:
        raise UsageError("the transport descriptors (tortuosity, effective diffusivity) need TauFactor: "
                         f"pip install 'microdiff[transport]' (or pip install taufactor); {e}") from None
    return taufactor


def _spanning(b: np.ndarray) -> np.ndarray:
    """The face-connected clusters of ``b`` that touch both faces normal to its first axis."""
    from scipy import ndimage
    lab, _ = ndimage.label(b, structure=ndimage.generate_binary_structure(b.ndim, 1))
    both = np.intersect1d(lab[0], lab[-1])
    both = both[both > 0]
    return np.isin(lab, both) if both.size else np.zeros(b.shape, dtype=bool)


@contextlib.contextmanager
def _torch_threads(n: int | None):
    import torch
    before = torch.get_num_threads()
    if n is not None:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _relative_diffusivity(a: np.ndarray, axis: int, conv_crit: float, iter_limit: int, device: str) -> float:
    """D_eff / D along ``axis`` (one TauFactor solve)."""
    b = _spanning(np.moveaxis(a, axis, 0))
    if not b.any():
        return 0.0
    if b.all():
        return 1.0
    tf = _taufactor()
    solver = tf.Solver(np.ascontiguousarray(b, dtype=np.uint8), device=device)
    with contextlib.redirect_stdout(io.StringIO()):              # TauFactor prints its warnings
        solver.solve(iter_limit=iter_limit, verbose=False, conv_crit=conv_crit)
    if not solver.converged:
        warnings.warn(f"TauFactor did not converge along axis {axis} in {iter_limit} iterations "
                      f"(conv_crit {conv_crit}); the effective diffusivity is its last estimate", RuntimeWarning)
    return float(np.asarray(solver.D_rel).reshape(-1)[0])


def _solve(ind, conv_crit: float, iter_limit: int, device: str, threads: int | None) -> np.ndarray:
    a = _indicator(ind)
    _taufactor()                       # refuse early, and alike for every input, when it is missing

    def compute(x):
        with _torch_threads(threads if device == "cpu" else None):
            return np.array([_relative_diffusivity(x, ax, conv_crit, iter_limit, device) for ax in range(x.ndim)])
    return _memo("transport", a, (conv_crit, iter_limit, device), compute)


def effective_diffusivity(ind, conv_crit: float = 1e-2, iter_limit: int = 10000, device: str = "cpu",
                          threads: int | None = 1) -> np.ndarray:
    """(ndim,) D_eff / D of the phase along each axis (z, y, x): the steady diffusive flux through
    the array between its two faces normal to the axis, relative to the flux through the array
    filled with the phase (TauFactor ``Solver.D_rel``; module doc for the settings). In [0, 1]:
    1 for a full array, vf for straight channels along the axis, 0 when the phase does not
    percolate along it."""
    return _solve(ind, conv_crit, iter_limit, device, threads).copy()


def tortuosity(ind, conv_crit: float = 1e-2, iter_limit: int = 10000, device: str = "cpu",
               threads: int | None = 1) -> np.ndarray:
    """(ndim,) the tortuosity factor of the phase along each axis (z, y, x): tau = vf / (D_eff / D),
    vf the phase's volume fraction, D_eff / D ``effective_diffusivity`` (TauFactor's definition);
    >= 1 for a percolating phase (1 for straight channels along the axis), inf where the phase does
    not percolate along the axis or is empty."""
    a = _indicator(ind)
    d = _solve(a, conv_crit, iter_limit, device, threads)
    with np.errstate(divide="ignore"):
        return np.where(d > 0, a.mean() / np.where(d > 0, d, 1.0), np.inf)
