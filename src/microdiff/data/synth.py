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
