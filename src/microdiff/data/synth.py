"""Built-in synthetic data sets (``microdiff synth``), written in the dataset folder format."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..core.checks import check_float, check_int
from ..core.errors import UsageError, SettingError, setting
from .dataset import DatasetWriter


def synth_fiber(out: str | Path, size: int = 64, per_class: int = 200, seed: int = 0,
                classes: dict[str, float] | None = None, overwrite: bool = False,
                show_progress: bool = True, radius: float | None = None, holdout: float = 0.0) -> Path:
    """Write the built-in fiber data set (classes FVC40/50/60 by default). With ``holdout``, also
    ``<out>-heldout``: round(holdout x per_class) further images per class, each from its own
    seed (never one of the training images'), the real floor for ``evaluate --reference``."""
    from .fiber import FIBER_CLASSES, FiberSettings
    from .prepare.engine import heldout_path
    from ..core.files import check_output_free
    from .dataset import DATASET_JSON
    check_int("size", size, 16, 4096, SettingError)
    check_int("per_class", per_class, 1, 10 ** 7, SettingError)
    check_int("seed", seed, 0, 2 ** 63 - 1, SettingError)
    check_float("holdout", holdout, 0.0, 1.0, hi_open=True, error=SettingError)
    if radius is not None:
        check_float("radius", radius, 1.0, size / 4, error=SettingError)
    classes = classes or FIBER_CLASSES
    for name, fvc in classes.items():
        check_float(f"fiber volume content of {name}", fvc, 0.0, 0.75, True, True, UsageError)
    settings = FiberSettings(size=size, radius=radius)
    info = {"kind": "synthetic fiber composite", "size": size, "seed": seed, "target_fvc": classes,
            "mean_radius_px": settings.mean_radius}
    if holdout > 0:
        held = heldout_path(out)
        for p in (Path(out), held):                 # both free before either is written
            check_output_free(p, overwrite, "a data set", marker=DATASET_JSON)
        n_held = max(1, int(round(holdout * per_class)))
        _write_fibers(held, classes, settings, seed, range(per_class, per_class + n_held), overwrite, show_progress,
                      {**info, "role": "held-out", "training_set": str(out), "holdout": holdout}, radius)
        info = {**info, "holdout": holdout, "heldout_set": str(held)}
    return _write_fibers(Path(out), classes, settings, seed, range(per_class), overwrite, show_progress, info, radius)


def _write_fibers(out: Path, classes: dict[str, float], settings, seed: int, indices: range, overwrite: bool,
                  show_progress: bool, info: dict, radius: float | None) -> Path:
    """Images ``indices`` of every class (image i of class ci from the seed sequence [seed, ci, i])."""
    from tqdm.auto import tqdm

    from .fiber import PackingError, fiber_image
    with DatasetWriter(out, overwrite) as w:
        bar = tqdm(total=len(indices) * len(classes), desc=f"synth fiber {out.name}", unit="img",
                   disable=not show_progress)
        for ci, (name, fvc) in enumerate(classes.items()):
            for n, i in enumerate(indices):
                try:
                    img, measured, k = fiber_image(np.random.SeedSequence([seed, ci, i]), fvc, settings)
                except PackingError as e:
                    raise SettingError("radius", radius, f"{e}: choose a smaller one (or a larger {setting('size')})") from None
                w.add(name, f"{n:05d}", img, source="synthetic", target_fvc=fvc,
                      measured_fvc=f"{measured:.5f}", n_fibers=k, seed=f"{seed}:{ci}:{i}")
                bar.update()
        bar.close()
        return w.commit(info)


def synth_layers(out: str | Path, size: int = 32, per_class: int = 1000, sources: int = 32, seed: int = 0,
                 overwrite: bool = False, show_progress: bool = True, holdout: float = 0.0) -> Path:
    """Write the built-in layered data set (class ``coating``, ``data.layers``): ``per_class`` crops
    of ``size`` pixels at random positions of ``sources`` source micrographs of 3 x 4 crops
    (native resolution, upright), each row of the manifest saying where its crop lies (a layout
    model's condition). With ``holdout``, ``<out>-heldout`` holds crops of further sources."""
    from .prepare.engine import heldout_path
    from ..core.files import check_output_free
    from .dataset import DATASET_JSON
    from .layers import LayerSettings
    check_int("size", size, 16, 1024, SettingError)
    check_int("per_class", per_class, 1, 10 ** 7, SettingError)
    check_int("sources", sources, 1, 10 ** 5, SettingError)
    check_int("seed", seed, 0, 2 ** 63 - 1, SettingError)
    check_float("holdout", holdout, 0.0, 1.0, hi_open=True, error=SettingError)
    layers = LayerSettings(height=3 * size, width=4 * size, feature=1.5 * size / 32)
    info = {"kind": "synthetic layers (a coating on a substrate under a free surface)", "size": size, "seed": seed,
            "layers": {k: getattr(layers, k) for k in ("height", "width", "surface", "coating", "pores", "wander",
                                                       "feature")}}
    if holdout > 0:
        held = heldout_path(out)
        for p in (Path(out), held):
            check_output_free(p, overwrite, "a data set", marker=DATASET_JSON)
        n_src = max(1, int(round(holdout * sources)))
        _write_layers(held, layers, size, max(1, int(round(holdout * per_class))), range(sources, sources + n_src),
                      seed, overwrite, show_progress, {**info, "role": "held-out", "training_set": str(out),
                                                       "holdout": holdout})
        info = {**info, "holdout": holdout, "heldout_set": str(held)}
    return _write_layers(Path(out), layers, size, per_class, range(sources), seed, overwrite, show_progress, info)


def _write_layers(out: Path, layers, size: int, count: int, source_ids: range, seed: int, overwrite: bool,
                  show_progress: bool, info: dict) -> Path:
    """``count`` crops spread evenly over the sources ``source_ids`` (source j from the seed sequence [seed, j])."""
    from tqdm.auto import tqdm

    from .layers import layered_image
    ids = list(source_ids)
    with DatasetWriter(out, overwrite) as w:
        bar = tqdm(total=count, desc=f"synth layers {out.name}", unit="img", disable=not show_progress)
        n = 0
        for k, j in enumerate(ids):
            rng = np.random.default_rng(np.random.SeedSequence([seed, j]))
            src = layered_image(rng, layers)
            for _ in range(count // len(ids) + (k < count % len(ids))):
                top = int(rng.integers(0, layers.height - size + 1))
                left = int(rng.integers(0, layers.width - size + 1))
                w.add("coating", f"{n:05d}", src[top:top + size, left:left + size], source=f"synthetic:{seed}:{j}",
                      crop_top=top, crop_left=left, crop_size=size, source_height=layers.height,
                      source_width=layers.width, transform="identity")
                n += 1
                bar.update()
        bar.close()
        return w.commit(info)
