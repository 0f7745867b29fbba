"""`microdiff prepare`: real micrograph collections -> a balanced, class-labelled training set.

All importers share one pipeline (Section 2.1 of the paper):

1. *scan*: read every source image once (a bad file is skipped and listed, or stops the run
   with ``strict``), cut off the SEM data bar at the bottom (detected, not hard-coded), and keep
   only its bar-free size;
2. *plan*: per class, up to ``per_class`` items; classes with more sources are subsampled,
   classes with fewer are filled by augmentation -- random square crops and the 8
   rotations/mirrors -- never repeating a (source, crop, transform);
3. *render*: crop, transform, resample to ``size`` (area averaging when shrinking, bicubic when
   enlarging; always a square crop, never a non-uniform resize), write through
   ``DatasetWriter`` (temporary folder, moved into place at the end).

Crop policy: an *original* is the centred square of the whole shorter side (or, for fiber
images, a random ``region`` square); an *augmented* item is a random square of
``crop_fraction`` x the shorter side at a random position, with a random dihedral transform.
"""
from __future__ import annotations

import re
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

import numpy as np

from .dataset import DatasetWriter
from .io import IMAGE_SUFFIXES, ImageError, read_image

PAPER_UHCS_CLASSES = ("martensite", "pearlite", "pearlite+spheroidite", "pearlite+widmanstatten",
                      "spheroidite", "spheroidite+widmanstatten", "network")

# NFFA-Europe SEM categories -> the paper's six classes (Table 1); the rest are not used
NFFA_CLASSES = {
    "Biological": "Biological",
    "Films_Coated_Surface": "Coated_surfaces",
    "Nanowires": "Nanowires",
    "Powder": "Powder",
    "Particles": "Particles",
    "Porous_Sponge": "Porous_sponge",
}
NFFA_UNUSED = ("Fibres", "MEMS_devices_and_electrodes", "Patterned_surface", "Tips")

DIHEDRAL_NAMES = ("identity", "rot90", "rot180", "rot270", "flip", "rot90+flip", "rot180+flip", "rot270+flip")


class PrepareError(ValueError):
    pass


@dataclass(frozen=True)
class PrepareSettings:
    size: int = 256
    per_class: int | None = None        # None: keep every original (the paper: 1000)
    seed: int = 0
    crop_fraction: float = 0.75         # side of augmentation crops / shorter side
    detect_bar: bool = True
    strict: bool = False
    overwrite: bool = False


@dataclass
class Source:
    cls: str
    path: Path
    height: int                          # bar-free
    width: int
    bar_rows: int = 0
    meta: dict = field(default_factory=dict)
    regions: list[tuple[int, int, int]] | None = None   # fixed original crops (fiber importer)


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
            raise PrepareError(f"{path}: {reason} (run without --strict to skip such files)")
        self.skipped.append((str(path), reason))


# ----------------------------------------------------------------------------- SEM data bar

def bar_like_rows(img: np.ndarray) -> np.ndarray:
    """Rows that look like an SEM information bar: mostly one value (the bar's flat background,
    with text and a scale bar on it) or saturated black/white."""
    q = np.clip(np.rint(img * 255), 0, 255).astype(np.int64)
    h, w = q.shape
    counts = np.zeros((h, 256), dtype=np.int64)
    np.add.at(counts, (np.repeat(np.arange(h), w), q.ravel()), 1)
    mode_frac = counts.max(1) / w
    saturated = (counts[:, 0] + counts[:, 255]) / w
    return (mode_frac >= 0.6) | (saturated >= 0.6)


def detect_bar(img: np.ndarray, max_fraction: float = 0.25, gap: int = 8) -> int:
    """Height of the data bar at the bottom of ``img`` (0 if none).

    Walks up from the bottom row through bar-like rows, tolerating runs of fewer than ``gap``
    other rows (lines of text); the bar ends at the topmost bar-like row before a longer run of
    micrograph rows. A bar taller than ``max_fraction`` of the image is not believed.
    """
    rows = bar_like_rows(img)
    h = len(rows)
    if not rows[-1]:
        return 0
    top, miss = h - 1, 0
    for r in range(h - 1, -1, -1):
        if rows[r]:
            top, miss = r, 0
        else:
            miss += 1
            if miss >= gap:
                break
    height = h - top
    return height if height <= max_fraction * h else 0


# ----------------------------------------------------------------------------- scanning

