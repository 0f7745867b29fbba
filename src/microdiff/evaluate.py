"""`microdiff evaluate`: the paper's Section 3 for a folder of generated images.

Per generated image: E_S, E_G, E_px (eqs. 8-10) to the closest training image of its class, in %
(100 x MSE, as Table 4), with the index of that image. Per class: the example's value (sample
0000) and the median, FID (eq. 11) and KID. Writes ``metrics.csv``, ``table.md`` and
``closest.png`` (Table 3's layout).
"""
from __future__ import annotations

import csv
import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .data.io import IMAGE_SUFFIXES, ImageError, center_square, read_image, resize_area


@dataclass(frozen=True)
class EvalSettings:
    descriptors: tuple[str, ...] = ("S", "G", "px")
    fid: bool = True
    limit_to: int = 32
    mcrpy_shift: bool = True
    cache_dir: str | None = None
    device: str | None = None
    kid_subsets: int = 100


def class_images(root: Path) -> dict[str, list[Path]]:
    """Image files per class subfolder; ``NNNN.npy`` is preferred over ``NNNN.png`` of the same stem."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"{root} does not exist")
    out = {}
    for d in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        by_stem: dict[str, Path] = {}
        for f in sorted(d.iterdir()):
            if f.suffix.lower() in IMAGE_SUFFIXES and not f.name.startswith("."):
                if f.stem not in by_stem or f.suffix == ".npy":
                    by_stem[f.stem] = f
        out[d.name] = [by_stem[k] for k in sorted(by_stem)]
    if not out:
        raise FileNotFoundError(f"{root} has no class subfolders (expected {root}/<class>/images)")
    empty = [c for c, fs in out.items() if not fs]
    if empty:
        raise ValueError(f"class folder(s) {', '.join(str(root / c) for c in empty)} hold no images")
    return out


def load_stack(files: list[Path], size: int | None = None) -> torch.Tensor:
    """(N, H, W) float32 in [0, 1]; grayscale only; resized (centre square + area) to ``size``."""
    arrs = []
    for f in files:
        a = read_image(f, allow_rgb=False)
        if size is not None and a.shape != (size, size):
            a = resize_area(center_square(a), size)
        arrs.append(a)
    shapes = {a.shape for a in arrs}
    if len(shapes) > 1:
        raise ImageError(f"images in {files[0].parent} have different sizes {sorted(shapes)}")
    return torch.from_numpy(np.stack(arrs))


def evaluate(generated: str | Path, train: str | Path, out: str | Path, settings: EvalSettings = EvalSettings(),
             show_progress: bool = True, log=print) -> Path:
    from tqdm.auto import tqdm

    from .metrics.descriptors import correlations, gram_matrices
    from .metrics.fid import fid_from_features, inception_features, kid_from_features
    from .metrics.nearest import DescriptorCache, iter_chunks, min_mse, pack_symmetric
    from .metrics.weights import weights_path

    generated, train, out = Path(generated), Path(train), Path(out)
    gen = class_images(generated)
    tr = class_images(train)
    missing = [c for c in gen if c not in tr]
    if missing:
        raise ValueError(f"generated class(es) {', '.join(missing)} have no folder in {train}; "
                         f"it has: {', '.join(tr)}")
    if "G" in settings.descriptors:
        weights_path("vgg19")
    if settings.fid:
        weights_path("inception")
    device = settings.device or ("cuda" if torch.cuda.is_available() else "cpu")
    # read and validate everything before the long computations
    gen_x = {c: load_stack(fs) for c, fs in gen.items()}
    size = next(iter(gen_x.values())).shape[-1]
    if any(x.shape[-1] != size or x.shape[-2] != size for x in gen_x.values()):
        raise ValueError("generated images of different classes have different sizes")
    tr_x = {c: load_stack(tr[c], size) for c in gen}
    cache = DescriptorCache(settings.cache_dir)
    L = settings.limit_to

    def desc_S(x):
        return pack_symmetric(correlations(x.to(device), L, settings.mcrpy_shift)).cpu()

    def desc_G(x):
        return gram_matrices(x.to(device)).cpu()

    compute = {"S": (desc_S, (L * L + (L - 1) ** 2) ** 2, f"S{L}{'m' if settings.mcrpy_shift else 'e'}{size}"),
               "G": (desc_G, 610304, f"G{size}"),
               "px": (lambda x: x.flatten(1), size * size, None)}
    n_work = sum(len(gen[c]) + len(tr[c]) for c in gen) * len(settings.descriptors)
    bar = tqdm(total=n_work, desc="descriptors", unit="img", disable=not show_progress)
    rows, fids = [], {}
    for c in gen:
        res = {}
        for d in settings.descriptors:
            fn, dim, tag = compute[d]
            g = torch.cat([fn(gen_x[c][s:s + 4]) for s in range(0, len(gen[c]), 4)])
            bar.update(len(gen[c]))
            if tag is None:
                t_src = tr_x[c].flatten(1)
                bar.update(len(tr[c]))
            else:
                idx = {p: i for i, p in enumerate(tr[c])}
                t_src = cache.get_many(tr[c], tag, lambda ps: fn(tr_x[c][[idx[p] for p in ps]]),
                                       progress=bar.update)
            res[d] = min_mse(g, iter_chunks(t_src), dim)
        if settings.fid:
            fg = inception_features(gen_x[c][:, None], device=device)
            ft = inception_features(tr_x[c][:, None], device=device)
            kid = kid_from_features(fg, ft, subsets=settings.kid_subsets) if min(len(fg), len(ft)) >= 2 else (math.nan, math.nan)
            fids[c] = (fid_from_features(fg, ft) if min(len(fg), len(ft)) >= 2 else math.nan, *kid)
        for i, f in enumerate(gen[c]):
            row = {"class": c, "file": str(f.relative_to(generated))}
            for d in settings.descriptors:
                v, j = res[d]
                row[f"E_{d}_pct"] = 100 * float(v[i])
                row[f"closest_{d}"] = str(tr[c][int(j[i])].relative_to(train))
            rows.append(row)
    bar.close()
    out.mkdir(parents=True, exist_ok=True)
    tmp = out / ".metrics.csv.partial"
    with open(tmp, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    os.replace(tmp, out / "metrics.csv")
    write_table(out / "table.md", rows, fids, settings, size)
    write_closest(out / "closest.png", rows, generated, train, settings, size)
    return out


def _fmt(v: float) -> str:
    if not math.isfinite(v):
        return "n/a"
    if v == 0:
        return "0"
    return f"{v:.1e}" if abs(v) < 0.01 else f"{v:.2g}" if abs(v) < 10 else f"{v:.0f}"


def write_table(path: Path, rows, fids, settings: EvalSettings, size: int) -> None:
    classes = list(dict.fromkeys(r["class"] for r in rows))
    ds = settings.descriptors
    head = "| class | n | " + " | ".join(f"E_{d} % example | E_{d} % (median)" for d in ds)
    head += " | FID | KID x 1e3 |" if settings.fid else " |"
    lines = ["# Descriptor errors to the closest training image (Table 4 layout)", "",
             f"Images {size}x{size}; E in % (100 x mean squared error); example = sample `0000` of each class; "
             f"correlations limit_to={settings.limit_to}, "
             f"{'MCRpy-compatible (shifted negative offsets)' if settings.mcrpy_shift else 'exactly aligned'}.", "",
             head, "|" + "---|" * (head.count("|") - 1)]
    for c in classes:
        rs = [r for r in rows if r["class"] == c]
        cells = [c, str(len(rs))]
        for d in ds:
            vals = [r[f"E_{d}_pct"] for r in rs]
            cells += [_fmt(vals[0]), f"({_fmt(float(np.median(vals)))})"]
        if settings.fid:
            f, k, ks = fids[c]
            cells += [_fmt(f), f"{1e3 * k:.2f} ± {1e3 * ks:.2f}" if math.isfinite(k) else "n/a"]
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", "FID and KID per class against that class's training images (Inception-v3 pool features, "
              "TF-FID preprocessing); with few samples FID is biased upwards.", ""]
    path.write_text("\n".join(lines))


def write_closest(path: Path, rows, generated: Path, train: Path, settings: EvalSettings, size: int) -> None:
    """Table 3's layout: one column per class; rows: generated example, closest in S, closest in G."""
    from .data.io import save_png
    from .figures import image_grid, labelled_grid
    classes = list(dict.fromkeys(r["class"] for r in rows))
    which = [d for d in ("S", "G", "px") if d in settings.descriptors][:2]
    tiles = []
    for kind in ["gen"] + which:
        for c in classes:
            r = next(r for r in rows if r["class"] == c)
            f = generated / r["file"] if kind == "gen" else train / r[f"closest_{kind}"]
            a = read_image(f)
            if a.shape != (size, size):
                a = resize_area(center_square(a), size)
            tiles.append(a)
    grid = image_grid(torch.from_numpy(np.stack(tiles))[:, None], len(classes))
    save_png(path, labelled_grid(grid, size, 2, classes, ["generated"] + [f"closest in {d}" for d in which]))
