"""What a folder of samples says about itself: the run's record (``OUT/sample.json``,
``OUT/sample3d.json``) and each item's (``<class>/NNNN.json``, ``NNNN/volume.json``).

A run record is a frozen dataclass written as JSON when the run starts; ``--resume`` reads it
back and refuses a folder made with other settings, naming each one that differs. It also
lists the run's items: sample i of class c (seed ``sample_seed(seed, c, i)``), or volume i
(seed ``volume_seed(seed, classes, i)``), the first of process r of W being r, then r + W, ...
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields

from ..core.seeding import sample_seed, volume_seed
from ..denoise.canvas import Canvas


@dataclass(frozen=True)
class Item:
    """One output of a run: sample ``index`` of class ``name``, or volume ``index``; ``label``
    conditions the denoiser (a class index, or a volume's classes of the sections normal to z, y, x)."""
    index: int
    label: int | tuple[int, int, int]
    seed: int
    name: str = ""

    @property
    def key(self) -> str:
        """Where it lives in the run folder: ``<class>/NNNN`` or ``NNNN``."""
        return f"{self.name}/{self.index:04d}" if self.name else f"{self.index:04d}"


class RunRecord:
    """JSON round trip and comparison of a frozen run-record dataclass (``TUPLES``: its fields
    that JSON turns into lists); ``model`` (the folder as given) is not compared."""
    TUPLES: tuple[str, ...] = ()
    FILE = ""

    @classmethod
    def from_json(cls, d: dict):
        return cls(**{**d, **{k: tuple(d[k]) for k in cls.TUPLES if d.get(k) is not None}})

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=1)

    def differences(self, other) -> list[str]:
        return [f.name for f in fields(self) if f.name != "model" and getattr(self, f.name) != getattr(other, f.name)]

    def mismatch(self, other) -> str:
        """How ``other`` differs from this record, each setting in its own words ("" if it does not)."""
        return "; ".join(_difference(k, getattr(self, k), getattr(other, k)) for k in self.differences(other))

    def _common(self) -> dict:
        from .. import __version__
        return {"model": self.model, "model_sha256": self.model_sha256, "microdiff_version": __version__}


def _difference(key: str, old, new) -> str:
    """How a recorded setting differs, named as the setting that sets it."""
    from ..core.errors import setting
    if key == "model_sha256":
        return f"another {setting('model')} (its weights differ)"
    if key == "method":
        return "made by an earlier version of the product of planes"
    if key in ("inpaint", "targets"):
        return f"other {'inpainting inputs (image, mask, extend, consistency)' if key == 'inpaint' else 'targets'}"

    def show(v):
        if isinstance(v, (tuple, list)) and key == "size":
            return "x".join(str(n) for n in reversed(v))
        return ",".join(str(x) for x in v) if isinstance(v, (tuple, list)) else str(v)
    return f"{setting(key)} was {show(old)}, now {show(new)}"


@dataclass(frozen=True)
class SampleRun(RunRecord):
    """The settings every image in a folder was made with (``OUT/sample.json``)."""
    classes: tuple[str, ...]
    num: int
    seed: int
    sampler: str
    steps: int
    guidance: float
    batch_size: int
    model_sha256: str                  # of the weights: a resume must use the same model
    model: str = ""                    # the model folder as given (not compared)
    size: tuple[int, int] = (0, 0)     # (height, width) of the canvas
    periodic: bool = False
    overlap: float = 0.2
    segment: str = ""                  # the segmentation of the phase labels ("" = none)
    inpaint: dict | None = None        # image, mask, extend and their SHA-256 (microdiff inpaint)
    targets: dict | None = None        # descriptor targets and strength (targets.Targets.record())
    position: tuple[float, float] | None = None   # a layout model's sample centre in its source (None: the whole source)
    TUPLES = ("classes", "size", "position")
    FILE = "sample.json"

    @property
    def canvas(self) -> Canvas:
        return Canvas(tuple(self.size), self.periodic, self.overlap)

    def sampling(self, config):
        """The run's sampling settings (checked when the run was made) as the sampler takes them."""
        from ..config import SampleConfig
        return SampleConfig(self.sampler, self.steps, self.guidance, self.batch_size, config.sample.clip_denoised)

    def items(self, pipe, rank: int = 0, world: int = 1) -> list[Item]:
        """This process's share, class by class."""
        return [Item(i, pipe.class_index(c), sample_seed(self.seed, pipe.class_index(c), i), c)
                for c in self.classes for i in range(rank, self.num, world)]

    def item_record(self, item: Item) -> dict:
        """How an image was made: enough to make it again."""
        c = self._common()
        return {"model": c["model"], "model_sha256": c["model_sha256"], "class": item.name, "index": item.index,
                "seed": item.seed, "run_seed": self.seed, "size": list(self.size),
                "periodic": self.periodic, "overlap": self.overlap, "sampler": self.sampler, "steps": self.steps,
                "guidance": self.guidance, "batch_size": self.batch_size, "microdiff_version": c["microdiff_version"],
                **({"inpaint": self.inpaint} if self.inpaint else {}),
                **({"position": list(self.position)} if self.position is not None else {}),
                **({"target_strength": self.targets["strength"]} if self.targets else {})}


@dataclass(frozen=True)
class VolumeRun(RunRecord):
    """The settings every volume in a folder was made with (``OUT/sample3d.json``)."""
    axes: tuple[str, str, str]        # classes of the sections normal to x, y, z (as given)
    num: int
    seed: int
    sampler: str
    steps: int
    guidance: float
    size: tuple[int, int, int]        # (Z, Y, X)
    periodic: bool
    overlap: float
    planes: str
    segment: str
    model_sha256: str
    model: str = ""
    targets: dict | None = None
    method: str = ""                  # how ``product`` combines the planes (``volumes.product_method``)
    abaqus: bool = False              # labels.inp written too
    fractions: str = "representative"  # scatter | representative (folders from before it: representative)
    TUPLES = ("axes", "size")
    FILE = "sample3d.json"

    @property
    def canvas(self) -> Canvas:
        return Canvas(tuple(self.size), self.periodic, self.overlap)

    def class_indices(self, pipe) -> tuple[int, int, int]:
        """Class indices for the sections normal to z, y, x (array-axis order)."""
        cx, cy, cz = (pipe.class_index(c) for c in self.axes)
        return cz, cy, cx

    def items(self, pipe, rank: int = 0, world: int = 1) -> list[Item]:
        classes = self.class_indices(pipe)
        return [Item(i, classes, volume_seed(self.seed, classes, i)) for i in range(rank, self.num, world)]

    def item_record(self, item: Item) -> dict:
        c = self._common()
        return {"model": c["model"], "model_sha256": c["model_sha256"], "index": item.index,
                "axes": {"x": self.axes[0], "y": self.axes[1], "z": self.axes[2]},
                "seed": item.seed, "run_seed": self.seed,
                "shape_zyx": list(self.size), "periodic": self.periodic, "overlap": self.overlap,
                "planes": self.planes, "sampler": self.sampler, "steps": self.steps, "guidance": self.guidance,
                "microdiff_version": c["microdiff_version"]}
