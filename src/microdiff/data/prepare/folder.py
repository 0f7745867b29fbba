"""`prepare folder`: any tree of class subfolders of PNG/TIFF/JPEG/BMP images."""
from __future__ import annotations

from pathlib import Path

from ...core.errors import PrepareError
from ..io import list_images
from .engine import PrepareResult, PrepareSettings, Report, run
from .importing import check_classes, class_folders, drop_empty_classes, scan_with_progress


def prepare_folder(src: str | Path, out: str | Path, settings: PrepareSettings = PrepareSettings(),
                   classes: list[str] | None = None, show_progress: bool = True) -> PrepareResult:
    """Any tree of class subfolders of PNG/TIFF/JPEG/BMP images (``settings.channels``: gray,
    color or labels). A class folder that holds a single micrograph becomes SINGLE_IMAGE_ITEMS
    crops of the training size at the image's own resolution (``per_class`` sets the count)."""
    src = Path(src)
    all_classes = class_folders(src)
    if not all_classes:
        raise PrepareError(f"{src} has no class subfolders; expected SRC/<class>/images")
    classes = check_classes(classes, all_classes, src)
    files = [(c, f, {}) for c in classes for f in list_images(src / c)]
    report = Report()
    sources = scan_with_progress("folder", files, settings, report, show_progress)
    drop_empty_classes(classes, sources, report, explicit=True)
    return run("folder", sources, classes, Path(out), settings, report, {"source": str(src)}, show_progress,
               single_image=True)
