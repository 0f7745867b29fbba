"""`prepare uhcs`: UHCS micrographs classed by ``primary_microconstituent`` from the UHCS
SQLite database (Hecht, DeCost et al., NIST 11256/940)."""
from __future__ import annotations

import re
import sqlite3
from pathlib import Path

from ...core.errors import PrepareError
from ..io import list_images
from .engine import PrepareResult, PrepareSettings, Report, run
from .importing import drop_empty_classes, scan_with_progress

PAPER_UHCS_CLASSES = ("martensite", "pearlite", "pearlite+spheroidite", "pearlite+widmanstatten",
                      "spheroidite", "spheroidite+widmanstatten", "network")

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
                 classes: list[str] | None = None, show_progress: bool = True) -> PrepareResult:
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
    for f in list_images(images):
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
    sources = scan_with_progress("uhcs", files, settings, report, show_progress)
    drop_empty_classes(classes, sources, report, explicit)
    info = {"source": str(images), "database": str(db), "rows_without_image": len(no_image)}
    return run("uhcs", sources, classes, Path(out), settings, report, info, show_progress)
