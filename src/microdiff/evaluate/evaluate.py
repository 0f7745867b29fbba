"""`microdiff evaluate`: the paper's Section 3 for a folder of generated images.

Per generated image: E_S, E_G, E_px (eqs. 8-10) to the closest training image of its class, in %
(100 x MSE, as Table 4), with that image. Per class: the example's value (sample 0000), the
median, FID (eq. 11) and KID with a bootstrap interval. Phases: every image (generated and
training) is segmented (Otsu, or ``segment``), or label maps are read (``labels``), for the
volume fraction of each phase and its radially averaged S2. Copies: each image's pixel distance
to its nearest training image after the best rotation, mirror and small shift (``metrics.copies``).

With a ``reference`` folder of held-out real images (``prepare --holdout``), every number is
computed for them exactly as for the generated images -- the real floor -- and each class gets
verdicts (``verdicts``). ``evaluate_folders`` returns an ``EvalResult``; ``metrics.csv`` (one
row per image, both sets), ``verdicts.csv``, ``table.md`` and ``closest.png`` (Table 3's layout)
are written from it.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from ..data.io import list_class_images, read_stack
from ..core.checks import check_int
from ..core.errors import DataError, SettingError

from ..metrics.registry import REGISTRY
from .tables import DESCRIPTORS, render_table, write_outputs


@dataclass(frozen=True)
class EvalSettings:
    descriptors: tuple[str, ...] = DESCRIPTORS
    fid: bool = True
    limit_to: int = 32
    mcrpy_shift: bool = True
    cache_dir: str | None = None
    device: str | None = None
    kid_resamples: int = 200             # bootstrap resamples of the KID interval
    copy_shift: int = 2                  # copy check: shifts up to this many pixels are forgiven
    segment: str = "otsu"                # how images are split into phases (metrics.segmentation)
    labels: bool = False                 # read label maps (*_labels.npy/png) instead of images

    def __post_init__(self):
        from ..metrics.segmentation import Segmentation
        Segmentation.parse(self.segment)
        check_int("limit_to", self.limit_to, 1, 1024, SettingError)
        check_int("kid_resamples", self.kid_resamples, 1, 10 ** 6, SettingError)
        check_int("copy_shift", self.copy_shift, 0, 64, SettingError)
        if not self.descriptors:
            raise SettingError("descriptors", "", f"expected a comma list of {', '.join(DESCRIPTORS)}")
        short = []
        for d in self.descriptors:                       # the paper's letter or the registry's name
            spec = REGISTRY.get(d) or next((s for s in REGISTRY.values() if s.short == d), None)
            if spec is None or not spec.short:
                raise SettingError("descriptors", d, f"nearest-image errors use {', '.join(DESCRIPTORS)} "
                                   "(correlations, gram, pixels)")
            short.append(spec.short)
        object.__setattr__(self, "descriptors", tuple(short))


@dataclass
class ClassMetrics:
    """One class's row of Table 4: errors in % of the example (sample 0000) and the median."""
    name: str
    n: int
    example: dict[str, float]
    median: dict[str, float]
    fid: float = math.nan
    kid: float = math.nan
    kid_lo: float = math.nan             # 90 % bootstrap interval of the KID
    kid_hi: float = math.nan


@dataclass
class PhaseStats:
    """Volume fraction of each phase (N, K) and its radially averaged S2 (N, K, R), per image."""
    phases: int
    generated_vf: np.ndarray
    train_vf: np.ndarray
    generated_s2: np.ndarray
    train_s2: np.ndarray

    def s2_error(self) -> np.ndarray:
        """Per phase: the largest |mean S2 generated - mean S2 training| over r."""
        return np.abs(self.generated_s2.mean(0) - self.train_s2.mean(0)).max(-1)


@dataclass
class EvalResult:
    out_dir: Path
    size: int
    settings: EvalSettings
    rows: list[dict] = field(default_factory=list)          # one per generated image (metrics.csv)
    classes: dict[str, ClassMetrics] = field(default_factory=dict)
    phases: dict[str, PhaseStats] = field(default_factory=dict)
    unmatched: dict[str, list[Path]] = field(default_factory=dict)   # generated classes without training images
    report: Path | None = None                                       # report.html
    reference: Path | None = None                                    # held-out real images (the floor)
    floor: dict[str, ClassMetrics] = field(default_factory=dict)     # the reference's numbers, per class
    floor_phases: dict[str, PhaseStats] = field(default_factory=dict)   # generated_* hold the reference's
    floor_rows: list[dict] = field(default_factory=list)             # one per reference image
    copies: dict[str, dict] = field(default_factory=dict)            # class -> {set: metrics.copies.CopyMatch}
    verdicts: dict = field(default_factory=dict)                     # class -> verdicts.ClassVerdicts
    no_floor: list[str] = field(default_factory=list)                # classes the reference lacks

    def table_markdown(self) -> str:
        return render_table(self)


