"""Seeds derived from tuples of integers, so that every random draw can be named by what it is
for (a training step, a sample of a class) instead of by the order it happens in."""
import numpy as np


def derive_seed(*parts: int) -> int:
    """A 63-bit seed from integers, via NumPy's SeedSequence (well mixed, stable across versions)."""
    return int(np.random.SeedSequence([int(p) for p in parts]).generate_state(1, np.uint64)[0] >> 1)
