"""`microdiff evaluate` on volumes: generated 3D volumes against true ones (or against the 2D
sections a model was trained on), every number beside the real-vs-real spread.

For each volume, one phase's indicator (label volumes: ``phase``; gray volumes: the phase of
``segment``, default the bright one of Otsu's threshold) is described by the registry's phase
descriptors (``metrics.registry``): scalars (vf, S_V, the largest cluster's share, mean local
thickness, Euler characteristic density), values per axis (percolation, tortuosity factor, mean
chord) and curves (S2 along z, y, x; chord-length distributions per axis; pore sizes). Label
volumes of three or more phases add every phase's fraction, the interface density of every
pair, the triple-phase boundary density and the thin-layer share of phase 1
(``metrics.phases.scalar_names``).

The floor is what real volumes do among themselves: a scalar of the generated volumes is judged
against the truth volumes' median and spread (``within``: no further than one standard deviation
of the truth's from its median; ``near``: two; else ``outside``); a curve by the root-mean-square
distance of each volume's curve to the truth's mean curve, against the same distance of each
truth volume to the mean of the others (leave-one-out), as a ratio (``within`` <= 1.5, ``near``
<= 3). Without 3D truth (``sections``), the volumes' S2 and chord lengths along each axis are
compared with those the 2D sections have along the same direction.
"""
from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import numpy as np

from ..core.errors import DataError, SettingError, setting
from ..core.launch import process_map, resolve_workers
from ..metrics.phases import phase_scalars, scalar_names

SCALARS = ("vf", "surface", "cluster", "thickness", "euler")
PER_AXIS = ("percolation", "tortuosity", "mean_chord")
CURVES = ("s2", "chord_lengths", "pore_sizes")
AXES = "zyx"


@dataclass(frozen=True)
class VolumeEvalSettings:
    phase: int | None = None          # the phase described (labels: default 1; gray: of ``segment``, default the brightest)
    segment: str = "otsu"             # how gray volumes are split into phases
    transport: bool = True            # the tortuosity factor (TauFactor; seconds per 64^3)
    workers: int = 1                  # processes describing volumes side by side (0: one per CPU core)

    def __post_init__(self):
        from ..metrics.segmentation import Segmentation
        Segmentation.parse(self.segment)
        if self.phase is not None and not (isinstance(self.phase, int) and 0 <= self.phase <= 255):
            raise SettingError("phase", self.phase, "expected a phase index 0..255")
        resolve_workers(self.workers, 1)

    def names(self) -> tuple[str, ...]:
        from ..metrics.registry import REGISTRY
        wanted = SCALARS + PER_AXIS + CURVES
        return tuple(n for n in wanted if n in REGISTRY and REGISTRY[n].available()
                     and (self.transport or n != "tortuosity"))


@dataclass
class Judged:
    """One number or curve of the generated volumes against the truth's."""
    name: str
    axis: str                        # "" or z, y, x
    generated: np.ndarray            # per generated volume (a curve: its distance to the truth's mean)
    truth: np.ndarray                # per truth volume (a curve: leave-one-out distance)
    kind: str                        # scalar | curve

    @property
    def verdict(self) -> str:
        g, t = _finite(self.generated), _finite(self.truth)
        if not len(g) or not len(t):
            return "undefined"
        if self.kind == "curve":
            ratio = np.median(g) / max(np.median(t), 1e-12)
            return "within" if ratio <= 1.5 else "near" if ratio <= 3 else "outside"
        gap, spread = abs(np.median(g) - np.median(t)), max(float(np.std(t)), 1e-12)
        return "within" if gap <= spread else "near" if gap <= 2 * spread else "outside"

    def row(self) -> dict:
        g, t = _finite(self.generated), _finite(self.truth)
        med = (lambda v: float(np.median(v)) if len(v) else math.nan)
        out = {"descriptor": self.name, "axis": self.axis, "kind": self.kind,
               "generated_median": med(g), "generated_std": float(np.std(g)) if len(g) else math.nan,
               "truth_median": med(t), "truth_std": float(np.std(t)) if len(t) else math.nan,
               "truth_min": float(t.min()) if len(t) else math.nan, "truth_max": float(t.max()) if len(t) else math.nan,
               "generated_finite": len(g), "truth_finite": len(t), "verdict": self.verdict}
        out["ratio"] = out["generated_median"] / out["truth_median"] if out["truth_median"] else math.nan
        return out