def _scan(files: Iterable[tuple[str, Path, dict]], settings: PrepareSettings, report: Report,
          progress: Callable[[], None] | None = None, min_side: int = 1) -> list[Source]:
    out = []
    for cls, path, meta in files:
        try:
            img = read_image(path)
        except ImageError as e:
            report.skip(path, str(e).split(": ", 1)[-1], settings.strict)
            continue
        finally:
            if progress:
                progress()
        bar = detect_bar(img) if settings.detect_bar else 0
        h, w = img.shape[0] - bar, img.shape[1]
        if min(h, w) < min_side:
            report.skip(path, f"{w}x{h} px (without the data bar) is smaller than the {min_side} px crop",
                        settings.strict)
            continue
        out.append(Source(cls, Path(path), h, w, bar, dict(meta)))
    return out


def image_files(folder: Path) -> list[Path]:
    return sorted(f for f in Path(folder).rglob("*") if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES
                  and not f.name.startswith("."))


# ----------------------------------------------------------------------------- planning

def _random_crop(rng: np.random.Generator, h: int, w: int, side: int) -> tuple[int, int, int]:
    return int(rng.integers(0, h - side + 1)), int(rng.integers(0, w - side + 1)), side


def _center_box(h: int, w: int) -> tuple[int, int, int]:
    s = min(h, w)
    return (h - s) // 2, (w - s) // 2, s


def plan(sources: list[Source], classes: list[str], settings: PrepareSettings) -> tuple[list[Item], dict]:
    """Items per class: subsample or fill up to ``per_class``; counts for dataset.json."""
    items: list[Item] = []
    counts = {}
    for ci, c in enumerate(classes):
        rng = np.random.default_rng([settings.seed, ci])
        idx = [i for i, s in enumerate(sources) if s.cls == c]
        originals = []
        for i in idx:
            s = sources[i]
            for box in (s.regions if s.regions is not None else [_center_box(s.height, s.width)]):
                originals.append(Item(c, i, box, 0, True))
        n_avail = len(originals)
        target = n_avail if settings.per_class is None else settings.per_class
        if n_avail >= target:
            chosen = sorted(rng.choice(n_avail, size=target, replace=False).tolist()) if target < n_avail else range(n_avail)
            cls_items = [originals[k] for k in chosen]
        else:
            cls_items = list(originals)
            seen = {(it.source, it.box, it.transform) for it in cls_items}
            attempts, k = 0, 0
            while len(cls_items) < target:
                attempts += 1
                if attempts > 200 * target + 1000:
                    raise PrepareError(f"class {c}: cannot make {target} distinct crops from {len(idx)} image(s); "
                                       "lower --per-class or --crop-fraction")
                base = originals[k % n_avail]
                k += 1
                s = sources[base.source]
                short = min(s.height, s.width) if s.regions is None else base.box[2]
                side = max(1, int(round(settings.crop_fraction * short)))
                if s.regions is None:
                    box = _random_crop(rng, s.height, s.width, side)
                else:   # fiber regions: augment inside the region
                    t, l_, rs = base.box
                    dt, dl, _ = _random_crop(rng, rs, rs, side)
                    box = (t + dt, l_ + dl, side)
                tr = int(rng.integers(0, 8))
                key = (base.source, box, tr)
                if key in seen:
                    continue
                seen.add(key)
                cls_items.append(Item(c, base.source, box, tr, False))
        items += cls_items
        counts[c] = {"sources": len(idx), "originals_available": n_avail,
                     "originals": sum(it.original for it in cls_items),
                     "augmented": sum(not it.original for it in cls_items), "total": len(cls_items)}
    return items, counts


# ----------------------------------------------------------------------------- rendering

def apply_dihedral(a: np.ndarray, k: int) -> np.ndarray:
    a = np.rot90(a, k % 4)
    return np.ascontiguousarray(a[:, ::-1] if k >= 4 else a)


def resample(a: np.ndarray, size: int) -> np.ndarray:
    """Square float image -> size x size: area averaging down, bicubic up."""
    if a.shape[0] == size:
        return a.astype(np.float32)
    from PIL import Image
    im = Image.fromarray(a.astype(np.float32), mode="F")
    method = Image.Resampling.BOX if a.shape[0] > size else Image.Resampling.BICUBIC
    return np.clip(np.asarray(im.resize((size, size), method), dtype=np.float32), 0, 1)


