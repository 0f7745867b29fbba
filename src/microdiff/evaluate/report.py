"""``report.html``: one self-contained page (figures embedded as PNG data URIs, no network) for an
evaluation (``evaluate``, ``demo``) or a training run (``microdiff report RUN``).

Per class: Table 4's numbers, generated next to training images, the closest training images
(Table 3's layout), S2(r) of generated vs training (mean and spread), histograms of the volume
fraction and of the errors to the nearest training image. The numbers behind every curve sit in
the page as JSON (``<script type="application/json" class="plot-data">``), so a test or a user
can read them back. matplotlib (Agg) is imported only here.
"""
from __future__ import annotations

import base64
import html
import io
import json
import math
from pathlib import Path

import numpy as np

STYLE = """body{font-family:system-ui,sans-serif;max-width:1100px;margin:auto;padding:1em;color:#222}
h1{font-size:1.6em}h2{border-bottom:1px solid #ccc;padding-top:.5em}img{max-width:100%;height:auto}
table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;padding:.25em .6em;text-align:right}
th{background:#f3f3f3}.note{background:#fff4d6;padding:.4em .8em;border-left:4px solid #e0a800}
td.within{background:#d9f2d9}td.near{background:#fff1c2}td.outside{background:#f8d0d0}td.no-floor{color:#777}
table.verdicts td:nth-child(2),table.verdicts td:last-child{text-align:left}
.figs{display:flex;flex-wrap:wrap;gap:1em}.figs figure{margin:0;flex:1 1 300px}.figs figure.wide{flex-basis:100%}
@media print{section{page-break-inside:avoid}}"""
MAX_TILES = 8


def available() -> bool:
    """Whether matplotlib (the ``report`` extra) is installed."""
    import importlib.util
    return importlib.util.find_spec("matplotlib") is not None


MISSING = "report.html needs matplotlib: pip install 'microdiff[report]'"


def _pyplot():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def figure_uri(fig) -> str:
    """A matplotlib figure as a PNG data URI (the figure is closed)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, bbox_inches="tight")
    _pyplot().close(fig)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def _img(uri: str, alt: str, wide: bool = False) -> str:
    cls = ' class="wide"' if wide else ""
    return f'<figure{cls}><img src="{uri}" alt="{html.escape(alt)}"><figcaption>{html.escape(alt)}</figcaption></figure>'


def _data(kind: str, cls: str, payload: dict) -> str:
    text = json.dumps(payload).replace("</", "<\\/")
    return (f'<script type="application/json" class="plot-data" data-kind="{kind}" '
            f'data-class="{html.escape(cls)}">{text}</script>')


def _fmt(v) -> str:
    if isinstance(v, str):
        return html.escape(v)
    if v is None or not math.isfinite(v):
        return "n/a"
    return f"{v:.4g}"


def html_table(head: list[str], rows: list[list], cls: str = "") -> str:
    th = "".join(f"<th>{html.escape(h)}</th>" for h in head)
    body = "".join("<tr>" + "".join(f"<td>{_fmt(v)}</td>" for v in r) + "</tr>" for r in rows)
    return f'<table class="{cls}"><tr>{th}</tr>{body}</table>'


def page(title: str, body: str) -> str:
    return (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
            f'<meta name="viewport" content="width=device-width,initial-scale=1"><style>{STYLE}</style></head>'
            f"<body><h1>{html.escape(title)}</h1>{body}</body></html>")


# ----------------------------------------------------------------------------- figures of one class

def tiles_figure(rows: list[tuple[str, list[np.ndarray]]], title: str):
    """Rows of gray tiles, each row labelled."""
    plt = _pyplot()
    ncol = max(1, max(len(t) for _, t in rows))
    fig, axes = plt.subplots(len(rows), ncol, figsize=(max(4.0, 1.6 * ncol), 1.75 * len(rows)), squeeze=False)
    for r, (label, tiles) in enumerate(rows):
        for c in range(ncol):
            ax = axes[r][c]
            ax.set_xticks([]), ax.set_yticks([])
            if c < len(tiles):
                ax.imshow(tiles[c], cmap="gray", vmin=0, vmax=1)
            else:
                ax.axis("off")
        axes[r][0].set_ylabel(label, fontsize=10)
    fig.suptitle(title, fontsize=12)
    return fig


def s2_figure(gen_s2: np.ndarray, tr_s2: np.ndarray | None, phase: int, floor_s2: np.ndarray | None = None):
    """Mean S2(r) with a band of one standard deviation; (figure, the plotted numbers)."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(4.2, 3))
    r = np.arange(gen_s2.shape[-1])
    data = {"phase": phase, "r": r.tolist()}
    for name, s2, color in (("generated", gen_s2, "C0"), ("training", tr_s2, "C1"), ("held-out", floor_s2, "C2")):
        if s2 is None or not len(s2):
            continue
        mean, std = s2.mean(0), s2.std(0)
        ax.plot(r, mean, color=color, label=f"{name} (n={len(s2)})")
        ax.fill_between(r, mean - std, mean + std, color=color, alpha=0.2)
        data[f"{name}_mean"], data[f"{name}_std"] = mean.tolist(), std.tolist()
    ax.set_xlabel("r (pixels)"), ax.set_ylabel(f"S2(r), phase {phase}")
    ax.legend(fontsize=8)
    return fig, data


