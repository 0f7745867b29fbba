"""A verdict per class: every figure of an evaluation beside its real floor.

The *floor* of a figure is the same figure computed for held-out real images of the class
(``evaluate --reference``, made by ``prepare --holdout``) against the same training set: what
real, unseen images of that material score. Each check reduces to one *score* and is marked
``within``, ``near`` or ``outside`` by the thresholds of ``RULES`` (README, "Reading a
report"); a check that needs the floor and has none says ``no floor``.

- phase fraction (per phase): |mean generated - mean training| / u, u the standard deviation
  of the training images' fractions but at least 2 points; 0.5 and 1.0 (a shift of half a
  spread is hard to see in a grid, a whole one is not; for data whose images all hold about the
  same fraction, within means within 1 point).
- phase spread (per phase): the standard deviation of the generated images' fractions / the
  training images'; within a factor 1.5 and 3 either way (how much a property varies between
  samples of that size is what a user simulating on several of them inherits).
- S2 (per phase): the largest |mean S2 - training mean S2| over r, generated / floor, the floor
  scaled to the generated count (the error of a mean of n unbiased images falls as 1/sqrt n);
  1.5, 3.
- E_S, E_G, E_px: median error to the nearest training image, generated / floor; 1.5, 3.
- KID: the gap between the 90 % bootstrap intervals of generated and floor, in units of the
  floor's upper bound; 0 (the intervals overlap) and 1.
- copies: the fraction of generated images closer to a training image (pixels, best rotation,
  mirror and shift; ``metrics.copies``) than the 1st percentile of the floor's distances
  (``metrics.copies.floor_percentile``), beyond the count chance gives: independent images fall
  below it 1 % of the time, so up to the 95th percentile of Binomial(n, 0.01) of n generated
  images are forgiven; 0.05 and 0.15.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

WITHIN, NEAR, OUTSIDE, NO_FLOOR = "within", "near", "outside", "no floor"


@dataclass(frozen=True)
class Rule:
    score: str             # what the thresholds apply to
    within: float          # score <= within: within
    near: float            # score <= near: near; above: outside

    def judge(self, score: float) -> str:
        if not math.isfinite(score):
            return NO_FLOOR
        return WITHIN if score <= self.within else NEAR if score <= self.near else OUTSIDE


RULES = {
    "phase fraction": Rule("|mean generated - mean training| / max(training std per image, 2 points)", 0.5, 1.0),
    "phase spread": Rule("std of the generated fractions / the training's, or its inverse, whichever is larger; "
                         "minus 1", 0.5, 2.0),
    "S2": Rule("max over r of |mean S2 - training mean S2|: generated / floor at the generated count", 1.5, 3.0),
    "E": Rule("median error to the nearest training image: generated / floor", 1.5, 3.0),
    "KID": Rule("gap between the 90 % bootstrap intervals / the floor's upper bound (0: they overlap)", 0.0, 1.0),
    "copies": Rule("fraction of generated images closer to a training image than the floor's 1st percentile, "
                   "beyond the 95 % chance count", 0.05, 0.15),
}
COPY_PERCENTILE = 1.0
FRACTION_UNIT = 0.02        # the phase-fraction check's unit is never below 2 points


@dataclass
class SetScores:
    """One set of images (generated, or held-out real) scored against one class's training set."""
    errors: dict[str, np.ndarray]                 # descriptor letter -> E in % per image
    vf: np.ndarray                                # (N, K) phase fractions
    s2: np.ndarray                                # (N, K, R) radially averaged S2
    copy: np.ndarray                              # (N,) copy distance in % (metrics.copies)
    kid: tuple[float, float, float] = (math.nan,) * 3     # (KID, lower, upper)


@dataclass(frozen=True)
class Verdict:
    check: str              # e.g. "phase 1 fraction", "E_S", "copies"
    generated: float        # the figure for the generated images
    floor: float            # the same figure for the held-out real images (nan: no floor)
    score: float            # what RULES[rule] judges
    verdict: str            # within | near | outside | no floor
    rule: str               # key of RULES
    detail: str = ""

    @property
    def ratio(self) -> float:
        return self.generated / self.floor if self.floor and math.isfinite(self.floor) else math.nan


@dataclass
class ClassVerdicts:
    name: str
    checks: list[Verdict] = field(default_factory=list)

    @property
    def overall(self) -> str:
        """The worst verdict of the checks that have one."""
        order = [OUTSIDE, NEAR, WITHIN]
        seen = {v.verdict for v in self.checks}
        return next((o for o in order if o in seen), NO_FLOOR)


def _verdict(check: str, rule: str, generated: float, floor: float, score: float, detail: str = "") -> Verdict:
    return Verdict(check, float(generated), float(floor), float(score), RULES[rule].judge(score), rule, detail)


