"""Phase segmentation of gray micrographs into label maps (uint8 phase ids, 0 = darkest phase).

Methods (``--segment``): ``otsu`` (two phases, Otsu's threshold), ``multiotsu:K`` (K phases,
the K - 1 thresholds that maximise the between-class variance of the 256-bin histogram, found
exactly by dynamic programming), ``threshold:T`` or ``threshold:T1,T2,...`` (fixed thresholds in
[0, 1]). A pixel's phase is the number of thresholds it lies above, the convention of
``descriptors.segment`` (Otsu's threshold t = (k + 1) / 256 for the best split after bin k).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..core.errors import SettingError

BINS = 256


@dataclass(frozen=True)
class Segmentation:
    """A parsed ``--segment`` method."""
    method: str                          # otsu | multiotsu | threshold
    phases: int
    thresholds: tuple[float, ...] = ()   # fixed thresholds (method threshold)

    @classmethod
    def parse(cls, text: str) -> "Segmentation":
        name, _, arg = text.strip().partition(":")
        if name == "otsu" and not arg:
            return cls("otsu", 2)
        if name == "multiotsu":
            try:
                k = int(arg)
            except ValueError:
                k = 0
            if not 2 <= k <= 8:
                raise SettingError("segment", text, "multiotsu needs a phase count 2..8, e.g. multiotsu:3")
            return cls("multiotsu", k)
        if name == "threshold":
            try:
                ts = tuple(sorted(float(v) for v in arg.split(",")))
            except ValueError:
                ts = ()
            if not ts or any(not 0 < t < 1 for t in ts) or len(set(ts)) != len(ts):
                raise SettingError("segment", text, "threshold needs distinct values in (0, 1), e.g. threshold:0.5")
            return cls("threshold", len(ts) + 1, ts)
        raise SettingError("segment", text, "choose otsu, multiotsu:K or threshold:T (e.g. threshold:0.5)")

    def __str__(self) -> str:
        if self.method == "otsu":
            return "otsu"
        if self.method == "multiotsu":
            return f"multiotsu:{self.phases}"
        return "threshold:" + ",".join(f"{t:g}" for t in self.thresholds)

    def thresholds_for(self, image: np.ndarray) -> np.ndarray:
        if self.method == "threshold":
            return np.asarray(self.thresholds, dtype=np.float64)
        return multi_otsu_thresholds(image, self.phases)

    def labels(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(uint8 phase ids, the thresholds used) of a gray image in [0, 1]."""
        t = self.thresholds_for(image)
        return label_by_thresholds(image, t), t


def label_by_thresholds(image: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    """The number of thresholds each pixel lies above (pixels equal to one count as below it)."""
    return np.searchsorted(np.sort(thresholds), np.asarray(image, dtype=np.float64), side="left").astype(np.uint8)


def multi_otsu_thresholds(image: np.ndarray, classes: int, bins: int = BINS) -> np.ndarray:
    """The ``classes - 1`` thresholds that maximise the between-class variance of the image's
    ``bins``-bin histogram on [0, 1] (exact, by dynamic programming over the cumulative sums;
    for two classes this is Otsu's threshold)."""
    x = np.clip(np.asarray(image, dtype=np.float64).ravel(), 0, 1)
    hist = np.bincount(np.minimum((x * bins).astype(np.int64), bins - 1), minlength=bins) / x.size
    centers = (np.arange(bins) + 0.5) / bins
    w = np.concatenate([[0.0], np.cumsum(hist)])                      # w[j] = mass of bins < j
    m = np.concatenate([[0.0], np.cumsum(hist * centers)])
    # score(i, j) = (m[j] - m[i])^2 / (w[j] - w[i]) for the class of bins i..j-1 (0 if empty)
    dw = w[None, :] - w[:, None]
    dm = m[None, :] - m[:, None]
    with np.errstate(divide="ignore", invalid="ignore"):
        score = np.where(dw > 1e-15, dm ** 2 / dw, 0.0)
    score[np.tril_indices(bins + 1)] = -np.inf                         # a class needs at least one bin
    best = score[0].copy()                                             # one class over bins 0..j-1
    back = []
    for _ in range(classes - 1):
        total = best[:, None] + score                                  # last class = bins i..j-1
        arg = np.argmax(total, axis=0)
        back.append(arg)
        best = total[arg, np.arange(bins + 1)]
    cuts, j = [], bins
    for arg in reversed(back):
        j = int(arg[j])
        cuts.append(j)
    return np.asarray(sorted(c / bins for c in cuts), dtype=np.float64)


def phase_fractions(labels: np.ndarray, phases: int) -> np.ndarray:
    """The fraction of pixels in each phase."""
    return np.bincount(np.asarray(labels, dtype=np.int64).ravel(), minlength=phases)[:phases] / labels.size


def labels_to_png(labels: np.ndarray, phases: int) -> np.ndarray:
    """A label map for viewing: phase k as gray k / (phases - 1), in [0, 1]."""
    return labels.astype(np.float32) / max(1, phases - 1)