def histogram_figure(series: dict[str, np.ndarray], xlabel: str):
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(4.2, 3))
    vals = np.concatenate([v for v in series.values() if len(v)])
    lo, hi = (float(vals.min()), float(vals.max())) if len(vals) else (0.0, 1.0)
    if hi - lo < 1e-9:                       # one value: a visible bar around it
        pad = max(abs(hi), 1.0) * 0.01
        lo, hi = lo - pad, hi + pad
    bins = np.linspace(lo, hi, 21)
    for name, v in series.items():
        if len(v):
            ax.hist(v, bins=bins, alpha=0.55, label=f"{name} (n={len(v)})", density=True)
    ax.set_xlabel(xlabel), ax.set_ylabel("density")
    ax.legend(fontsize=8)
    return fig


# ----------------------------------------------------------------------------- evaluation report

def _read_tiles(paths, size: int) -> list[np.ndarray]:
    from ..data.io import crop_resample, read_image
    out = []
    for p in paths[:MAX_TILES]:
        a = read_image(p)
        a = a.mean(-1) if a.ndim == 3 else a
        out.append(a if a.shape == (size, size) else crop_resample(a, size))
    return out


def _metrics_rows(result, c: str) -> str:
    m = result.classes[c]
    ds = result.settings.descriptors
    head = ["n"] + [f"E_{d} % example" for d in ds] + [f"E_{d} % median" for d in ds] + ["FID", "KID x 1e3"]
    row = [m.n] + [m.example[d] for d in ds] + [m.median[d] for d in ds] + [m.fid, 1e3 * m.kid]
    return html_table(head, [row], "metrics")


def _closest_figure(result, c: str, generated: Path, train: Path):
    rows = [r for r in result.rows if r["class"] == c][:4]
    ds = [d for d in result.settings.descriptors if f"closest_{d}" in rows[0]]
    grid = [("generated", _read_tiles([generated / r["file"] for r in rows], result.size))]
    grid += [(f"closest in {d}", _read_tiles([train / r[f"closest_{d}"] for r in rows], result.size)) for d in ds]
    return tiles_figure(grid, "closest training images (Table 3 layout)")


def _copies_figure(result, c: str, generated: Path, train: Path, n: int = 6):
    """The generated images closest to a training image after rotation, mirror and shift, above
    the training images they match (turned to the generated image's orientation)."""
    from ..data.transforms import DIHEDRAL_NAMES, dihedral
    rows = sorted((r for r in result.rows if r["class"] == c), key=lambda r: r["copy_px_pct"])[:n]
    gen, match = [], []
    for r in rows:
        gen += _read_tiles([generated / r["file"]], result.size)
        k = DIHEDRAL_NAMES.index(r["copy_transform"])
        inverse = (4 - k) % 4 if k < 4 else k          # rotations invert by the opposite turn; mirrors are their own
        match.append(dihedral(_read_tiles([train / r["copy_closest"]], result.size)[0], inverse))
    return tiles_figure([("generated", gen), ("closest training", match)],
                        "closest to a training image: " + ", ".join(f"{r['copy_px_pct']:.3g} %" for r in rows))