def evaluate_folders(generated: str | Path, train: str | Path, out: str | Path,
                     settings: EvalSettings = EvalSettings(), show_progress: bool = True,
                     report: bool = True, reference: str | Path | None = None) -> EvalResult:
    """Evaluate every class folder of ``generated`` against its folder in ``train``; writes
    ``metrics.csv``, ``verdicts.csv``, ``table.md``, ``closest.png`` and (``report``)
    ``report.html`` into ``out``. With ``reference`` (held-out real images of the same size), the
    same numbers for them are the floor beside every figure. Generated classes with no training
    folder are listed in the report, not evaluated. A label data set (``dataset.json`` phases) is
    compared as label maps (``labels``)."""
    import dataclasses

    from tqdm.auto import tqdm

    from ..data.channels import data_encoding
    from ..metrics.copies import copy_distances
    from .verdicts import class_verdicts
    generated, train, out = Path(generated), Path(train), Path(out)
    if not settings.labels and train.is_dir() and data_encoding(train).kind == "phases":
        settings = dataclasses.replace(settings, labels=True)        # a label data set: compare label maps
    gen, tr, unmatched = _class_files(generated, train, settings)
    ref = _reference_files(Path(reference), gen, settings) if reference is not None else {}
    gen_x, tr_x, gen_lab, tr_lab, phases = _read_inputs(gen, tr, generated, settings)     # everything first
    size = next(iter(gen_x.values())).shape[-1]
    ref_x, ref_lab = _read_reference(ref, Path(reference) if ref else None, size, phases, settings)
    result = EvalResult(out, size, settings, unmatched=unmatched, reference=Path(reference) if ref else None,
                        no_floor=[c for c in gen if ref and c not in ref])
    n_work = sum(len(gen[c]) + len(ref.get(c, [])) + len(tr[c]) for c in gen) * len(settings.descriptors)
    with tqdm(total=n_work, desc="descriptors", unit="img", disable=not show_progress) as bar:
        for c in gen:
            sets = {"generated": gen_x[c], **({"reference": ref_x[c]} if c in ref else {})}
            errors = _descriptor_errors(sets, tr_x[c], tr[c], size, settings, bar.update)
            fid = _fid_kid(sets, tr_x[c], settings) if settings.fid else {k: (math.nan,) * 4 for k in sets}
            copies = {k: copy_distances(x, tr_x[c], settings.copy_shift) for k, x in sets.items()}
            result.copies[c] = copies
            result.phases[c] = PhaseStats(phases, *_phase_pair(gen_lab[c], tr_lab[c], phases))
            _collect(result, c, gen[c], tr[c], generated, train, errors["generated"], fid["generated"],
                     copies["generated"])
            scores = {"generated": _scores(result.phases[c], errors["generated"], copies["generated"],
                                           fid["generated"])}
            if c in ref:
                result.floor_phases[c] = PhaseStats(phases, *_phase_pair(ref_lab[c], tr_lab[c], phases))
                _collect(result, c, ref[c], tr[c], result.reference, train, errors["reference"], fid["reference"],
                         copies["reference"], floor=True)
                scores["reference"] = _scores(result.floor_phases[c], errors["reference"], copies["reference"],
                                              fid["reference"])
            ph = result.phases[c]
            result.verdicts[c] = class_verdicts(c, scores["generated"], ph.train_vf, ph.train_s2,
                                                scores.get("reference"))
    write_outputs(result, generated, train)
    from . import report as R
    if report and R.available():
        result.report = R.write_eval_report(result, generated, train)
    return result


def _scores(ph: PhaseStats, errors: dict, copies, fid):
    from .verdicts import SetScores
    return SetScores({d: 100 * np.asarray(v) for d, (v, _) in errors.items()}, ph.generated_vf, ph.generated_s2,
                     copies.distance, tuple(fid[1:]))


def _reference_files(reference: Path, gen: dict, settings: EvalSettings) -> dict[str, list[Path]]:
    """The held-out images of the generated classes; none in common is an error."""
    ref = list_class_images(reference, "reference folder", settings.labels)
    common = {c: fs for c, fs in ref.items() if c in gen}
    if not common:
        raise DataError(f"reference folder {reference} holds class(es) {', '.join(ref)}, none of the generated "
                        f"{', '.join(gen)}; give the held-out images of these classes (`microdiff prepare "
                        "--holdout` writes them)")
    return common