def render(sources: list[Source], items: list[Item], settings: PrepareSettings, writer: DatasetWriter,
           progress: Callable[[int], None] | None = None) -> None:
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
        img = read_image(s.path)
        img = img[:img.shape[0] - s.bar_rows] if s.bar_rows else img
        for n, it in by_source[si]:
            t, l_, side = it.box
            out = resample(apply_dihedral(img[t:t + side, l_:l_ + side], it.transform), settings.size)
            writer.add(it.cls, names[n], out, source=str(s.path), crop_top=t, crop_left=l_, crop_size=side,
                       transform=DIHEDRAL_NAMES[it.transform], original=it.original, bar_rows=s.bar_rows,
                       seed=settings.seed, **s.meta)
        if progress:
            progress(len(by_source[si]))


def run(kind: str, sources: list[Source], classes: list[str], out: Path, settings: PrepareSettings,
        report: Report, info: dict, show_progress: bool = True) -> tuple[Path, dict]:
    from tqdm.auto import tqdm
    present = [c for c in classes if any(s.cls == c for s in sources)]
    if not present:
        raise PrepareError("no usable images in any class" + (f"; skipped: {report.skipped[0][0]}: "
                                                               f"{report.skipped[0][1]}" if report.skipped else ""))
    items, counts = plan(sources, present, settings)
    with DatasetWriter(out, settings.overwrite) as w:
        bar = tqdm(total=len(items), desc=f"prepare {kind}: writing", unit="img", disable=not show_progress)
        render(sources, items, settings, w, bar.update)
        bar.close()
        meta = {"kind": kind, "size": settings.size, "seed": settings.seed, "per_class": settings.per_class,
                "crop_policy": {"original": "centred square of the shorter side" if kind != "fiber" else
                                "random square region", "augmented": f"random square of {settings.crop_fraction} "
                                "x the shorter side, random rotation/mirror", "resampling": "area down, bicubic up"},
                "counts_before": {c: counts[c]["originals_available"] for c in present},
                "counts_after": {c: counts[c]["total"] for c in present},
                "originals": {c: counts[c]["originals"] for c in present},
                "augmented": {c: counts[c]["augmented"] for c in present},
                "skipped": [{"file": f, "reason": r} for f, r in report.skipped],
                "notes": report.notes, **info}
        path = w.commit(meta)
    return path, counts


def summary_table(counts: dict, report: Report, classes: list[str]) -> str:
    lines = [f"{'class':32s} {'originals':>9s} {'augmented':>9s} {'total':>7s}"]
    for c in classes:
        if c in counts:
            k = counts[c]
            lines.append(f"{c:32s} {k['originals']:9d} {k['augmented']:9d} {k['total']:7d}")
        else:
            lines.append(f"{c:32s} {'-':>9s} {'-':>9s} {0:7d}   (no images)")
    if report.skipped:
        lines.append(f"skipped {len(report.skipped)} file(s):")
        lines += [f"  {f}: {r}" for f, r in report.skipped[:20]]
        if len(report.skipped) > 20:
            lines.append(f"  ... {len(report.skipped) - 20} more (all listed in dataset.json)")
    lines += report.notes
    return "\n".join(lines)


# ----------------------------------------------------------------------------- importers

def _bar(total: int, desc: str, show: bool):
    from tqdm.auto import tqdm
    return tqdm(total=total, desc=desc, unit="file", disable=not show)


def prepare_folder(src: str | Path, out: str | Path, settings: PrepareSettings = PrepareSettings(),
                   classes: list[str] | None = None, show_progress: bool = True):
    """Any tree of class subfolders of PNG/TIFF/JPEG/BMP images."""
    src = Path(src)
    if not src.is_dir():
        raise PrepareError(f"{src} is not a folder; expected SRC/<class>/images")
    all_classes = sorted(d.name for d in src.iterdir() if d.is_dir() and not d.name.startswith("."))
    if not all_classes:
        raise PrepareError(f"{src} has no class subfolders; expected SRC/<class>/images")
    classes = _check_classes(classes, all_classes, src)
    files = [(c, f, {}) for c in classes for f in image_files(src / c)]
    report = Report()
    bar = _bar(len(files), "prepare folder: reading", show_progress)
    sources = _scan(files, settings, report, bar.update)
    bar.close()
    _empty_classes(classes, sources, report, explicit=True)
    return run("folder", sources, classes, Path(out), settings, report, {"source": str(src)}, show_progress) + (report,)


