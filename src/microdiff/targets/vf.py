"""A phase's volume fraction as a target (``vf``), reached by pixel guidance or by class mixture."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
from torch import Tensor

from ..core.checks import check_float
from ..core.errors import SettingError
from ..metrics.registry import get
from .base import Target

SOFT_FRACTION = get("vf")
MIX_REACH = 1.0                    # class mixture: extrapolate up to one class spacing beyond the outermost


@dataclass(frozen=True)
class VolumeFraction(Target):
    """The fraction of one phase (default: the bright phase of Otsu's segmentation)."""
    value: float = 0.5
    tol: float = 0.005
    mix: tuple[str, ...] = ()               # classes to interpolate with ("all": every class); see Targets.mixture
    kind: str = field(default="vf", init=False)

    def __post_init__(self):
        check_float("targets.vf", self.value, 0.0, 1.0, error=SettingError)
        object.__setattr__(self, "mix", (self.mix,) if isinstance(self.mix, str) else tuple(self.mix))

    def check(self, size) -> "VolumeFraction":
        self.check_common()
        return self

    def mix_labels(self, class_names: Sequence[str]) -> tuple[int, ...]:
        """The label indices of ``mix`` in a model's classes (checked)."""
        names = list(class_names) if "all" in self.mix else list(self.mix)
        unknown = [n for n in names if n not in class_names]
        if unknown or not names:
            raise SettingError("targets.mix", ",".join(self.mix), f"{unknown[0] if unknown else 'no class'} is not "
                               f"a class of this model; it knows: {', '.join(class_names)} (or say all)")
        return tuple(sorted({list(class_names).index(n) for n in names}))

    def fraction(self, x: Tensor) -> Tensor:
        """The soft fraction of the phase per sample, x the field (``Target.soft``)."""
        return SOFT_FRACTION.soft_form()(self.soft(x))

    def loss(self, x: Tensor) -> Tensor:
        vf = self.fraction(x)
        return self.weight * (vf - self.value) ** 2 / (2 * self.tol ** 2)

    def measure(self, image: np.ndarray) -> dict:
        vf = self.achieved(image)
        return {"achieved": round(vf, 6), "error": round(vf - self.value, 6)}

    def achieved(self, image: np.ndarray) -> float:
        """The hard fraction of the phase in a finished image."""
        return float(self.hard(image).mean())

    def penalty(self, image: np.ndarray) -> float:
        """The loss's form on the hard fraction of a finished image."""
        return self.weight * (self.achieved(image) - self.value) ** 2 / (2 * self.tol ** 2)

    def record(self) -> dict:
        return {"kind": "vf", "value": self.value, **self.phase_record(), "weight": self.weight,
                **({"mix": list(self.mix), "reach": MIX_REACH} if self.mix else {})}
