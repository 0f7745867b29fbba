"""Seeds derived from tuples of integers, so that every random draw can be named by what it is
for (a training step, a sample of a class) instead of by the order it happens in.

A stream id (``STREAM_*``) after a seed names what the draws are for; the ids are fixed forever
(changing one changes every number the project produces). Samples of a class are the exception
that keeps the shortest form, ``sample_seed(seed, class index, sample index)``: there the class
index stands where a stream id would (class 2 shares ``derive_seed(seed, 2, i)`` with training
step i of a run seeded alike; the two never meet).
"""
import numpy as np

STREAM_INIT = 0            # network initialisation: derive_seed(seed, STREAM_INIT)
STREAM_DATA_ORDER = 1      # the permutation of epoch e: derive_seed(seed, STREAM_DATA_ORDER, e)
STREAM_STEP = 2            # every draw of training step s: derive_seed(seed, STREAM_STEP, s)
STREAM_FIBER_REGIONS = 7   # `prepare fiber` region boxes of source i: default_rng([seed, 7, i])
STREAM_WINDOWS = 11        # window offsets of a sample on a large or periodic canvas: derive_seed(sample seed, 11)
STREAM_PLANES = 12         # section i normal to axis a of a volume: derive_seed(volume seed, 12, a, i)
STREAM_VOLUMES = 13        # volume i with classes (cz, cy, cx): derive_seed(seed, 13, cz, cy, cx, i)
STREAM_MARGINAL = 14       # 2D sample i of class c for a volume run's voxel marginal: derive_seed(seed, 14, c, i)
STREAM_CANDIDATES = 15     # candidate k >= 1 of a sample steered to targets: derive_seed(sample seed, 15, k)
STREAM_FRACTION = 16       # the start u_0 of a volume run's quasi-random fraction draws: derive_seed(run seed, 16)


def derive_seed(*parts: int) -> int:
    """A 63-bit seed from integers, via NumPy's SeedSequence (well mixed, stable across versions)."""
    return int(np.random.SeedSequence([int(p) for p in parts]).generate_state(1, np.uint64)[0] >> 1)


def sample_seed(seed: int, class_index: int, index: int) -> int:
    """The seed of sample ``index`` of a class: independent of batch size, process count and of
    which other classes are sampled in the same run."""
    return derive_seed(seed, class_index, index)


def candidate_seeds(seed: int, k: int) -> list[int]:
    """The seeds of a sample's ``k`` candidates (``--target-candidates``): its own seed first, so
    one candidate is the sample itself, then derive_seed(seed, STREAM_CANDIDATES, j)."""
    return [int(seed)] + [derive_seed(seed, STREAM_CANDIDATES, j) for j in range(1, k)]


def volume_seed(seed: int, classes: tuple[int, int, int], index: int) -> int:
    """The seed of volume ``index`` whose sections normal to z, y, x have the classes ``classes``."""
    return derive_seed(seed, STREAM_VOLUMES, *classes, index)
