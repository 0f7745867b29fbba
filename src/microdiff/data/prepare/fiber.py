"""`prepare fiber`: large fiber-composite cross-sections in class folders -> random square
sub-regions (the paper's Figure 3)."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ...core.checks import check_float, check_int
from ...core.errors import SettingError, setting
from ...core.seeding import STREAM_FIBER_REGIONS
from ..io import list_images
from .engine import PrepareResult, PrepareSettings, Report, random_crop, run
from .importing import check_classes, class_folders, drop_empty_classes, scan_with_progress


def prepare_fiber(src: str | Path, out: str | Path, settings: PrepareSettings = PrepareSettings(),
                  regions_per_image: int = 30, region_px: int | None = None, region_um: float | None = None,
                  pixel_size: float | None = None, classes: list[str] | None = None, show_progress: bool = True) -> PrepareResult:
    """Large composite cross-sections in class folders -> random square sub-regions (Figure 3).

    The region side is ``region_px`` pixels, or ``region_um`` micrometres at ``pixel_size`` um/px
    (the paper: ~180 um); default the shorter side / 3.
    """
    src = Path(src)
    check_int("regions_per_image", regions_per_image, 1, 10 ** 6, SettingError)
    if region_um is not None and region_px is not None:
        raise SettingError("region_px", region_px, f"give the region's side in pixels or in micrometres "
                           f"({setting('region_um')}), not both")
    if pixel_size is not None and region_um is None:
        raise SettingError("pixel_size", pixel_size, f"it converts {setting('region_um')} to pixels; give that too")
    if region_um is not None:
        check_float("region_um", region_um, 0.0, lo_open=True, error=SettingError)
        if pixel_size is None:
            raise SettingError("region_um", region_um, f"it needs {setting('pixel_size')} (micrometres per pixel)")
        check_float("pixel_size", pixel_size, 0.0, lo_open=True, error=SettingError)
        region_px = int(round(region_um / pixel_size))
    if region_px is not None and region_px < 2:
        raise SettingError("region_px", region_px, "a region must be at least 2 px")
    classes = check_classes(classes, class_folders(src), src)
    report = Report()
    files = [(c, f, {}) for c in classes for f in list_images(src / c)]
    sources = scan_with_progress("fiber", files, settings, report, show_progress, min_side=region_px or 1)
    drop_empty_classes(classes, sources, report, explicit=True)
    for si, s in enumerate(sources):
        side = region_px or max(1, min(s.height, s.width) // 3)
        rng = np.random.default_rng([settings.seed, STREAM_FIBER_REGIONS, si])
        s.regions = distinct_regions(rng, s.height, s.width, side, regions_per_image)
        s.meta = {**s.meta, "region_px": side, **({"pixel_size_um": pixel_size} if pixel_size else {})}
    info = {"source": str(src), "regions_per_image": regions_per_image, "region_px": region_px,
            "region_um": region_um, "pixel_size_um": pixel_size}
    return run("fiber", sources, classes, Path(out), settings, report, info, show_progress)


def distinct_regions(rng: np.random.Generator, h: int, w: int, side: int, n: int) -> list[tuple[int, int, int]]:
    """Up to ``n`` distinct random square boxes (top, left, side) in an h x w image."""
    boxes: list[tuple[int, int, int]] = []
    tries = 0
    while len(boxes) < n and tries < 100 * n:
        tries += 1
        b = random_crop(rng, h, w, side)
        if b not in boxes:
            boxes.append(b)
    return boxes
