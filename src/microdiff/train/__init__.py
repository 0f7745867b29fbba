"""Training: one run on a folder of class subfolders, the model landing in ``RUN/model``.

- ``trainer``: ``Trainer`` (resume, step, save, export, run) and ``train_model``: AdamW, EMA, the
  recipe's loss through the ``Denoiser``, exact resume, multi-process (accelerate).
- ``steps``: what each step draws, pure functions of (seed, step): ``DataOrder``,
  ``step_randomness``; the schedules ``lr_at``, ``ema_decay_at``.
- ``logs``: ``TrainLog`` (``log.csv`` and TensorBoard events), ``write_sample_grid``.
- ``runs``: the run folder (``prepare_run_dir``) and ``checkpoint_pipeline`` (a pipeline from
  any checkpoint).
"""
from .logs import TrainLog, write_sample_grid
from .runs import checkpoint_pipeline, prepare_run_dir
from .steps import DataOrder, ema_decay_at, lr_at, step_randomness
from .trainer import Trainer, TrainResult, train_model

__all__ = ["Trainer", "TrainResult", "train_model", "checkpoint_pipeline", "prepare_run_dir", "DataOrder",
           "step_randomness", "lr_at", "ema_decay_at", "TrainLog", "write_sample_grid"]
