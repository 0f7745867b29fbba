"""What a training run writes beside its checkpoints: ``log.csv``, TensorBoard events and
sample grids."""
from __future__ import annotations

import csv
import io
from pathlib import Path

import torch

from ..config import Config
from ..core.files import write_text_atomic

LOG_FIELDS = ["step", "loss", "mse", "vb", "lr", "images_per_s", "elapsed_s"]


class TrainLog:
    """``log.csv`` (one row per ``train.log_every`` steps), opened for appending. Rows past
    ``resume_step`` (written after the checkpoint a run resumes from) are dropped first, so no
    step appears twice. TensorBoard's writer is opened at the first event, so its import (about a
    second) does not delay the first step."""

    def __init__(self, path: Path, resume_step: int = 0, tensorboard: bool = True):
        self.path = path
        if path.exists():
            self._truncate(resume_step)
        new = not path.exists()
        self.file = open(path, "a", newline="")
        self.writer = csv.writer(self.file)
        if new:
            self.write_row(LOG_FIELDS)
        self.tensorboard, self.resume_step, self._tb = tensorboard, resume_step, None

    def _truncate(self, step: int) -> None:
        with open(self.path, newline="") as fh:
            rows = list(csv.reader(fh))
        keep = [r for r in rows[1:] if r and r[0].isdigit() and int(r[0]) <= step]
        if len(keep) != len(rows) - 1 or rows[:1] != [LOG_FIELDS]:
            buf = io.StringIO()
            csv.writer(buf).writerows([LOG_FIELDS] + keep)
            write_text_atomic(self.path, buf.getvalue())

    @property
    def tb(self):
        """The TensorBoard writer (None without tensorboard), opened when first used."""
        if self.tensorboard and self._tb is None:
            self._tb = open_tensorboard(self.path.parent / TENSORBOARD_DIR, self.resume_step)
            self.tensorboard = self._tb is not None
        return self._tb

    def write_row(self, values: list) -> None:
        try:
            self.writer.writerow(values)
            self.file.flush()
        except OSError as e:                 # name the file (a full disk, say)
            raise OSError(e.errno, e.strerror, str(self.path)) from None

    def write(self, row: dict) -> None:
        self.write_row([row[k] for k in LOG_FIELDS])
        if self.tb is not None:             # the CSV's numbers, as written
            for k in LOG_FIELDS[1:]:
                self.tb.add_scalar(f"train/{k}", float(row[k]), int(row["step"]))
            self.tb.flush()

    def add_image(self, tag: str, path: Path, step: int) -> None:
        if self.tb is not None:
            from ..data.io import read_image
            self.tb.add_image(tag, read_image(path), step, dataformats="HW")
            self.tb.flush()

    def close(self) -> None:
        self.file.close()
        if self._tb is not None:
            self._tb.close()


TENSORBOARD_DIR = "tensorboard"


def open_tensorboard(log_dir: Path, resume_step: int):
    """A ``SummaryWriter`` for ``tensorboard --logdir RUN`` (events past ``resume_step`` purged),
    or None where tensorboard (the ``tensorboard`` extra) is not installed."""
    import importlib.util
    if importlib.util.find_spec("tensorboard") is None:
        return None
    from torch.utils.tensorboard import SummaryWriter
    return SummaryWriter(str(log_dir), purge_step=resume_step + 1 if resume_step else None)


@torch.no_grad()
def write_sample_grid(ema_unet, config: Config, class_names, path: Path, per_class: int = 8,
                      steps: int = 25, sampler: str = "dpmpp") -> None:
    """A grid, one row per class, from the EMA weights with fixed seeds (a layout model's row:
    crops from the top of the source to its bottom)."""
    from ..data.io import save_png
    from ..data.figures import image_grid, labelled_grid
    from ..config import SampleConfig
    from ..denoise import Canvas, build_denoiser, inference_denoiser
    from ..generate.sampling import iter_batches
    labels = [c for c in range(len(class_names)) for _ in range(per_class)]
    was_training = ema_unet.training
    den = inference_denoiser(ema_unet, config, len(class_names))
    m = config.model
    if m.layout:
        from ..denoise.layout import canvas_region
        labels = [(c, *canvas_region((m.image_size, m.image_size), m.source_shape, ((j + 0.5) / per_class, 0.5)), 0)
                  for c in range(len(class_names)) for j in range(per_class)]
    canvas = Canvas((m.image_size, m.image_size))
    sampling = SampleConfig(sampler, min(steps, config.diffusion.timesteps), config.sample.guidance, len(labels))

    def build(d, seeds):
        return build_denoiser(d, seeds, canvas, m.image_size, config.sample.guidance)
    imgs = torch.cat(list(iter_batches(den, labels, list(range(len(labels))), (m.image_channels, *canvas.shape),
                                       sampling, build, next(ema_unet.parameters()).device)))
    ema_unet.train(was_training)
    from ..data.encoding import Encoding, viewable
    imgs = viewable(imgs, Encoding.of_model(m))
    path.parent.mkdir(parents=True, exist_ok=True)
    save_png(path, labelled_grid(image_grid(imgs, per_class), m.image_size, 2, row_labels=class_names))
