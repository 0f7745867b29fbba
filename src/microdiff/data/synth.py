"""Built-in synthetic data sets (``microdiff synth``), written in the dataset folder format."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..core.checks import check_float, check_int
from ..core.errors import UsageError, SettingError, setting
from .dataset import DatasetWriter


def synth_fiber(out: str | Path, size: int = 64, per_class: int = 200, seed: int = 0,
                classes: dict[str, float] | None = None, overwrite: bool = False,
                show_progress: bool = True, radius: float | None = None) -> Path:
    """Write the built-in fiber data set (classes FVC40/50/60 by default)."""
    from tqdm.auto import tqdm

    from .fiber import FIBER_CLASSES, FiberSettings, PackingError, fiber_image
    check_int("size", size, 16, 4096, SettingError)
    check_int("per_class", per_class, 1, 10 ** 7, SettingError)
    check_int("seed", seed, 0, 2 ** 63 - 1, SettingError)
    if radius is not None:
        check_float("radius", radius, 1.0, size / 4, error=SettingError)
    classes = classes or FIBER_CLASSES
    for name, fvc in classes.items():
        check_float(f"fiber volume content of {name}", fvc, 0.0, 0.75, True, True, UsageError)
    settings = FiberSettings(size=size, radius=radius)
    with DatasetWriter(out, overwrite) as w:
        bar = tqdm(total=per_class * len(classes), desc="synth fiber", unit="img", disable=not show_progress)
        for ci, (name, fvc) in enumerate(classes.items()):
            for i in range(per_class):
                try:
                    img, measured, n = fiber_image(np.random.SeedSequence([seed, ci, i]), fvc, settings)
                except PackingError as e:
                    raise SettingError("radius", radius, f"{e}: choose a smaller one (or a larger {setting('size')})") from None
                w.add(name, f"{i:05d}", img, source="synthetic", target_fvc=fvc,
                      measured_fvc=f"{measured:.5f}", n_fibers=n, seed=f"{seed}:{ci}:{i}")
                bar.update()
        bar.close()
        return w.commit({"kind": "synthetic fiber composite", "size": size, "seed": seed,
                         "target_fvc": classes, "mean_radius_px": settings.mean_radius})
