"""`prepare nffa`: NFFA-Europe SEM category folders mapped to the paper's six classes (Table 1)."""
from __future__ import annotations

from pathlib import Path

from ...core.errors import PrepareError
from ..io import list_images
from .engine import PrepareResult, PrepareSettings, Report, run
from .importing import check_classes, drop_empty_classes, scan_with_progress

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


def read_exclude(path: str | Path | None) -> set[str]:
    if not path:
        return set()
    p = Path(path)
    if not p.is_file():
        raise PrepareError(f"exclude list {p} does not exist")
    return {ln.strip() for ln in p.read_text().splitlines() if ln.strip() and not ln.startswith("#")}


def prepare_nffa(src: str | Path, out: str | Path, settings: PrepareSettings = PrepareSettings(),
                 exclude: str | Path | None = None, classes: list[str] | None = None, show_progress: bool = True) -> PrepareResult:
    """NFFA-Europe SEM category folders mapped to the paper's six classes; ``exclude`` lists files
    (names or paths relative to SRC) to drop, e.g. images with markers or labels."""
    src = Path(src)
    if not src.is_dir():
        raise PrepareError(f"{src} is not a folder; expected the NFFA-Europe category folders in it")
    found = {d.name for d in src.iterdir() if d.is_dir()}
    mapped = {k: v for k, v in NFFA_CLASSES.items() if k in found}
    if not mapped:
        raise PrepareError(f"{src} holds none of the NFFA-Europe category folders {', '.join(NFFA_CLASSES)}")
    classes = check_classes(classes, list(dict.fromkeys(mapped.values())), src)
    drop = read_exclude(exclude)
    report = Report()
    files = []
    for folder, cls in mapped.items():
        if cls not in classes:
            continue
        for f in list_images(src / folder):
            rel = str(f.relative_to(src))
            if f.name in drop or rel in drop:
                report.skipped.append((rel, "excluded by the exclude list"))
                continue
            files.append((cls, f, {"nffa_category": folder}))
    for u in NFFA_UNUSED:
        if u in found:
            report.notes.append(f"category {u}: not one of the paper's classes, left out")
    sources = scan_with_progress("nffa", files, settings, report, show_progress)
    drop_empty_classes(classes, sources, report, explicit=False)
    return run("nffa", sources, classes, Path(out), settings, report, {"source": str(src)}, show_progress)