def _check_classes(asked, available, where) -> list[str]:
    if not asked:
        return list(available)
    missing = [c for c in asked if c not in available]
    if missing:
        raise PrepareError(f"class(es) {', '.join(missing)} not found in {where}; available: {', '.join(available)}")
    return list(asked)


def _empty_classes(classes, sources, report: Report, explicit: bool) -> None:
    empty = [c for c in classes if not any(s.cls == c for s in sources)]
    if empty and explicit:
        raise PrepareError(f"class(es) {', '.join(empty)} have no usable images; add images or leave them out "
                           "with --classes")
    for c in empty:
        report.notes.append(f"class {c}: no images found, left out")


UHCS_COLUMNS = ("micrograph_id", "path", "primary_microconstituent", "magnification", "micron_bar",
                "micron_bar_units", "micron_bar_px", "detector", "sample_key")


def read_uhcs_db(db: str | Path) -> list[dict]:
    """Rows of the UHCS ``micrograph`` table (the columns above), with a clear error for a file
    that is not the UHCS database."""
    db = Path(db)
    if not db.is_file():
        raise PrepareError(f"database {db} does not exist")
    try:
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
        try:
            cols = [r[1] for r in con.execute("PRAGMA table_info(micrograph)")]
            missing = [c for c in UHCS_COLUMNS if c not in cols]
            if not cols or missing:
                raise PrepareError(f"{db} has no UHCS micrograph table with the columns "
                                   f"{', '.join(missing or UHCS_COLUMNS)}; pass the UHCS microstructures.sqlite")
            rows = [dict(zip(UHCS_COLUMNS, r)) for r in
                    con.execute(f"SELECT {', '.join(UHCS_COLUMNS)} FROM micrograph ORDER BY micrograph_id")]
        finally:
            con.close()
    except sqlite3.DatabaseError as e:
        raise PrepareError(f"{db} is not a readable SQLite database ({e})") from None
    return rows


def _trailing_int(name: str) -> int | None:
    m = re.search(r"(\d+)$", Path(name).stem)
    return int(m.group(1)) if m else None


def prepare_uhcs(db: str | Path, images: str | Path, out: str | Path, settings: PrepareSettings = PrepareSettings(),
                 classes: list[str] | None = None, show_progress: bool = True):
    """UHCS micrographs classed by ``primary_microconstituent``; images are matched to rows by
    micrograph id (the database's file name ``micrographN.tif``, or any name ending in N)."""
    rows = read_uhcs_db(db)
    images = Path(images)
    if not images.is_dir():
        raise PrepareError(f"image folder {images} does not exist")
    explicit = bool(classes)
    classes = list(classes or PAPER_UHCS_CLASSES)
    by_id = {r["micrograph_id"]: r for r in rows}
    by_name = {Path(r["path"]).name: r for r in rows if r["path"]}
    report = Report()
    files, matched = [], set()
    for f in image_files(images):
        r = by_name.get(f.name) or by_id.get(_trailing_int(f.name))
        if r is None:
            report.skip(f, "no micrograph row in the database for this file", settings.strict)
            continue
        c = r["primary_microconstituent"]
        if c not in classes:
            continue
        matched.add(r["micrograph_id"])
        meta = {k: r[k] for k in ("micrograph_id", "magnification", "micron_bar", "micron_bar_units",
                                  "micron_bar_px", "detector")}
        files.append((c, f, meta))
    unknown = [c for c in classes if c not in {r["primary_microconstituent"] for r in rows}]
    if unknown:
        raise PrepareError(f"class(es) {', '.join(unknown)} do not occur in {db}'s primary_microconstituent")
    no_image = [r["micrograph_id"] for r in rows if r["primary_microconstituent"] in classes
                and r["micrograph_id"] not in matched]
    if no_image:
        report.notes.append(f"{len(no_image)} database row(s) of these classes have no image file in {images} "
                            f"(e.g. micrograph_id {', '.join(map(str, no_image[:5]))})")
    bar = _bar(len(files), "prepare uhcs: reading", show_progress)
    sources = _scan(files, settings, report, bar.update)
    bar.close()
    _empty_classes(classes, sources, report, explicit)
    info = {"source": str(images), "database": str(db), "rows_without_image": len(no_image)}
    return run("uhcs", sources, classes, Path(out), settings, report, info, show_progress) + (report,)