def _read_reference(ref: dict, root: Path | None, size: int, phases: int, settings: EvalSettings):
    """The held-out images as the generated ones are read: float stacks and label maps; they must
    have the generated images' size (the floor of another size would measure something else)."""
    from ..metrics.segmentation import Segmentation
    if not ref:
        return {}, {}
    if settings.labels:
        lab = {c: _label_stack(fs) for c, fs in ref.items()}
        top = max(int(v.max()) for v in lab.values())
        if top >= phases:
            raise DataError(f"reference label maps in {root} hold phase {top}, the generated and training ones "
                            f"only 0..{phases - 1}; give the held-out maps of the same data set")
        x = {c: torch.from_numpy(v.astype(np.float32) / (phases - 1)) for c, v in lab.items()}
    else:
        x = {c: torch.from_numpy(read_stack(fs, allow_rgb=True)) for c, fs in ref.items()}
    bad = {c: tuple(v.shape[-2:]) for c, v in x.items() if tuple(v.shape[-2:]) != (size, size)}
    if bad:
        c, shape = next(iter(bad.items()))
        raise DataError(f"reference images of class {c} in {root} are {shape[1]}x{shape[0]}, the generated ones "
                        f"{size}x{size}; the floor is computed at the generated size: prepare the held-out images "
                        f"with --size {size} (or sample at {shape[1]})")
    if not settings.labels:
        seg = Segmentation.parse(settings.segment)
        lab = {c: np.stack([seg.labels(a)[0] for a in v.numpy()]) for c, v in x.items()}
    return x, lab


def _read_inputs(gen: dict, tr: dict, generated: Path, settings: EvalSettings):
    """Float stacks for the descriptors and label maps for the phases, per class: images (the
    training ones brought to the generated size, then segmented), or label maps as read (the
    descriptors then see phase k as k / (K - 1))."""
    from ..metrics.segmentation import Segmentation
    if settings.labels:
        gen_lab = {c: _label_stack(fs) for c, fs in gen.items()}
        tr_lab = {c: _label_stack(tr[c]) for c in gen}
        phases = 1 + max(int(v.max()) for v in list(gen_lab.values()) + list(tr_lab.values()))
        phases = max(phases, 2)
        as_float = {c: torch.from_numpy(v.astype(np.float32) / (phases - 1)) for c, v in gen_lab.items()}
        tr_float = {c: torch.from_numpy(v.astype(np.float32) / (phases - 1)) for c, v in tr_lab.items()}
    else:
        as_float = {c: torch.from_numpy(read_stack(fs, allow_rgb=True)) for c, fs in gen.items()}
        seg = Segmentation.parse(settings.segment)
        phases = seg.phases
    sizes = {tuple(x.shape[-2:]) for x in as_float.values()}
    if len(sizes) > 1 or next(iter(sizes))[0] != next(iter(sizes))[1]:
        raise DataError(f"generated images in {generated} must be square and of one size (found {sorted(sizes)})")
    size = next(iter(sizes))[0]
    if settings.labels:
        bad = [c for c, v in tr_float.items() if v.shape[-2:] != (size, size)]
        if bad:
            raise DataError(f"training label maps of {', '.join(bad)} are not {size}x{size} like the generated ones; "
                            "label maps are compared at one size")
        return as_float, tr_float, gen_lab, tr_lab, phases
    tr_float = {c: torch.from_numpy(read_stack(tr[c], size, allow_rgb=True)) for c in gen}
    gen_lab = {c: np.stack([seg.labels(a)[0] for a in x.numpy()]) for c, x in as_float.items()}
    tr_lab = {c: np.stack([seg.labels(a)[0] for a in x.numpy()]) for c, x in tr_float.items()}
    return as_float, tr_float, gen_lab, tr_lab, phases


def _label_stack(files) -> np.ndarray:
    from ..data.io import read_label_stack
    return read_label_stack(files)


def _phase_pair(gen_lab: np.ndarray, tr_lab: np.ndarray, phases: int):
    from ..metrics.volume import phase_statistics
    gv, gs = phase_statistics(gen_lab, phases)
    tv, ts = phase_statistics(tr_lab, phases)
    return gv, tv, gs, ts


