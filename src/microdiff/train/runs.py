"""The run folder of a training run (cleared, resumed) and its devices' fast-path switches,
and a pipeline from any of its checkpoints."""
from __future__ import annotations

from pathlib import Path

import torch

from ..config import Config
from ..core.errors import RunDirError, UsageError, setting
from ..core.files import check_output_free, remove
from ..model.checkpoint import list_checkpoints, load_checkpoint
from ..model.network import build_unet


RUN_FILES = ("run.json", "checkpoints", "model", "samples", "log.csv", "tensorboard")


def prepare_run_dir(run_dir: Path, resume: bool, overwrite: bool) -> None:
    """Check the run folder against --resume / --overwrite; clear an old run when overwriting."""
    if resume and overwrite:
        raise UsageError(f"give either {setting('resume')} (continue the run in {run_dir}) or {setting('overwrite')} "
                         "(replace it), not both")
    if resume:
        if not list_checkpoints(run_dir):
            raise RunDirError(f"{run_dir} holds no checkpoint to resume; start without {setting('resume')}")
        return
    has_run = run_dir.exists() and any((run_dir / n).exists() for n in ("run.json", "checkpoints", "model"))
    if has_run:
        check_output_free(run_dir, overwrite, "a training run", f"pass {setting('resume')} to continue it")
        for n in RUN_FILES:
            remove(run_dir / n)
    run_dir.mkdir(parents=True, exist_ok=True)


def switch(value: str, cuda: bool, name: str, log) -> bool:
    """Resolve an auto/yes/no fast-path switch; a CUDA-only switch asked for on a CPU is ignored, saying why."""
    if value not in ("auto", "yes", "no"):
        raise UsageError(f"train.{name} must be auto, yes or no (got {value!r})")
    if value == "yes" and not cuda:
        log(f"note: train.{name}=yes is ignored: it only pays off on a CUDA GPU and none is in use")
        return False
    return value == "yes" or (value == "auto" and cuda)


def mixed_precision(setting: str) -> str:
    if setting == "auto":
        return "bf16" if torch.cuda.is_available() else "no"
    return setting


def checkpoint_pipeline(checkpoint_dir: str | Path):
    """A pipeline with the EMA weights of a training checkpoint (``RUN/checkpoints/step_N``), to
    sample or export (``.save_pretrained``) a model as it was at that step."""
    from ..generate.pipeline import pipeline_class
    ck = load_checkpoint(Path(checkpoint_dir))
    config = Config.from_dict(ck["meta"]["config"])
    names = list(ck["meta"]["class_names"])
    unet = build_unet(config.model, len(names))
    unet.load_state_dict(ck["ema"])
    return pipeline_class().create(config, names, unet.eval(), ck["meta"].get("data_statistics"))


def export_pipeline(ema, config: Config, class_names, path: Path, step: int, data_statistics=None) -> Path:
    """The EMA network ``ema`` as a pipeline folder at ``path`` (with its training data's
    ``data_statistics``), written atomically; a full disk ends with one line naming the space
    needed, the checkpoint of ``step`` intact."""
    import copy

    from ..core.files import atomic_path, free_bytes, is_disk_full, mb
    from ..core.errors import CheckpointError
    from ..generate.pipeline import pipeline_class
    unet = copy.deepcopy(ema).to("cpu").float()
    try:
        with atomic_path(path) as tmp:
            pipeline_class().create(config, class_names, unet, data_statistics).save_pretrained(tmp)
    except Exception as e:
        if not is_disk_full(e) and not isinstance(e, OSError):
            raise
        need = 2 * sum(p.numel() * p.element_size() for p in unet.parameters())
        why = (f"the disk is full: it needs about {mb(need)} free and has {mb(free_bytes(path.parent))}"
               if is_disk_full(e) else f"writing failed ({e})")
        raise CheckpointError(f"cannot export the model to {path}: {why}; the checkpoint of step {step} is intact: "
                              f"free space and run again with {setting('resume')}") from None
    return path


def adopt_data(config, data_dir, images) -> tuple:
    """The config following the data set (``adopt_encoding``, ``adopt_layout``,
    ``adopt_orientation``), the layout condition (or None) and the lines saying what changed."""
    config, note = adopt_encoding(config, images.encoding, data_dir)
    config, layout, where = adopt_layout(config, data_dir, images.files)
    config, turned = adopt_orientation(config, data_dir)
    return config, layout, [line for line in (note, where, turned) if line]


def adopt_encoding(config, enc, data_dir) -> tuple:
    """The config with the model's channels following the data (K one-hot phases for label maps,
    3 for colour) and a line saying so (None when nothing changed)."""
    import dataclasses
    mc = config.model
    if enc.kind == "gray":
        if mc.phases:
            raise UsageError(f"model.phases = {mc.phases}, but {data_dir} holds gray images, not label maps; "
                             "leave model.phases at 0 or make the data set with `prepare --labels`")
        return config, None
    if (mc.phases, mc.image_channels) == (enc.phases, enc.channels):
        return config, None
    model = dataclasses.replace(mc, phases=enc.phases, image_channels=enc.channels)
    what = f"label maps of {enc.phases} phases (one-hot)" if enc.kind == "phases" else "colour (RGB)"
    return dataclasses.replace(config, model=model), f"data: {what}: model.image_channels = {enc.channels}"


def adopt_orientation(config, data_dir) -> tuple:
    """The config with ``train.augment`` = flips where the data set says its images keep their
    orientation (``"orientation": "fixed"`` in dataset.json: sections along a fibre axis, say,
    whose rows are that axis) and augmentation would turn them by quarter turns, which would
    teach the model the crosswise structure too; and a line saying so (None when nothing changed)."""
    import dataclasses
    import json

    from ..data.dataset import DATASET_JSON
    meta_file = Path(data_dir) / DATASET_JSON
    meta = json.loads(meta_file.read_text()) if meta_file.is_file() else {}
    if meta.get("orientation") != "fixed" or config.train.augment != "dihedral":
        return config, None
    note = (f"data: {meta_file} keeps its images' orientation: train.augment = flips (mirrors and half "
            "turns, no quarter turns)")
    return dataclasses.replace(config, train=dataclasses.replace(config.train, augment="flips")), note


def adopt_layout(config, data_dir, files) -> tuple:
    """For a layout model (``model.layout``): the config with ``model.source_shape`` from the data,
    the batch's condition ``layout(labels, indices, dihedral elements)`` (``denoise.layout``: each
    image's region in its source and its prepare-time element composed with the training one) and
    a line saying so; otherwise (config, None, None)."""
    if not config.model.layout:
        return config, None, None
    import dataclasses

    import torch

    from ..data.layout import read_regions
    from ..denoise.layout import compose, layout_condition
    mc = config.model
    reg = read_regions(data_dir, files, mc.image_size)
    regions, elements = torch.from_numpy(reg.regions), torch.from_numpy(reg.elements)

    def layout(labels, idx, dihedral):
        return layout_condition(labels, regions[idx], compose(elements[idx], dihedral))
    h, w = reg.source_shape
    note = (f"data: layout: crops with their regions in the sources; a whole source is {w}x{h} px at the "
            "training scale (model.source_shape)")
    return dataclasses.replace(config, model=dataclasses.replace(mc, source_shape=reg.source_shape)), layout, note