def _ratio(a: float, b: float) -> float:
    if not (math.isfinite(a) and math.isfinite(b)):
        return math.nan
    return a / b if b > 0 else (math.inf if a > 0 else 1.0)


def _phases_judged(k: int) -> list[int]:
    """Two phases are one fraction (phase 1's); more are judged phase by phase."""
    return [1] if k == 2 else list(range(k))


def phase_checks(gen: SetScores, train_vf: np.ndarray, train_s2: np.ndarray, ref: SetScores | None) -> list[Verdict]:
    out = []
    t_mean, t_std = train_vf.mean(0), train_vf.std(0)
    g_mean = gen.vf.mean(0)
    s2_gen = np.abs(gen.s2.mean(0) - train_s2.mean(0)).max(-1)
    s2_ref = np.abs(ref.s2.mean(0) - train_s2.mean(0)).max(-1) if ref is not None else None
    for k in _phases_judged(gen.vf.shape[1]):
        floor = float(ref.vf[:, k].mean()) if ref is not None else math.nan
        score = abs(g_mean[k] - t_mean[k]) / max(t_std[k], FRACTION_UNIT)
        out.append(_verdict(f"phase {k} fraction", "phase fraction", g_mean[k], floor, score,
                            f"training {t_mean[k]:.4f} ± {t_std[k]:.4f}; generated {100 * (g_mean[k] - t_mean[k]):+.2f} "
                            "points"))
        g_std = gen.vf[:, k].std()
        if len(gen.vf) > 1 and t_std[k] > 0 and g_std > 0:
            spread = max(g_std / t_std[k], t_std[k] / g_std) - 1
            out.append(_verdict(f"phase {k} spread", "phase spread", g_std, ref.vf[:, k].std() if ref is not None
                                else math.nan, spread, f"std per image: generated {g_std:.4f}, training {t_std[k]:.4f}"))
    scale = math.sqrt(len(ref.s2) / len(gen.s2)) if ref is not None else math.nan
    for k in _phases_judged(gen.vf.shape[1]):
        floor = float(s2_ref[k]) if s2_ref is not None else math.nan
        out.append(_verdict(f"phase {k} S2", "S2", s2_gen[k], floor, _ratio(s2_gen[k], floor * scale),
                            f"floor at {len(gen.s2)} images: {floor * scale:.3g}" if ref is not None else ""))
    return out


def descriptor_checks(gen: SetScores, ref: SetScores | None) -> list[Verdict]:
    out = []
    for d, v in gen.errors.items():
        g = float(np.median(v))
        f = float(np.median(ref.errors[d])) if ref is not None else math.nan
        out.append(_verdict(f"E_{d}", "E", g, f, _ratio(g, f), "median % to the nearest training image"))
    return out


def kid_check(gen: SetScores, ref: SetScores | None) -> list[Verdict]:
    kid, lo, _ = gen.kid
    if not math.isfinite(kid):
        return []
    if ref is None or not math.isfinite(ref.kid[0]):
        return [_verdict("KID", "KID", kid, math.nan, math.nan)]
    rk, _, rhi = ref.kid
    gap = max(0.0, lo - rhi) / max(abs(rhi), 1e-6)
    return [_verdict("KID", "KID", kid, rk, gap, f"generated [{gen.kid[1]:.2e}, {gen.kid[2]:.2e}], floor "
                     f"[{ref.kid[1]:.2e}, {ref.kid[2]:.2e}] (90 % bootstrap)")]


def copy_check(gen: SetScores, ref: SetScores | None) -> list[Verdict]:
    from ..metrics.copies import closer_than_floor
    g = float(np.median(gen.copy))
    if ref is None:
        return [_verdict("copies", "copies", g, math.nan, math.nan, "median copy distance %; needs held-out images")]
    from scipy.stats import binom
    cut, frac = closer_than_floor(gen.copy, ref.copy, COPY_PERCENTILE)
    n = len(gen.copy)
    hits = int(round(frac * n))
    chance = int(binom.ppf(0.95, n, COPY_PERCENTILE / 100))
    return [_verdict("copies", "copies", g, float(np.median(ref.copy)), max(0, hits - chance) / n,
                     f"{hits} of {n} closer than the floor's 1st percentile ({cut:.3g} %); chance gives up to "
                     f"{chance}")]


def class_verdicts(name: str, gen: SetScores, train_vf: np.ndarray, train_s2: np.ndarray,
                   ref: SetScores | None = None) -> ClassVerdicts:
    """Every check of one class (module docstring), in a fixed order."""
    return ClassVerdicts(name, phase_checks(gen, train_vf, train_s2, ref) + descriptor_checks(gen, ref)
                         + kid_check(gen, ref) + copy_check(gen, ref))
