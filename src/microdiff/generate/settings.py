"""The settings of each generation verb, as frozen objects that check themselves.

``SampleSettings`` (``sample``), ``InpaintSettings`` (``inpaint``) and ``VolumeSettings``
(``sample3d``) share ``GenerationSettings``. Each checks what it can know alone (types, ranges,
the form of a size or a segmentation, settings that exclude each other) when it is made; what
needs the model (its classes, its training size, its step count) is checked when a verb
resolves it against a loaded pipeline, before anything is written. Errors name the setting
(``SettingError``); the CLI shows the flag instead. ``None`` takes the model's own setting.
"""
from __future__ import annotations

from dataclasses import dataclass

from ..config import check_sampler
from ..core.checks import check_bool, check_choice, check_float, check_int
from ..core.errors import NO_VALUE, SettingError, setting
from ..denoise.volume import PLANE_MODES

FRACTION_MODES = ("scatter", "representative")


@dataclass(frozen=True)
class GenerationSettings:
    """What every generation verb shares."""
    num: int = 1                      # samples per class (images) or volumes
    seed: int = 0                     # the run's seed; each sample's own derives from it (core.seeding)
    steps: int | None = None          # sampler steps (None: the model's)
    sampler: str | None = None        # ancestral | ddim | dpmpp | dpmpp_sde[:eta=E,smin=A,smax=B] (None: the model's)
    guidance: float | None = None     # classifier-free guidance scale, 1 = plain conditional (None: the model's)
    batch_size: int | None = None     # images per network batch; volumes: sections per network call (64)
    overlap: float = 0.2              # least overlap of neighbouring windows, a fraction of the window
    segment: str | None = None        # also write phase labels: otsu | multiotsu:K | threshold:T[,T2..]

    def __post_init__(self):
        self._check("num", check_int, 1, 10 ** 7)
        self._check("seed", check_int, 0, 2 ** 63 - 1)
        self._check("steps", check_int, 1, 100_000)
        if self.sampler is not None:
            object.__setattr__(self, "sampler", check_sampler("sampler", self.sampler))
        self._check("guidance", check_float, 0.0, 100.0)
        self._check("batch_size", check_int, 1, 10 ** 6)
        self._check("overlap", check_float, 0.0, 0.9)
        if self.segment:
            from ..metrics.segmentation import Segmentation
            if not isinstance(self.segment, str):
                raise SettingError("segment", self.segment, "expected otsu, multiotsu:K or threshold:T")
            object.__setattr__(self, "segment", str(Segmentation.parse(self.segment)))
        else:
            object.__setattr__(self, "segment", None)

    def _check(self, name: str, check, lo, hi) -> None:
        """Check a number (None passes) and keep it converted (4.0 -> 4 for integers)."""
        value = getattr(self, name)
        if value is not None:
            value = check(name, value, lo, hi, error=SettingError) if check is check_float \
                else check(name, value, lo, hi, SettingError)
            object.__setattr__(self, name, value)

    @property
    def strength(self) -> float:
        """The targets' guidance strength (3 unless set)."""
        value = getattr(self, "target_strength", None)
        return 3.0 if value is None else float(value)


def settings_of(cls, settings, fields: dict):
    """A settings object from the object given or from keyword fields (not both)."""
    if settings is not None and fields:
        raise TypeError(f"give a {cls.__name__} or its fields as keywords, not both")
    if settings is not None and not isinstance(settings, cls):
        raise TypeError(f"expected {cls.__name__}, got {type(settings).__name__}")
    return settings if settings is not None else cls(**fields)


def _position(value) -> tuple[float, float] | None:
    """(row, column) in [0, 1] from a pair or "ROW,COL"; None stays None."""
    if value is None:
        return None
    try:
        parts = [float(v) for v in (value.split(",") if isinstance(value, str) else value)]
    except (TypeError, ValueError):
        parts = []
    if len(parts) != 2 or not all(0.0 <= v <= 1.0 for v in parts):
        raise SettingError("position", value, "expected ROW,COL: the centre of the sample as fractions (0..1) of a "
                           "source micrograph's height and width, e.g. 0.1,0.5 near the top")
    return (parts[0], parts[1])


