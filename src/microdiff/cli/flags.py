"""The one table between settings and flags.

Library errors name settings (``core.errors.setting``, ``SettingError``); the CLI shows the
flag that sets each one, from ``FLAGS``. Parsers declare their options through ``option``, so a
flag's destination is its setting's name and ``settings_from`` builds a settings object from
the parsed flags by field name. A setting that one verb spells differently is keyed
``"verb:setting"``.
"""
from __future__ import annotations

import argparse
from dataclasses import fields

FLAGS = {
    # generation (generate.settings)
    "num": "--num", "seed": "--seed", "steps": "--steps", "sampler": "--sampler", "guidance": "--guidance",
    "batch_size": "--batch-size", "overlap": "--overlap", "segment": "--segment", "classes": "--class",
    "class_name": "--class", "size": "--size", "periodic": "--periodic", "axes": "--axes", "planes": "--planes",
    "abaqus": "--abaqus", "fractions": "--fractions", "image": "--image", "mask": "--mask", "extend": "--extend",
    "consistency": "--consistency", "position": "--position",
    "targets": "--target-vf/--target-s2/--target-descriptor", "targets.vf": "--target-vf",
    "targets.mix": "--target-mix", "targets.s2": "--target-s2", "targets.correlations": "--target-descriptor",
    "targets.gram": "--target-descriptor", "targets.descriptor": "--descriptor", "targets.phase": "--target-phase",
    "targets.weights": "--target-weight", "target_strength": "--target-strength",
    "target_candidates": "--target-candidates",
    # folders, models, devices
    "out": "--out", "overwrite": "--overwrite", "resume": "--resume", "model": "--model", "device": "--device",
    "max_pixels": "--max-pixels", "num_processes": "--num-processes",
    # training
    "layout": "--layout",
    "data": "--data", "preset": "--preset", "set": "--set", "config": "--config", "max_minutes": "--max-minutes",
    # data (data.synth, data.synth3d, data.prepare)
    "per_class": "--per-class", "volumes": "--volumes", "sources": "--sources", "fraction": "--fraction", "radius": "--radius",
    "crop_fraction": "--crop-fraction", "crop_size": "--crop-size", "channels": "--labels/--color",
    "keep_orientation": "--keep-orientation",
    "strict": "--strict", "prepare:classes": "--classes",
    "regions_per_image": "--regions-per-image", "region_px": "--region-px", "region_um": "--region-um",
    "pixel_size": "--pixel-size", "exclude": "--exclude",
    # characterize and evaluate
    "workers": "--workers",
    "descriptor": "--descriptor", "descriptors": "--descriptors", "limit_to": "--limit-to", "threshold": "--threshold",
    "phase": "--phase", "labels": "--labels", "exact": "--exact", "generated": "--generated", "train": "--train",
    "cache_dir": "--cache", "files": "FILES", "truth": "--truth", "reference": "--reference", "holdout": "--holdout",
    # demo
    "train_minutes": "--train-minutes", "from_scratch": "--from-scratch", "wheel": "--wheel",
}


def flag_of(name: str, verb: str = "") -> str:
    """The flag of a setting (its own name where no flag sets it)."""
    return FLAGS.get(f"{verb}:{name}") or FLAGS.get(name) or FLAGS.get(name.split(":", 1)[-1], name)


def flag_log(verb: str = ""):
    """A ``log`` for library calls: prints each note with its settings shown as flags."""
    from ..core.errors import render_text

    def log(text: str) -> None:
        print(render_text(text, lambda name: flag_of(name, verb)))
    return log


PATHS = ("out", "model", "data", "image", "generated", "train", "truth", "reference", "cache_dir", "exclude", "config")


def _path(text: str) -> str:
    import argparse
    if not text.strip():
        raise argparse.ArgumentTypeError("expected a path, got an empty one")
    return text


def option(p, name: str, **kwargs) -> None:
    """Add the flag of setting ``name`` to parser ``p``; the parsed value lands in ``args.<name>``
    (a path flag refuses an empty path)."""
    if name in PATHS and "type" not in kwargs and kwargs.get("action") is None:
        kwargs["type"] = _path
    p.add_argument(FLAGS[name], dest=name, **kwargs)


def settings_from(cls, args: argparse.Namespace, **given):
    """A settings object of ``cls`` from the parsed flags whose names are its fields (``given`` wins)."""
    values = {f.name: getattr(args, f.name) for f in fields(cls) if hasattr(args, f.name)}
    values = {k: v for k, v in values.items() if v is not None or k in given}
    return cls(**{**values, **given})