def verdict_table(result) -> str:
    """The verdicts of every class at the top of the page (``verdicts``)."""
    from .verdicts import RULES
    if not result.verdicts:
        return ""
    head = ["class", "check", "generated", "floor", "score", "verdict", "detail"]
    body = []
    for c, cv in result.verdicts.items():
        for v in cv.checks:
            cls = v.verdict.replace(" ", "-")
            cells = [c, v.check, v.generated, v.floor, v.score]
            body.append("<tr>" + "".join(f"<td>{_fmt(x)}</td>" for x in cells)
                        + f'<td class="{cls}">{html.escape(v.verdict)}</td><td>{html.escape(v.detail)}</td></tr>')
    th = "".join(f"<th>{html.escape(h)}</th>" for h in head)
    floor = (f"held-out real images of <code>{html.escape(str(result.reference))}</code>, scored exactly as the "
             "generated ones" if result.reference else "none: give held-out real images (<code>evaluate --reference"
             "</code>; <code>prepare --holdout</code> makes them) to judge E, S2, KID and copies")
    rules = "".join(f"<li><b>{html.escape(k)}</b>: {html.escape(r.score)}; within &le; {r.within:g}, near &le; "
                    f"{r.near:g}</li>" for k, r in RULES.items())
    overall = ", ".join(f"{html.escape(c)}: <b>{cv.overall}</b>" for c, cv in result.verdicts.items())
    missing = (f'<p class="note">no held-out images of {html.escape(", ".join(result.no_floor))}: no floor for '
               "these classes</p>" if result.no_floor else "")
    return (f'<section id="verdicts"><h2>Verdicts</h2><p>Worst check per class: {overall}. Floor: {floor}.</p>'
            f'{missing}<table class="verdicts"><tr>{th}</tr>{"".join(body)}</table>'
            f"<details><summary>scores and thresholds</summary><ul>{rules}</ul></details>"
            f'{_data("verdicts", "", {c: [v.__dict__ for v in cv.checks] for c, cv in result.verdicts.items()})}'
            "</section>")


def class_section(result, c: str, generated: Path, train: Path, train_files) -> str:
    """One class: numbers, image grids, S2 curves and histograms (with the plotted data)."""
    ph, rows = result.phases[c], [r for r in result.rows if r["class"] == c]
    fl = result.floor_phases.get(c)
    floor_rows = [r for r in result.floor_rows if r["class"] == c]
    k = ph.phases - 1
    notes = []
    if len(rows) < 2:
        notes.append("only one generated image: spreads, FID and KID are undefined")
    gen_tiles = _read_tiles([generated / r["file"] for r in rows], result.size)
    figs = [_img(figure_uri(tiles_figure([("generated", gen_tiles), ("training", _read_tiles(train_files, result.size))],
                                         f"{c}: generated and training")), f"{c}: generated and training images", wide=True),
            _img(figure_uri(_closest_figure(result, c, generated, train)), f"{c}: closest training images")]
    fig, s2 = s2_figure(ph.generated_s2[:, k], ph.train_s2[:, k], k, fl.generated_s2[:, k] if fl else None)
    figs.append(_img(figure_uri(fig), f"{c}: two-point correlation S2(r) of phase {k}"))
    vf = {"generated": ph.generated_vf[:, k], "training": ph.train_vf[:, k],
          **({"held-out": fl.generated_vf[:, k]} if fl else {})}
    figs.append(_img(figure_uri(histogram_figure(vf, f"volume fraction of phase {k}")), f"{c}: volume fraction"))
    errs = {f"E_{d}": np.array([r[f"E_{d}_pct"] for r in rows]) for d in result.settings.descriptors}
    errs["copy distance"] = np.array([r["copy_px_pct"] for r in rows])
    for name, v in errs.items():
        key = "copy_px_pct" if name == "copy distance" else f"{name}_pct"
        series = {"generated": v, **({"held-out": np.array([r[key] for r in floor_rows])} if floor_rows else {})}
        figs.append(_img(figure_uri(histogram_figure(series, f"{name} % to the nearest training image")),
                         f"{c}: {name} to the nearest training image"))
    figs.append(_img(figure_uri(_copies_figure(result, c, generated, train)),
                     f"{c}: the generated images closest to a training image (copy check)", wide=True))
    data = _data("s2", c, s2) + _data("vf", c, {k: v.tolist() for k, v in vf.items()})
    note = "".join(f'<p class="note">{html.escape(n)}</p>' for n in notes)
    return (f'<section class="class" id="class-{html.escape(c)}" data-class="{html.escape(c)}"><h2>{html.escape(c)}</h2>'
            f'{note}{_metrics_rows(result, c)}<div class="figs">{"".join(figs)}</div>{data}</section>')


def unmatched_section(c: str, files, size: int) -> str:
    fig = tiles_figure([("generated", _read_tiles(files, size))], f"{c}: generated")
    return (f'<section class="class unmatched" id="class-{html.escape(c)}" data-class="{html.escape(c)}">'
            f'<h2>{html.escape(c)}</h2><p class="note">no training images of this class: nothing to compare '
            f'with ({len(files)} generated)</p><div class="figs">{_img(figure_uri(fig), c + ": generated")}</div>'
            "</section>")