def _class_files(generated: Path, train: Path, settings: EvalSettings):
    from ..metrics.weights import weights_path
    gen = list_class_images(generated, "generated folder", settings.labels)
    tr = list_class_images(train, "training folder", settings.labels)
    missing = [c for c in gen if c not in tr]
    if len(missing) == len(gen):
        raise DataError(f"generated class(es) {', '.join(missing)} have no folder in {train}; it has: {', '.join(tr)}")
    unmatched = {c: gen.pop(c) for c in missing}
    if "G" in settings.descriptors:
        weights_path("vgg19")
    if settings.fid:
        weights_path("inception")
    return gen, tr, unmatched


def _device(settings: EvalSettings) -> str:
    from ..core.launch import default_device
    return default_device(settings.device)


def _descriptor_errors(sets: dict, tr_x, tr_files, size: int, settings: EvalSettings, progress):
    """{set: {descriptor: (min MSE per image, index of the closest training image)}} for each
    image set of ``sets`` (the training descriptors are computed once)."""
    from ..metrics.descriptors import correlations, gram_matrices
    from ..metrics.nearest import DescriptorCache, iter_chunks, min_mse, pack_symmetric
    device, L = _device(settings), settings.limit_to
    compute = {
        "S": (lambda x: pack_symmetric(correlations(x.to(device), L, settings.mcrpy_shift)).cpu(),
              (L * L + (L - 1) ** 2) ** 2, f"S{L}{'m' if settings.mcrpy_shift else 'e'}{size}"),
        "G": (lambda x: gram_matrices(x.to(device)).cpu(), 610304, f"G{size}"),
        "px": (lambda x: x.flatten(1), size * size, None),
    }
    cache = DescriptorCache(settings.cache_dir)
    res: dict[str, dict] = {k: {} for k in sets}
    for d in settings.descriptors:
        fn, dim, tag = compute[d]
        if tag is None:
            t_src = tr_x.flatten(1)
            progress(len(tr_x))
        else:
            idx = {p: i for i, p in enumerate(tr_files)}
            t_src = cache.get_many(tr_files, tag, lambda ps: fn(tr_x[[idx[p] for p in ps]]), progress=progress)
        for k, x in sets.items():
            g = torch.cat([fn(x[s:s + 4]) for s in range(0, len(x), 4)])
            progress(len(x))
            res[k][d] = min_mse(g, iter_chunks(t_src), dim)
    return res


def _fid_kid(sets: dict, tr_x, settings: EvalSettings) -> dict[str, tuple[float, float, float, float]]:
    """{set: (FID, KID, KID lower, KID upper)} against the training images (features once)."""
    from ..metrics.fid import fid_from_features, inception_features, kid_interval
    out = {k: (math.nan,) * 4 for k in sets}
    if len(tr_x) < 2:
        return out
    ft = inception_features(tr_x[:, None], device=_device(settings))
    for k, x in sets.items():
        if len(x) >= 2:
            fg = inception_features(x[:, None], device=_device(settings))
            out[k] = (fid_from_features(fg, ft), *kid_interval(fg, ft, resamples=settings.kid_resamples))
    return out


def _collect(result: EvalResult, c: str, gen_files, tr_files, generated: Path, train: Path, errors, fid, copies,
             floor: bool = False) -> None:
    """Rows of one image set (generated, or the reference with ``floor``) and its class metrics."""
    ds = result.settings.descriptors
    ph = (result.floor_phases if floor else result.phases)[c]
    rows = result.floor_rows if floor else result.rows
    for i, f in enumerate(gen_files):
        row = {"set": "reference" if floor else "generated", "class": c, "file": str(f.relative_to(generated))}
        for d in ds:
            v, j = errors[d]
            row[f"E_{d}_pct"] = 100 * float(v[i])
            row[f"closest_{d}"] = str(tr_files[int(j[i])].relative_to(train))
        row["copy_px_pct"] = float(copies.distance[i])
        row["copy_closest"] = str(tr_files[int(copies.index[i])].relative_to(train))
        row["copy_transform"] = copies.transform_name(i)
        row["copy_shift"] = f"{int(copies.shift[i, 0])},{int(copies.shift[i, 1])}"
        for k in range(ph.phases):
            row[f"vf_phase{k}"] = round(float(ph.generated_vf[i, k]), 6)
        rows.append(row)
    vals = {d: [100 * float(v) for v in errors[d][0]] for d in ds}
    (result.floor if floor else result.classes)[c] = ClassMetrics(c, len(gen_files), {d: vals[d][0] for d in ds},
                                                                  {d: float(np.median(vals[d])) for d in ds}, *fid)
