"""The pipeline every importer shares (Section 2.1 of the paper): scan -> plan -> render -> write.

1. *scan*: read every source image once (a bad file is skipped and listed, or stops the run
   with ``strict``), cut off the SEM data bar at the bottom (detected, not hard-coded), and keep
   only its bar-free size;
2. *plan*: per class, up to ``per_class`` items; classes with more sources are subsampled,
   classes with fewer are filled by augmentation -- random square crops and the 8 rotations/mirrors
   -- never repeating a (source, crop, transform);
3. *render*: crop, transform, resample to ``size`` (``data.io.crop_resample``: area averaging
   when shrinking, bicubic when enlarging), and
4. *write* through ``DatasetWriter`` (a temporary folder, moved into place at the end).

Held-out images (``holdout``): before planning, each class's source images are split -- a
seeded ``holdout`` fraction of them (at least one, and at least one kept) goes to a second data
set ``<OUT>-heldout``, planned and rendered by the same rules (its ``per_class`` scaled by the
fraction), so that no micrograph gives crops to both sides. A class of one micrograph has
nothing to hold out and is left out of the held-out set (a note says so).

Crop policy: an *original* is the centred square of the whole shorter side (or, for fiber
images, a random ``region`` square); an *augmented* item is a random square of ``crop_fraction``
x the shorter side at a random position, with a random dihedral transform (``keep_orientation``: a
mirror or half turn, so a direction along rows or columns stays; training then does the same).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

import numpy as np

from ...core.checks import check_choice, check_float, check_int
from ...core.errors import ImageError, PrepareError, SettingError, setting
from ..dataset import DatasetWriter
from ..io import center_box
from ..transforms import AUGMENT_ELEMENTS, DIHEDRAL_NAMES
from .kinds import CHANNELS, check_phase_counts, crop_side, gray_view, read_source, render_crop, single_image_note
from .sem_bar import detect_bar

FLIPS = AUGMENT_ELEMENTS["flips"]   # keep_orientation: identity, half turn, the two mirrors (rows stay rows)
SINGLE_IMAGE_ITEMS = 500     # crops made from a class of one micrograph unless per_class says otherwise


@dataclass(frozen=True)
class PrepareSettings:
    size: int = 256
    per_class: int | None = None        # None: keep every original (the paper: 1000)
    seed: int = 0
    crop_fraction: float = 0.75         # side of augmentation crops / shorter side
    detect_bar: bool = True
    strict: bool = False
    overwrite: bool = False
    channels: str = "gray"              # gray | color (RGB) | labels (phase-label maps), see kinds
    crop_size: int | None = None        # crops of this side in source pixels (None: the crop policy below)
    holdout: float = 0.0                # fraction of each class's source images written to <OUT>-heldout
    keep_orientation: bool = False      # augment by mirrors and half turns only (rows stay rows), see _fill

    def __post_init__(self):
        check_int("size", self.size, 8, 65536, SettingError)
        check_choice("channels", self.channels, CHANNELS, SettingError)
        if self.crop_size is not None:
            check_int("crop_size", self.crop_size, 8, 65536, SettingError)
        if self.per_class is not None:
            check_int("per_class", self.per_class, 1, 10 ** 7, SettingError)
        check_int("seed", self.seed, 0, 2 ** 63 - 1, SettingError)
        check_float("crop_fraction", self.crop_fraction, 0.0, 1.0, lo_open=True, error=SettingError)
        check_float("holdout", self.holdout, 0.0, 1.0, hi_open=True, error=SettingError)


@dataclass
class Source:
    cls: str
    path: Path
    height: int                          # bar-free
    width: int
    bar_rows: int = 0
    meta: dict = field(default_factory=dict)
    regions: list[tuple[int, int, int]] | None = None   # fixed original crops (fiber importer)
    phases: int = 0                      # label maps: the largest id + 1


@dataclass(frozen=True)
class Item:
    cls: str
    source: int
    box: tuple[int, int, int]            # top, left, side (in the bar-free image)
    transform: int                       # 0..7, see DIHEDRAL_NAMES
    original: bool


@dataclass
class Report:
    skipped: list[tuple[str, str]] = field(default_factory=list)     # (file, reason)
    notes: list[str] = field(default_factory=list)

    def skip(self, path, reason: str, strict: bool):
        if strict:
            raise PrepareError(f"{path}: {reason} (run without {setting('strict')} to skip such files)")
        self.skipped.append((str(path), reason))


@dataclass
class ClassCount:
    sources: int
    originals_available: int
    originals: int
    augmented: int

    @property
    def total(self) -> int:
        return self.originals + self.augmented


@dataclass
class PrepareResult:
    """What ``prepare_*`` wrote: the data set folder, per-class counts, skipped files, notes (``summary_table``)."""
    out: Path
    counts: dict[str, ClassCount]
    report: Report
    heldout: Path | None = None                       # <OUT>-heldout, with ``holdout``
    heldout_counts: dict[str, ClassCount] = field(default_factory=dict)


def heldout_path(out: str | Path) -> Path:
    """Where ``holdout`` writes the held-out images of the data set ``out``."""
    return Path(out).parent / f"{Path(out).name}-heldout"


# ----------------------------------------------------------------------------- scan

def scan(files: Iterable[tuple[str, Path, dict]], settings: PrepareSettings, report: Report,
         progress: Callable[[], None] | None = None, min_side: int = 1) -> list[Source]:
    out = []
    for cls, path, meta in files:
        try:
            img = read_source(path, settings.channels)
        except ImageError as e:
            report.skip(path, str(e).split(": ", 1)[-1], settings.strict)
            continue
        finally:
            if progress:
                progress()
        gray = gray_view(img, settings.channels)
        bar = detect_bar(gray) if settings.detect_bar and gray is not None else 0
        h, w = img.shape[0] - bar, img.shape[1]
        if min(h, w) < min_side:
            report.skip(path, f"{w}x{h} px (without the data bar) is smaller than the {min_side} px crop", settings.strict)
            continue
        phases = int(img.max()) + 1 if settings.channels == "labels" else 0
        out.append(Source(cls, Path(path), h, w, bar, dict(meta), phases=phases))
    return out


# ----------------------------------------------------------------------------- plan

def random_crop(rng: np.random.Generator, h: int, w: int, side: int) -> tuple[int, int, int]:
    return int(rng.integers(0, h - side + 1)), int(rng.integers(0, w - side + 1)), side


def _originals(sources: list[Source], idx: list[int], cls: str, side: int | None = None) -> list[Item]:
    """The centred square (or the fiber regions) of each source; with a crop ``side``, the
    non-overlapping tiles of that side."""
    out = []
    for i in idx:
        s = sources[i]
        if side is not None and s.regions is None:
            k = min(side, s.height, s.width)
            boxes = [(r * k, c * k, k) for r in range(s.height // k) for c in range(s.width // k)]
        else:
            boxes = s.regions if s.regions is not None else [center_box(s.height, s.width)]
        out += [Item(cls, i, box, 0, True) for box in boxes]
    return out


def _augment_box(rng: np.random.Generator, s: Source, base: Item, fraction: float, side: int | None = None) -> tuple:
    """A random square of ``fraction`` x the shorter side (inside the region for fiber regions),
    or of the crop ``side``."""
    if side is not None and s.regions is None:
        return random_crop(rng, s.height, s.width, min(side, s.height, s.width))
    short = min(s.height, s.width) if s.regions is None else base.box[2]
    side = max(1, int(round(fraction * short)))
    if s.regions is None:
        return random_crop(rng, s.height, s.width, side)
    t, l_, rs = base.box
    dt, dl, _ = random_crop(rng, rs, rs, side)
    return t + dt, l_ + dl, side


def _fill(rng: np.random.Generator, sources: list[Source], originals: list[Item], target: int,
          settings: PrepareSettings, cls: str, side: int | None = None) -> list[Item]:
    """The originals plus distinct augmented items up to ``target``."""
    items = list(originals)
    seen = {(it.source, it.box, it.transform) for it in items}
    attempts, k = 0, 0
    while len(items) < target:
        attempts += 1
        if attempts > 200 * target + 1000:
            raise PrepareError(f"class {cls}: cannot make {target} distinct crops from {len(originals)} original(s); "
                               f"lower {setting('per_class')} or {setting('crop_fraction')}")
        base = originals[k % len(originals)]
        k += 1
        box = _augment_box(rng, sources[base.source], base, settings.crop_fraction, side)
        turn = FLIPS[int(rng.integers(0, 4))] if settings.keep_orientation else int(rng.integers(0, 8))
        key = (base.source, box, turn)
        if key in seen:
            continue
        seen.add(key)
        items.append(Item(cls, base.source, box, key[2], False))
    return items


def plan(sources: list[Source], classes: list[str], settings: PrepareSettings, report: Report | None = None,
         single_image: bool = False) -> tuple[list[Item], dict[str, ClassCount]]:
    """Items per class: subsample or fill up to ``per_class`` (with ``single_image``, a class of
    one micrograph: SINGLE_IMAGE_ITEMS crops of the training size from it unless ``per_class``
    says otherwise)."""
    items: list[Item] = []
    counts = {}
    for ci, c in enumerate(classes):
        rng = np.random.default_rng([settings.seed, ci])
        idx = [i for i, s in enumerate(sources) if s.cls == c]
        side = crop_side(sources, idx, settings, single_image)
        originals = _originals(sources, idx, c, side)
        n_avail = len(originals)
        target = n_avail if settings.per_class is None else settings.per_class
        if single_image and len(idx) == 1 and side is not None and settings.crop_size is None:
            target = settings.per_class or SINGLE_IMAGE_ITEMS
            if report is not None:
                report.notes.append(single_image_note(c, sources[idx[0]], side, target, settings.keep_orientation))
        if n_avail >= target:
            chosen = sorted(rng.choice(n_avail, size=target, replace=False).tolist()) if target < n_avail else range(n_avail)
            cls_items = [originals[k] for k in chosen]
        else:
            cls_items = _fill(rng, sources, originals, target, settings, c, side)
        items += cls_items
        n_orig = sum(it.original for it in cls_items)
        counts[c] = ClassCount(len(idx), n_avail, n_orig, len(cls_items) - n_orig)
    return items, counts


# ----------------------------------------------------------------------------- render and write

def render(sources: list[Source], items: list[Item], settings: PrepareSettings, writer: DatasetWriter,
           progress: Callable[[int], None] | None = None, phases: int = 0) -> None:
    by_source: dict[int, list[tuple[int, Item]]] = {}
    for n, it in enumerate(items):
        by_source.setdefault(it.source, []).append((n, it))
    counter: dict[str, int] = {}
    names = {}
    for n, it in enumerate(items):                      # stable names: class order, then plan order
        counter[it.cls] = counter.get(it.cls, 0) + 1
        names[n] = f"{counter[it.cls] - 1:05d}"
    for si in sorted(by_source):
        s = sources[si]
        img = read_source(s.path, settings.channels)
        img = img[:img.shape[0] - s.bar_rows] if s.bar_rows else img
        for n, it in by_source[si]:
            t, l_, side = it.box
            suffix, out = render_crop(img, it.box, it.transform, settings.size, settings.channels, phases)
            writer.add(it.cls, names[n] + suffix, out, source=str(s.path), crop_top=t, crop_left=l_, crop_size=side,
                       source_height=s.height, source_width=s.width, transform=DIHEDRAL_NAMES[it.transform],
                       original=it.original, bar_rows=s.bar_rows, seed=settings.seed, **s.meta)
        if progress:
            progress(len(by_source[si]))


def _dataset_meta(kind: str, settings: PrepareSettings, counts: dict[str, ClassCount], report: Report) -> dict:
    fixed = settings.keep_orientation
    return {"kind": kind, "size": settings.size, "seed": settings.seed, "per_class": settings.per_class,
            "crop_policy": {"original": "centred square of the shorter side" if kind != "fiber" else
                            "random square region", "augmented": f"random square of {settings.crop_fraction} x the "
                            f"shorter side, random {'mirror/half turn' if fixed else 'rotation/mirror'}",
                            "resampling": "area down, bicubic up"}, **({"orientation": "fixed"} if fixed else {}),
            "counts_before": {c: k.originals_available for c, k in counts.items()},
            "counts_after": {c: k.total for c, k in counts.items()},
            "originals": {c: k.originals for c, k in counts.items()},
            "augmented": {c: k.augmented for c, k in counts.items()},
            "skipped": [{"file": f, "reason": r} for f, r in report.skipped],
            "notes": report.notes}


def split_holdout(sources: list[Source], classes: list[str], settings: PrepareSettings,
                  report: Report) -> tuple[list[Source], list[Source]]:
    """(training sources, held-out sources): per class, a seeded ``holdout`` fraction of its
    source images, at least one and never all."""
    train, held = [], []
    for ci, c in enumerate(classes):
        mine = [s for s in sources if s.cls == c]
        if len(mine) < 2:
            train += mine
            if mine:
                report.notes.append(f"class {c}: one source image, nothing held out (held-out images must come from "
                                    "other micrographs than the training ones)")
            continue
        n = min(len(mine) - 1, max(1, int(round(settings.holdout * len(mine)))))
        rng = np.random.default_rng([settings.seed, ci, 7919])
        pick = set(rng.choice(len(mine), size=n, replace=False).tolist())
        held += [s for i, s in enumerate(mine) if i in pick]
        train += [s for i, s in enumerate(mine) if i not in pick]
    return train, held


def run(kind: str, sources: list[Source], classes: list[str], out: Path, settings: PrepareSettings,
        report: Report, info: dict, show_progress: bool = True, single_image: bool = False) -> PrepareResult:
    """Plan, render and write the data set of the scanned ``sources`` (and, with ``holdout``,
    the held-out one; see the module docstring)."""
    import dataclasses
    present = [c for c in classes if any(s.cls == c for s in sources)]
    if not present:
        raise PrepareError("no usable images in any class" + (f"; skipped: {report.skipped[0][0]}: "
                                                               f"{report.skipped[0][1]}" if report.skipped else ""))
    phases = check_phase_counts(sources) if settings.channels == "labels" else 0
    channels = {"channels": settings.channels, **({"phases": phases} if phases else {}),
                **({"color": True} if settings.channels == "color" else {})}
    held_path, held_counts = None, {}
    if settings.holdout > 0:
        sources, held = split_holdout(sources, present, settings, report)
        if not held:
            raise PrepareError(f"{setting('holdout')} {settings.holdout:g}: every class has a single source image, so "
                               "nothing can be held out without crops of one micrograph on both sides; add micrographs "
                               "or leave out the holdout")
        per = None if settings.per_class is None else max(1, int(round(settings.per_class * settings.holdout)))
        held_settings = dataclasses.replace(settings, per_class=per)
        held_classes = [c for c in present if any(s.cls == c for s in held)]
        held_path = heldout_path(out)
        from ...core.files import check_output_free
        from ..dataset import DATASET_JSON
        for p in (out, held_path):               # both free before either is written
            check_output_free(p, settings.overwrite, "a data set", marker=DATASET_JSON)
        held_report = Report(notes=[])
        held_items, held_counts = plan(held, held_classes, held_settings, held_report, single_image)
        _write(kind, held, held_items, held_path, held_settings, phases,
               {**_dataset_meta(kind, held_settings, held_counts, held_report), **channels, **info,
                "role": "held-out", "training_set": str(out), "holdout": settings.holdout}, show_progress)
        info = {**info, "holdout": settings.holdout, "heldout_set": str(held_path),
                "heldout_sources": sorted(str(s.path) for s in held)}
    items, counts = plan(sources, present, settings, report, single_image)
    path = _write(kind, sources, items, out, settings, phases,
                  {**_dataset_meta(kind, settings, counts, report), **channels, **info}, show_progress)
    return PrepareResult(path, counts, report, held_path, held_counts)


def _write(kind: str, sources: list[Source], items: list[Item], out: Path, settings: PrepareSettings, phases: int,
           meta: dict, show_progress: bool) -> Path:
    from tqdm.auto import tqdm
    with DatasetWriter(out, settings.overwrite) as w:
        bar = tqdm(total=len(items), desc=f"prepare {kind}: writing {out.name}", unit="img", disable=not show_progress)
        render(sources, items, settings, w, bar.update, phases)
        bar.close()
        return w.commit(meta)
