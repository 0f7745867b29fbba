"""The 3D section of ``report.html``: volumes against their truth, read at a glance.

The verdict table first (every descriptor beside the truth's median, spread and range), then
mid-plane orthoslices of a few volumes beside true ones, S2 along z, y and x with the truth's
range, chord-length distributions per axis, pore sizes, and each volume's porosity, specific
surface and tortuosity factors against the truth's range. The numbers behind every figure sit
in the page as JSON (``report``'s convention).
"""
from __future__ import annotations

import html
from pathlib import Path

import numpy as np

from .report import _data, _img, _pyplot, figure_uri, html_table, page, tiles_figure

AXES = "zyx"

COLORS = {"within": "#1a7f37", "near": "#b08800", "outside": "#cf222e", "undefined": "#666"}
SHOWN = 3                          # volumes of each side in the orthoslices


def write_volume_report(result, title: str = "microdiff evaluation: volumes") -> Path:
    """``report.html`` in the evaluation's output folder."""
    from ..core.files import write_text_atomic
    truth_name = "2D sections" if result.against_sections else "true volumes"
    where = result.truth[0] if result.against_sections else result.truth[0].parent
    count = "" if result.against_sections else f"{len(result.truth)} "
    intro = (f"<p>{len(result.generated)} generated volumes against {count}{truth_name} "
             f"(<code>{html.escape(str(where))}</code>), shape "
             f"{' x '.join(map(str, result.values['generated'][0]['_shape']))}. A scalar is "
             "<b>within</b> when the generated median is no further from the truth's median than one standard "
             "deviation of the truth's, <b>near</b> within two; a curve when each volume's distance to the truth's "
             "mean curve is at most 1.5 (near: 3) times that of a true volume to the mean of the others.</p>")
    body = intro + _verdicts(result) + '<div class="figs">' + "".join(_figures(result)) + "</div>"
    path = result.out_dir / "report.html"
    write_text_atomic(path, page(title, body))
    return path


def _verdicts(result) -> str:
    head = ["descriptor", "axis", "generated median", "± std", "truth median", "± std", "truth min", "truth max",
            "ratio", "verdict"]
    rows = []
    for j in result.judged:
        r = j.row()
        rows.append([j.name + (" (distance)" if j.kind == "curve" else ""), j.axis or "—", r["generated_median"],
                     r["generated_std"], r["truth_median"], r["truth_std"], r["truth_min"], r["truth_max"], r["ratio"],
                     r["verdict"]])
    table = html_table(head, rows, "verdicts")
    for word, color in COLORS.items():
        table = table.replace(f"<td>{word}</td>", f'<td style="color:{color};font-weight:600">{word}</td>')
    counts = {w: sum(j.verdict == w for j in result.judged) for w in COLORS}
    summary = ", ".join(f"{n} {w}" for w, n in counts.items() if n)
    return f'<section id="verdicts"><h2>Verdicts ({summary})</h2>{table}</section>'


def _figures(result) -> list[str]:
    figs = []
    if result.values["generated"][0]["_indicator_mid"] is not None:
        figs.append(_img(figure_uri(_slices(result)), "mid-plane orthoslices (z, y, x) of generated and true volumes",
                         wide=True))
    for name, label in (("s2", "S2(r) along each axis"), ("chord_lengths", "chord-length distribution per axis")):
        if name in result.values["generated"][0]:
            fig, payload = _per_axis(result, name, label)
            figs.append(_img(figure_uri(fig), label, wide=True) + _data(name, "volumes", payload))
    if "pore_sizes" in result.values["generated"][0]:
        fig, payload = _curve(result, "pore_sizes", "local-thickness radius (voxels)", "volume fraction of the phase")
        figs.append(_img(figure_uri(fig), "pore sizes (local thickness)") + _data("pore_sizes", "volumes", payload))
    fig, payload = _strips(result)
    figs.append(_img(figure_uri(fig), "per volume: porosity, specific surface and tortuosity against the truth's "
                     "range", wide=True) + _data("per_volume", "volumes", payload))
    return figs


