"""What the importers share: progress while reading, class checks, and the summary they print."""
from __future__ import annotations

from pathlib import Path

from ...core.errors import PrepareError, setting
from .engine import PrepareResult, PrepareSettings, Report, Source, scan


def summary_table(result: PrepareResult, classes: list[str] | None = None) -> str:
    """Per-class counts, skipped files and notes as the text `microdiff prepare` prints."""
    counts, report = result.counts, result.report
    lines = [f"{'class':32s} {'originals':>9s} {'augmented':>9s} {'total':>7s}"]
    for c in list(counts) + [c for c in (classes or []) if c not in counts]:
        if c in counts:
            k = counts[c]
            lines.append(f"{c:32s} {k.originals:9d} {k.augmented:9d} {k.total:7d}")
        else:
            lines.append(f"{c:32s} {'-':>9s} {'-':>9s} {0:7d}   (no images)")
    if report.skipped:
        lines.append(f"skipped {len(report.skipped)} file(s):")
        lines += [f"  {f}: {r}" for f, r in report.skipped[:20]]
        if len(report.skipped) > 20:
            lines.append(f"  ... {len(report.skipped) - 20} more (all listed in dataset.json)")
    if result.heldout is not None:
        n = sum(k.total for k in result.heldout_counts.values())
        lines.append(f"held out {n} image(s) from {sum(k.sources for k in result.heldout_counts.values())} other "
                     f"source image(s): {result.heldout} (" + ", ".join(f"{c} {k.total}" for c, k in
                                                                          result.heldout_counts.items()) + ")")
    lines += report.notes
    return "\n".join(lines)


# ----------------------------------------------------------------------------- helpers for importers

def progress_bar(total: int, desc: str, show: bool):
    from tqdm.auto import tqdm
    return tqdm(total=total, desc=desc, unit="file", disable=not show)


def scan_with_progress(kind: str, files: list[tuple[str, Path, dict]], settings: PrepareSettings,
                       report: Report, show: bool, min_side: int = 1) -> list[Source]:
    bar = progress_bar(len(files), f"prepare {kind}: reading", show)
    sources = scan(files, settings, report, bar.update, min_side)
    bar.close()
    return sources


def check_classes(asked, available, where) -> list[str]:
    if not asked:
        return list(available)
    missing = [c for c in asked if c not in available]
    if missing:
        raise PrepareError(f"class(es) {', '.join(missing)} not found in {where}; available: {', '.join(available)}")
    return list(asked)


def class_folders(src: Path) -> list[str]:
    if not src.is_dir():
        raise PrepareError(f"{src} is not a folder; expected SRC/<class>/images")
    return sorted(d.name for d in src.iterdir() if d.is_dir() and not d.name.startswith("."))


def drop_empty_classes(classes, sources, report: Report, explicit: bool) -> None:
    empty = [c for c in classes if not any(s.cls == c for s in sources)]
    if empty and explicit:
        why = f" (the first skipped: {report.skipped[0][0]}: {report.skipped[0][1]})" if report.skipped else ""
        raise PrepareError(f"class(es) {', '.join(empty)} have no usable images{why}; fix what the reason says, add "
                           f"images, or leave them out with {setting('prepare:classes')}")
    for c in empty:
        report.notes.append(f"class {c}: no images found, left out")