def read_exclude(path: str | Path | None) -> set[str]:
    if not path:
        return set()
    p = Path(path)
    if not p.is_file():
        raise PrepareError(f"exclude list {p} does not exist")
    return {ln.strip() for ln in p.read_text().splitlines() if ln.strip() and not ln.startswith("#")}


def prepare_nffa(src: str | Path, out: str | Path, settings: PrepareSettings = PrepareSettings(),
                 exclude: str | Path | None = None, classes: list[str] | None = None, show_progress: bool = True):
    """NFFA-Europe SEM category folders mapped to the paper's six classes; ``exclude`` lists files
    (names or paths relative to SRC) to drop, e.g. images with markers or labels."""
    src = Path(src)
    if not src.is_dir():
        raise PrepareError(f"{src} is not a folder; expected the NFFA-Europe category folders in it")
    found = {d.name for d in src.iterdir() if d.is_dir()}
    mapped = {k: v for k, v in NFFA_CLASSES.items() if k in found}
    if not mapped:
        raise PrepareError(f"{src} holds none of the NFFA-Europe category folders {', '.join(NFFA_CLASSES)}")
    classes = _check_classes(classes, list(dict.fromkeys(mapped.values())), src)
    drop = read_exclude(exclude)
    report = Report()
    files = []
    for folder, cls in mapped.items():
        if cls not in classes:
            continue
        for f in image_files(src / folder):
            rel = str(f.relative_to(src))
            if f.name in drop or rel in drop:
                report.skipped.append((rel, "excluded by --exclude"))
                continue
            files.append((cls, f, {"nffa_category": folder}))
    for u in NFFA_UNUSED:
        if u in found:
            report.notes.append(f"category {u}: not one of the paper's classes, left out")
    bar = _bar(len(files), "prepare nffa: reading", show_progress)
    sources = _scan(files, settings, report, bar.update)
    bar.close()
    _empty_classes(classes, sources, report, explicit=False)
    return run("nffa", sources, classes, Path(out), settings, report, {"source": str(src)}, show_progress) + (report,)


def prepare_fiber(src: str | Path, out: str | Path, settings: PrepareSettings = PrepareSettings(),
                  regions_per_image: int = 30, region_px: int | None = None, region_um: float | None = None,
                  pixel_size: float | None = None, classes: list[str] | None = None, show_progress: bool = True):
    """Large composite cross-sections in class folders -> random square sub-regions (Figure 3).

    The region side is ``region_px`` pixels, or ``region_um`` micrometres at ``pixel_size`` um/px
    (the paper: ~180 um); default the shorter side / 3.
    """
    src = Path(src)
    if region_um is not None:
        if not pixel_size or pixel_size <= 0:
            raise PrepareError("--region-um needs --pixel-size (micrometres per pixel)")
        region_px = int(round(region_um / pixel_size))
    if region_px is not None and region_px < 2:
        raise PrepareError(f"region of {region_px} px is too small")
    if not src.is_dir():
        raise PrepareError(f"{src} is not a folder; expected SRC/<class>/images")
    all_classes = sorted(d.name for d in src.iterdir() if d.is_dir() and not d.name.startswith("."))
    classes = _check_classes(classes, all_classes, src)
    report = Report()
    files = [(c, f, {}) for c in classes for f in image_files(src / c)]
    bar = _bar(len(files), "prepare fiber: reading", show_progress)
    sources = _scan(files, settings, report, bar.update, min_side=region_px or 1)
    bar.close()
    _empty_classes(classes, sources, report, explicit=True)
    for si, s in enumerate(sources):
        side = region_px or max(1, min(s.height, s.width) // 3)
        rng = np.random.default_rng([settings.seed, 7, si])
        boxes: list[tuple[int, int, int]] = []
        tries = 0
        while len(boxes) < regions_per_image and tries < 100 * regions_per_image:
            tries += 1
            b = _random_crop(rng, s.height, s.width, side)
            if b not in boxes:
                boxes.append(b)
        s.regions = boxes
        s.meta = {**s.meta, "region_px": side, **({"pixel_size_um": pixel_size} if pixel_size else {})}
    info = {"source": str(src), "regions_per_image": regions_per_image, "region_px": region_px,
            "region_um": region_um, "pixel_size_um": pixel_size}
    return run("fiber", sources, classes, Path(out), settings, report, info, show_progress) + (report,)


__all__ = ["prepare_folder", "prepare_uhcs", "prepare_nffa", "prepare_fiber", "detect_bar", "PrepareSettings",
           "PrepareError", "summary_table"]