def _names(value, name: str) -> tuple[str, ...]:
    """Class names from a name, a comma list or a sequence."""
    if value is None:
        return ()
    if not isinstance(value, (str, list, tuple)):
        raise SettingError(name, value, "expected class names")
    names = tuple(v.strip() for v in value.split(",")) if isinstance(value, str) else tuple(value)
    if not all(isinstance(n, str) and n for n in names):
        raise SettingError(name, value, "expected class names")
    if name == "classes" and len(set(names)) != len(names):
        raise SettingError(name, ",".join(names), "a class is named twice; name each once (num sets how many)")
    return names


def _size(value, ndim: int) -> None:
    """The form of a size (its sides against the model are checked with the model)."""
    if value is None or isinstance(value, str):
        if isinstance(value, str):
            from ..denoise.canvas import parse_size
            parse_size(value, ndim)
        return
    if not isinstance(value, (int, list, tuple)) or isinstance(value, bool):
        from ..denoise.canvas import SIZE_FORMS
        raise SettingError("size", value, f"expected {SIZE_FORMS[ndim]}")
    sides = (value,) * ndim if isinstance(value, int) else tuple(value)
    if len(sides) != ndim or not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in sides):
        from ..denoise.canvas import SIZE_FORMS
        raise SettingError("size", value, f"expected {SIZE_FORMS[ndim]}")


@dataclass(frozen=True)
class SampleSettings(GenerationSettings):
    """``microdiff sample``: ``num`` images of each of ``classes`` (() = all of the model's)."""
    num: int = 16
    classes: tuple[str, ...] = ()     # class names (or one name, or a comma list)
    size: object = None               # None (the training size), a side, (height, width) or "WIDTHxHEIGHT"
    periodic: bool = False            # a torus: the image tiles seamlessly
    targets: object = None            # descriptor targets ({"vf": 0.55, "mix": "all"}, see targets.make_targets)
    target_strength: float | None = None   # guidance strength towards the targets (None: 3; 0: unguided, bit for bit)
    target_candidates: int | None = None   # K: keep the best of K guided draws of every sample
    position: object = None           # a layout model: (row, column) fractions of the source, or "ROW,COL"; None: the whole source

    def __post_init__(self):
        super().__post_init__()
        object.__setattr__(self, "classes", _names(self.classes, "classes"))
        _size(self.size, 2)
        check_bool("periodic", self.periodic, SettingError)
        object.__setattr__(self, "position", _position(self.position))
        if self.target_strength is not None:
            check_float("target_strength", self.target_strength, 0.0, 1e6, error=SettingError)
        if self.target_candidates is not None:
            from ..targets import MAX_CANDIDATES
            check_int("target_candidates", self.target_candidates, 1, MAX_CANDIDATES, SettingError)
        if self.targets:
            from ..targets import check_spec
            check_spec(self.targets)
        elif self.target_candidates not in (None, 1):
            raise SettingError("target_candidates", self.target_candidates,
                               f"candidates are chosen by their targets; give {setting('targets')} too")
        elif self.target_strength is not None:
            raise SettingError("target_strength", self.target_strength, f"it is the strength of the targets' guidance; "
                               f"give {setting('targets')} too")