@dataclass
class VolumeEvalResult:
    out_dir: Path
    settings: VolumeEvalSettings
    generated: list[Path]
    truth: list[Path]
    values: dict[str, list[dict[str, np.ndarray]]] = field(default_factory=dict)    # "generated"/"truth" -> per volume
    judged: list[Judged] = field(default_factory=list)
    against_sections: bool = False
    report: Path | None = None

    def table_markdown(self) -> str:
        head = ["descriptor", "axis", "generated (median ± std)", "truth (median ± std)", "truth range", "ratio",
                "verdict"]
        lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        for j in self.judged:
            r = j.row()
            what = "distance to the truth's mean" if j.kind == "curve" else ""
            lines.append(f"| {j.name}{' (' + what + ')' if what else ''} | {j.axis or '—'} | {_pm(r, 'generated')} | "
                         f"{_pm(r, 'truth')} | {r['truth_min']:.4g} … {r['truth_max']:.4g} | {r['ratio']:.3g} | "
                         f"{r['verdict']} |")
        return "\n".join(lines) + "\n"


def _pm(r: dict, side: str) -> str:
    return f"{r[side + '_median']:.4g} ± {r[side + '_std']:.3g}"


def _finite(v: np.ndarray) -> np.ndarray:
    v = np.asarray(v, dtype=np.float64)
    return v[np.isfinite(v)]


def evaluate_volumes(generated: str | Path, truth: str | Path, out: str | Path,
                     settings: VolumeEvalSettings = VolumeEvalSettings(), report: bool = True) -> VolumeEvalResult:
    """Generated volumes (a ``sample3d`` folder, or a folder of 3-D files) against the true
    volumes in ``truth``; writes ``metrics.csv`` (one row per volume), ``table.md`` and
    (``report``) ``report.html`` into ``out``."""
    from ..data.volumes import list_volumes
    gen_files, truth_files = list_volumes(generated, "generated volumes"), list_volumes(truth, "true volumes")
    for files, where, name in ((gen_files, generated, "generated"), (truth_files, truth, "truth")):
        if not files:
            raise DataError(f"{where}: holds no volumes (NNNN/labels.npy as sample3d writes them, or 3-D .npy/.tif "
                            f"files); give the {name} volumes' folder")
    names = settings.names()
    phases = label_phases(gen_files + truth_files)
    every = process_map(partial(_measure, settings=settings, names=names, phases=phases), gen_files + truth_files,
                        settings.workers)
    gen, tru = every[:len(gen_files)], every[len(gen_files):]
    names = names + scalar_names(phases)
    if len({v["_shape"] for v in gen + tru}) > 1:
        raise DataError(f"the volumes differ in shape (true, in {truth}: {sorted({v['_shape'] for v in tru})}; generated, "
                        f"in {generated}: {sorted({v['_shape'] for v in gen})}); compare volumes of one size: cut true "
                        "cubes of the generated size (curves compare at one size)")
    result = VolumeEvalResult(Path(out), settings, gen_files, truth_files, {"generated": gen, "truth": tru})
    return _conclude(result, names, report)


def _conclude(result: VolumeEvalResult, names, report: bool) -> VolumeEvalResult:
    """Judge, write the tables and (``report``, with matplotlib) report.html."""
    result.judged = judge(result.values["generated"], result.values["truth"], names)
    _write(result)
    if report:
        from . import report as R
        if R.available():
            from .volume_report import write_volume_report
            result.report = write_volume_report(result)
    return result


def label_phases(files) -> int:
    """The phase count K of label volumes (the largest id + 1 over all of them; 0 for gray)."""
    from ..data.volumes import read_volume
    ks = []
    for f in files:
        arr, is_labels = read_volume(f)
        if not is_labels:
            return 0
        ks.append(int(arr.max()) + 1)
    return max(2, max(ks)) if ks else 0