def _slices(result):
    rows = []
    for side in ("generated", "truth"):
        for k, v in enumerate(result.values[side][:SHOWN]):
            if v["_indicator_mid"] is not None:
                rows.append((f"{side} {k}", [m.astype(np.float32) for m in v["_indicator_mid"]]))
    return tiles_figure(rows, "mid-planes normal to z, y, x (white: the phase)")


def _per_axis(result, name: str, label: str):
    plt = _pyplot()
    fig, axs = plt.subplots(1, 3, figsize=(12, 3.2), sharey=True)
    payload = {}
    for a, ax in enumerate(axs):
        for side, color in (("truth", "C1"), ("generated", "C0")):
            curves = np.stack([v[name][a] for v in result.values[side]])
            curves = curves[:, : _extent(curves)]
            r = np.arange(curves.shape[1]) + (1 if name == "chord_lengths" else 0)
            mean = np.nanmean(curves, 0)
            ax.plot(r, mean, color=color, label=f"{side} (n={len(curves)})")
            lo, hi = (np.nanmin(curves, 0), np.nanmax(curves, 0)) if side == "truth" else \
                (mean - np.nanstd(curves, 0), mean + np.nanstd(curves, 0))
            ax.fill_between(r, lo, hi, color=color, alpha=0.2)
            payload[f"{side}_{AXES[a]}"] = {"mean": mean.tolist(), "lo": lo.tolist(), "hi": hi.tolist()}
        ax.set_title(f"{label.split(' ')[0]} along {AXES[a]}")
        ax.set_xlabel("r (voxels)" if name == "s2" else "chord length (voxels)")
    axs[0].legend(fontsize=8)
    fig.suptitle(label + " (truth: its range; generated: mean ± std)", fontsize=10)
    fig.tight_layout()
    return fig, payload


def _extent(curves: np.ndarray) -> int:
    """Where a distribution's tail ends (all of an S2)."""
    nz = np.nonzero(np.nanmax(np.abs(curves), 0) > 1e-4)[0]
    return int(nz.max()) + 2 if len(nz) else curves.shape[1]


def _curve(result, name: str, xlabel: str, ylabel: str):
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(4.6, 3.2))
    payload = {}
    for side, color in (("truth", "C1"), ("generated", "C0")):
        curves = np.stack([v[name] for v in result.values[side]])
        curves = curves[:, : _extent(curves)]
        r = np.arange(1, curves.shape[1] + 1)
        mean = curves.mean(0)
        ax.plot(r, mean, color=color, label=f"{side} (n={len(curves)})")
        ax.fill_between(r, curves.min(0), curves.max(0), color=color, alpha=0.2)
        payload[side] = {"mean": mean.tolist(), "lo": curves.min(0).tolist(), "hi": curves.max(0).tolist()}
    ax.set_xlabel(xlabel), ax.set_ylabel(ylabel)
    ax.legend(fontsize=8)
    return fig, payload


def _strips(result):
    """Each volume's value as a point, the truth's range as a band."""
    plt = _pyplot()
    items = [("vf", None), ("surface", None)] + [("tortuosity", a) for a in range(3)
                                                 if "tortuosity" in result.values["generated"][0]]
    fig, axs = plt.subplots(1, len(items), figsize=(2.4 * len(items), 3), squeeze=False)
    payload = {}
    for ax, (name, a) in zip(axs[0], items):
        key = name if a is None else f"{name}_{AXES[a]}"
        vals = {side: np.array([float(v[name] if a is None else v[name][a]) for v in result.values[side]])
                for side in ("generated", "truth")}
        t = vals["truth"][np.isfinite(vals["truth"])]
        if len(t):
            ax.axhspan(t.min(), t.max(), color="C1", alpha=0.2)
            ax.axhline(np.median(t), color="C1")
        for x, side, color in ((0, "truth", "C1"), (1, "generated", "C0")):
            v = vals[side]
            ax.plot(np.full(len(v), x) + np.linspace(-0.15, 0.15, len(v)), np.where(np.isfinite(v), v, np.nan), "o",
                    color=color, ms=4)
        ax.set_xticks([0, 1], ["truth", "generated"])
        ax.set_title(key, fontsize=9)
        payload[key] = {side: [x if np.isfinite(x) else None for x in v.tolist()] for side, v in vals.items()}
    fig.tight_layout()
    return fig, payload