@dataclass(frozen=True)
class InpaintSettings(GenerationSettings):
    """``microdiff inpaint``: ``num`` versions of ``image`` (of class ``class_name``) with the
    pixels of ``mask`` (white = generate; or "databar") generated, or grown by ``extend`` pixels."""
    class_name: str = ""              # the micrograph's class
    image: object = ""                # the micrograph (grayscale, at least the training size)
    mask: object = None               # an image of the same size (white = generate), or "databar"
    extend: int = 0                   # grow the image by this many pixels on all sides
    consistency: float = 30.0         # strength of the known pixels' gradient (0: projection only)

    def __post_init__(self):
        super().__post_init__()
        if not isinstance(self.class_name, str) or not self.class_name:
            raise SettingError("class_name", self.class_name, "name the micrograph's class")
        if not str(self.image):
            raise SettingError("image", self.image, "give the micrograph to inpaint")
        self._check("extend", check_int, 0, 8192)
        self._check("consistency", check_float, 0.0, 10_000.0)
        if self.mask is None and self.extend == 0:
            raise SettingError("mask", NO_VALUE, f"nothing to generate: give a mask (white = generate) or "
                               f"{setting('extend')} N")


@dataclass(frozen=True)
class VolumeSettings(GenerationSettings):
    """``microdiff sample3d``: ``num`` volumes whose sections look like ``class_name`` (isotropic)
    or like the classes of ``axes`` (CX, CY, CZ: of the sections normal to x, y and z)."""
    class_name: str | None = None     # the class of every section
    axes: object = None               # "CX,CY,CZ" or three names: the classes of the sections normal to x, y, z
    size: object = None               # None (a cube of the training size), a side, (Z, Y, X) or "XxYxZ"
    periodic: bool = False            # a 3-torus
    planes: str = "product"           # product | alternate | fuse (denoise.volume)
    targets: object = None            # {"vf": F}: the volume fraction of the bright phase (of segment)
    target_strength: float | None = None   # None: 3
    abaqus: bool = False              # also labels.inp: an Abaqus voxel mesh (needs segment)
    fractions: str | None = None      # product: scatter (each volume's phase fraction drawn as real volumes of
                                      # its size scatter; the default) or representative (every volume at the
                                      # class's; the default with a vf target, which sets the fraction)

    def __post_init__(self):
        super().__post_init__()
        if self.class_name is not None and self.axes is not None:
            raise SettingError("axes", self.axes, f"give either {setting('class_name')} (isotropic) or the classes "
                               "per axis CX,CY,CZ, not both")
        if self.axes is not None:
            names = _names(self.axes, "axes")
            if len(names) != 3:
                raise SettingError("axes", ",".join(names), "expected three classes CX,CY,CZ (for the sections "
                                   f"normal to x, y and z), got {len(names)}")
            object.__setattr__(self, "axes", names)
        _size(self.size, 3)
        check_bool("periodic", self.periodic, SettingError)
        check_choice("planes", self.planes, PLANE_MODES, SettingError)
        check_bool("abaqus", self.abaqus, SettingError)
        if self.fractions is not None:
            check_choice("fractions", self.fractions, FRACTION_MODES, SettingError)
        if self.fractions == "scatter" and (self.planes != "product" or self.targets):
            why = "the product of planes" if self.planes != "product" else "volumes without a volume-fraction target"
            raise SettingError("fractions", "scatter", f"drawn fractions are for {why}")
        if self.target_strength is not None:
            check_float("target_strength", self.target_strength, 0.0, 1e6, error=SettingError)
            if not self.targets:
                raise SettingError("target_strength", self.target_strength, "it is the strength of the volume-fraction "
                                   f"target's guidance; give {setting('targets.vf')} too")
        if self.targets:
            from ..targets import check_spec
            spec = check_spec(self.targets)
            given = set(self.targets) if isinstance(self.targets, dict) else set(spec)
            other = sorted(given - {"vf", "phase", "weights"})
            if other:
                raise SettingError("targets", self.targets, "volumes are steered to a volume fraction (vf) only, "
                                   f"not {', '.join(other)}")

    @property
    def fraction_mode(self) -> str:
        """scatter, or representative (other planes, or a vf target that sets the fraction)."""
        if self.fractions is not None:
            return self.fractions
        return "scatter" if self.planes == "product" and not self.targets else "representative"