def _measure(path: Path, settings: VolumeEvalSettings, names, phases: int = 0) -> dict:
    from ..data.volumes import read_volume
    from ..metrics import volume as V
    arr, is_labels = read_volume(path)
    ind = _indicator(path, arr, is_labels, settings)
    out = V.measure(ind, names)
    if is_labels and phases >= 3:
        out.update(phase_scalars(arr, phases))
    out["_shape"] = tuple(ind.shape)
    out["_indicator_mid"] = [np.take(ind, n // 2, axis=a) for a, n in enumerate(ind.shape)]
    return out


def _indicator(path: Path, arr: np.ndarray, is_labels: bool, settings: VolumeEvalSettings) -> np.ndarray:
    if is_labels:
        phases = int(arr.max()) + 1
        k = 1 if settings.phase is None else settings.phase
        if k >= max(2, phases):
            raise SettingError("phase", k, f"{path} holds phases 0..{max(1, phases - 1)}")
        return arr == k
    from ..metrics.segmentation import Segmentation
    seg = Segmentation.parse(settings.segment)
    k = seg.phases - 1 if settings.phase is None else settings.phase
    if k >= seg.phases:
        raise SettingError("phase", k, f"the segmentation {seg} has phases 0..{seg.phases - 1} "
                           f"(choose another {setting('segment')})")
    return seg.labels(arr)[0] == k


def judge(gen: list[dict], tru: list[dict], names) -> list[Judged]:
    """Each descriptor of the generated volumes against the truth's (the module's doc)."""
    out = []
    for n in names:
        g, t = np.stack([v[n] for v in gen]), np.stack([v[n] for v in tru])
        if n in SCALARS or g.ndim == 1:
            out.append(Judged(n, "", g, t, "scalar"))
        elif n in PER_AXIS:
            out += [Judged(n, AXES[a], g[:, a], t[:, a], "scalar") for a in range(g.shape[1])]
        elif n == "s2":                                   # (4, R): along z, y, x and radial
            out += [Judged(n, AXES[a], *_curve_distances(g[:, a], t[:, a]), "curve") for a in range(3)]
        elif g.ndim == 3:                                 # per axis
            out += [Judged(n, AXES[a], *_curve_distances(g[:, a], t[:, a]), "curve") for a in range(g.shape[1])]
        else:
            out.append(Judged(n, "", *_curve_distances(g, t), "curve"))
    return out


def _curve_distances(g: np.ndarray, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """RMS distance of each generated curve to the truth's mean curve, and of each truth curve to
    the mean of the other truth curves (the floor)."""
    mean = t.mean(0)
    dg = np.sqrt(((g - mean) ** 2).mean(1))
    if len(t) < 2:
        return dg, np.full(len(t), math.nan)
    others = (t.sum(0)[None] - t) / (len(t) - 1)
    return dg, np.sqrt(((t - others) ** 2).mean(1))


def _write(result: VolumeEvalResult) -> None:
    from ..core.files import write_text_atomic
    out = result.out_dir
    out.mkdir(parents=True, exist_ok=True)
    buf = io.StringIO()
    rows = []
    for side, files in (("generated", result.generated), ("truth", result.truth)):
        for f, v in zip(files, result.values[side]):
            row = {"source": side, "file": str(f)}
            for n, val in v.items():
                if n.startswith("_") or (val.ndim > 1 or (n in CURVES)):
                    continue
                if val.ndim == 0:
                    row[n] = float(val)
                else:
                    row.update({f"{n}_{AXES[a]}": float(x) for a, x in enumerate(val)})
            rows.append(row)
    keys = list(dict.fromkeys(k for r in rows for k in r))
    w = csv.DictWriter(buf, fieldnames=keys)
    w.writeheader()
    w.writerows(rows)
    write_text_atomic(out / "metrics.csv", buf.getvalue())
    judged = io.StringIO()
    jw = csv.DictWriter(judged, fieldnames=list(result.judged[0].row()))
    jw.writeheader()
    jw.writerows([j.row() for j in result.judged])
    write_text_atomic(out / "summary.csv", judged.getvalue())
    write_text_atomic(out / "table.md", result.table_markdown())


SECTION_NAMES = ("vf", "surface", "s2", "chord_lengths", "mean_chord")


def evaluate_against_sections(generated: str | Path, sections: str | Path, out: str | Path,
                              settings: VolumeEvalSettings = VolumeEvalSettings(), groups: int = 16,
                              report: bool = True) -> VolumeEvalResult:
    """Generated volumes against 2D sections (a data set such as the model was trained on): vf,
    S_V, and per axis S2, chord lengths and the mean chord, along the sections' directions. A
    section's rows run along the two axes other than its normal (``manifest.csv``'s ``normal``;
    without one the structure is taken as isotropic). The truth's "volumes" are ``groups``
    averages of as many sections as a generated volume holds along an axis, drawn at random
    (seed 0), so their spread is that of a volume's worth of sections."""
    from ..data.volumes import list_volumes
    gen_files = list_volumes(generated, "generated volumes")
    if not gen_files:
        raise DataError(f"{generated}: holds no volumes (NNNN/labels.npy as sample3d writes them, or 3-D files)")
    names = tuple(n for n in SECTION_NAMES if n in settings.names())
    gen = process_map(partial(_measure, settings=settings, names=names), gen_files, settings.workers)
    shape = gen[0]["_shape"]
    truth = _section_truth(Path(sections), shape, settings, groups)
    result = VolumeEvalResult(Path(out), settings, gen_files, [Path(sections)] * len(truth),
                              {"generated": gen, "truth": truth}, against_sections=True)
    return _conclude(result, names, report)


def _section_truth(folder: Path, shape: tuple[int, ...], settings: VolumeEvalSettings, groups: int) -> list[dict]:
    from ..data.io import list_class_images, read_image
    from ..metrics import morphology as M
    from ..metrics import volume as V
    files = [f for fs in list_class_images(folder, "sections folder").values() for f in fs]
    normal = _normals(folder)
    rows = []                                     # per section: its in-plane axes and their numbers
    for f in files:
        img = read_image(f, allow_rgb=False)
        if img.shape[0] < shape[1] // 2 or img.shape[1] < shape[2] // 2:
            raise DataError(f"{f}: a {img.shape[1]}x{img.shape[0]} section is too small to compare with volumes of "
                            f"{'x'.join(map(str, reversed(shape)))}")
        ind = _indicator(f, img, False, settings)
        n = normal.get(f.name)
        axes = [a for a in range(3) if a != AXES.index(n)] if n in AXES else None
        R = min(shape) // 2
        rows.append((axes, V.volume_fraction(ind), V.specific_surface(ind), V.s2_along(ind, R),
                     _resize(M.chord_length_distribution(ind), max(shape)), M.mean_chord_length(ind)))
    rng = np.random.default_rng(0)
    out = []
    for _ in range(groups):
        pick = [rows[i] for i in rng.choice(len(rows), size=min(len(rows), max(shape)), replace=True)]
        entry = {"vf": np.mean([r[1] for r in pick]), "surface": np.mean([r[2] for r in pick]), "_shape": shape,
                 "_indicator_mid": None}
        for key, col in (("s2", 3), ("chord_lengths", 4), ("mean_chord", 5)):
            per_axis = []
            for a in range(3):
                vals = [r[col][k] for r in pick for k in range(2) if r[0] is None or r[0][k] == a]
                per_axis.append(np.nanmean(vals, axis=0) if vals else np.full_like(pick[0][col][0], np.nan))
            entry[key] = np.stack(per_axis)
        if "s2" in entry:
            entry["s2"] = np.vstack([entry["s2"], entry["s2"].mean(0, keepdims=True)])    # radial: the axes' mean
        out.append({k: np.asarray(v) if not k.startswith("_") else v for k, v in entry.items()})
    return out


def _resize(a: np.ndarray, n: int) -> np.ndarray:
    """Distributions padded or cut to ``n`` lengths (sections and volumes may differ in side)."""
    out = np.zeros((a.shape[0], n))
    out[:, :min(n, a.shape[1])] = a[:, :n]
    return out


def _normals(folder: Path) -> dict[str, str]:
    """File name -> the axis its section is normal to, from ``manifest.csv`` where it says."""
    path = folder / "manifest.csv"
    if not path.is_file():
        return {}
    with open(path, newline="") as fh:
        return {Path(r["file"]).name: r["normal"] for r in csv.DictReader(fh) if r.get("normal") and r.get("file")}