def write_eval_report(result, generated: Path, train: Path, title: str = "microdiff evaluation") -> Path:
    """``report.html`` in the evaluation's output folder."""
    from ..data.io import list_class_images
    from ..core.files import write_text_atomic
    train_files = list_class_images(train, "training folder", result.settings.labels)
    intro = (f"<p>Generated images in <code>{html.escape(str(generated))}</code> against training images in "
             f"<code>{html.escape(str(train))}</code>, {result.size}x{result.size} pixels. E = 100 x mean squared "
             f"error of a descriptor to the closest training image (S: correlations, G: Gram matrices, px: pixels)."
             f"</p><details><summary>Table 4 (Markdown)</summary><pre>{html.escape(result.table_markdown())}</pre>"
             "</details>")
    body = intro + verdict_table(result)
    body += "".join(class_section(result, c, generated, train, train_files.get(c, [])) for c in result.classes)
    body += "".join(unmatched_section(c, fs, result.size) for c, fs in result.unmatched.items())
    path = result.out_dir / "report.html"
    write_text_atomic(path, page(title, body))
    return path


# ----------------------------------------------------------------------------- training run report

def read_log(path: Path) -> dict[str, np.ndarray]:
    """The columns of a run's ``log.csv`` as float arrays."""
    import csv
    with open(path, newline="") as fh:
        rows = [r for r in csv.DictReader(fh) if r.get("step", "").isdigit()]
    return {k: np.array([float(r[k]) for r in rows]) for k in (rows[0] if rows else {})}


def curves_figure(log: dict[str, np.ndarray]):
    """Loss terms (log scale), learning rate and images/s against the step."""
    plt = _pyplot()
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.2))
    for k in ("loss", "mse", "vb"):
        if k in log and np.any(log[k] > 0):
            axes[0].plot(log["step"], log[k], label=k)
    axes[0].set_yscale("log"), axes[0].set_title("loss terms"), axes[0].legend(fontsize=8)
    axes[1].plot(log["step"], log["lr"]), axes[1].set_title("learning rate")
    axes[2].plot(log["step"], log["images_per_s"]), axes[2].set_title("images / s")
    for ax in axes:
        ax.set_xlabel("step")
    return fig


def write_run_report(run_dir: str | Path, out: str | Path | None = None, grids: int = 4) -> Path:
    """``RUN/report.html`` for a training run: loss curves, learning rate, throughput, the last
    preview grids and the run's settings."""
    from ..core.errors import MissingPathError
    from ..core.files import write_text_atomic
    run_dir = Path(run_dir)
    if not (run_dir / "log.csv").is_file():
        raise MissingPathError(f"{run_dir} has no log.csv: give a training run folder (the folder `microdiff train` wrote)")
    if not available():
        raise MissingPathError(MISSING)
    log = read_log(run_dir / "log.csv")
    if not len(log.get("step", [])):
        from ..core.errors import DataError
        raise DataError(f"{run_dir / 'log.csv'} holds no logged steps (a log of `microdiff train` has a header "
                        "step,loss,... and one row per logged step); give a training run folder")
    parts = [f"<p>Run <code>{html.escape(str(run_dir))}</code>: {len(log.get('step', []))} logged steps, "
             f"last step {int(log['step'][-1]) if len(log.get('step', [])) else 0}.</p>"]
    if len(log.get("step", [])):
        parts.append(f'<section><h2>Training curves</h2>{_img(figure_uri(curves_figure(log)), "loss, lr, images/s")}'
                     f'{_data("log", "", {k: v.tolist() for k, v in log.items()})}</section>')
    pngs = sorted((run_dir / "samples").glob("step_*.png"))[-grids:]
    if pngs:
        figs = "".join(_img("data:image/png;base64," + base64.b64encode(p.read_bytes()).decode(), p.stem) for p in pngs)
        parts.append(f'<section><h2>Sample grids (EMA weights)</h2><div class="figs">{figs}</div></section>')
    if (run_dir / "run.json").is_file():
        parts.append(f"<section><h2>Settings</h2><pre>{html.escape((run_dir / 'run.json').read_text())}</pre></section>")
    path = Path(out) if out else run_dir / "report.html"
    write_text_atomic(path, page(f"microdiff training run {run_dir.name}", "".join(parts)))
    return path
