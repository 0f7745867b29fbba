"""``microdiff sample``: images of given classes, on any canvas, optionally steered to targets.

``sample_to_folder`` resolves ``SampleSettings`` against the model (classes, canvas, targets,
sampling settings) into a ``SampleRun`` and hands it to the run driver with an image producer
and the image writer.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable, Sequence

from torch import Tensor

from ..core.errors import SettingError
from ..denoise.canvas import Canvas
from .driver import GenerationResult, run_to_folder
from .records import Item, SampleRun
from .sampling import generate, sampling_settings
from .settings import GenerationSettings, SampleSettings, settings_of
from .writers import ImageWriter

__all__ = ["sample_to_folder", "sample_images", "sample_run", "ImageProducer", "model_targets"]


def sample_to_folder(pipe, out_dir: str | Path, settings: SampleSettings | None = None, overwrite: bool = False,
                     resume: bool = False, show_progress: bool = True, **fields) -> GenerationResult:
    """Sample ``settings.num`` images of each class of ``settings.classes`` (default: all of the
    model's) into ``out_dir``: ``<class>/NNNN.{npy,png,json}`` and ``sample.json``. ``settings``
    or its fields as keywords (``sample_to_folder(pipe, out, classes=["FVC40"], num=4)``).

    Under torchrun / accelerate (WORLD_SIZE > 1) process r writes the sample numbers r, r + W, ...:
    the same images as one process. ``resume`` continues an interrupted run with the same
    settings: complete samples are kept and the rest give the same files as an uninterrupted run.
    """
    s = settings_of(SampleSettings, settings, fields)
    canvas = sample_canvas(pipe, s)
    goal = model_targets(pipe, s, canvas.shape)
    run = sample_run(pipe, s, canvas, targets=goal.record() if goal else None, position=s.position)
    return run_to_folder(pipe, run, Path(out_dir), ImageProducer(pipe, run, goal), ImageWriter(run.segment, pipe.encoding),
                         overwrite, resume, show_progress)


def sample_images(pipe, s: SampleSettings) -> Tensor:
    """The images of ``s`` in memory: (N, C, H, W) in [0, 1], class by class, sample i of class c
    with the seed ``sample_seed(s.seed, c, i)`` (the pipeline's ``__call__``)."""
    from ..core.seeding import sample_seed
    canvas = sample_canvas(pipe, s)
    check_layout(pipe, canvas, s.position)
    goal = model_targets(pipe, s, canvas.shape)
    names = s.classes or tuple(pipe.class_names)
    labels = [pipe.class_index(n) for n in names for _ in range(s.num)]
    seeds = [sample_seed(s.seed, pipe.class_index(n), i) for n in names for i in range(s.num)]
    sampling = sampling_settings(pipe.microdiff_config, s.steps, s.sampler, s.guidance, s.batch_size)
    return generate(pipe, labels, seeds, sampling, canvas, targets=goal, position=s.position)


def sample_canvas(pipe, s: SampleSettings) -> Canvas:
    """The canvas of ``s``: its size, else the training window -- a layout model's default without
    a position is a whole source at the training scale (``model.source_shape``)."""
    m = pipe.microdiff_config.model
    size = s.size
    if size is None and m.layout and s.position is None:
        size = tuple(m.source_shape)
    return Canvas.of(size, m.image_size, 2, s.periodic, s.overlap)


def check_layout(pipe, canvas: Canvas, position) -> None:
    """A position needs a layout model, and a layout model's canvas is laid out as a source, not a torus."""
    m = pipe.microdiff_config.model
    if position is not None and not m.layout:
        raise SettingError("position", ",".join(f"{v:g}" for v in position), "this model was not trained with "
                           "positions (model.layout); it makes stationary textures: leave out the position, or train "
                           "with --layout on a data set that records where its crops lie")
    if m.layout and canvas.periodic:
        raise SettingError("periodic", "on", "a layout model lays its images out as its source micrographs, "
                           "which do not repeat; leave out periodic")


def model_targets(pipe, s: SampleSettings, size: Sequence[int]):
    """The settings' targets (``targets.Targets``) checked against the model and the sample size; None without."""
    if not s.targets:
        return None
    from ..targets import make_targets
    labels = pipe.encoding.phases if pipe.encoding.kind == "phases" else 0
    goal = make_targets(s.targets, s.strength, tuple(size), pipe.class_names, s.target_candidates,
                        s.segment, labels)
    mixed = goal.mixed()
    if mixed is not None:
        own = {pipe.class_index(c) for c in (s.classes or pipe.class_names)}
        if len(pipe.class_names) == 1:
            raise SettingError("targets.mix", ",".join(mixed.mix), "this model has one class, and a mixture of a class "
                               "with itself cannot move the fraction; steer by pixel guidance instead (no mix)")
        for k in own:
            if len(set(mixed.mix_labels(pipe.class_names)) | {k}) < 2:
                raise SettingError("targets.mix", ",".join(mixed.mix), f"a mixture of the sampled class "
                                   f"{pipe.class_names[k]} with itself cannot move the fraction; name a second "
                                   "class to mix with, or say all")
    return goal


def sample_run(pipe, s: GenerationSettings, canvas: Canvas, classes: Sequence[str] | None = None,
               inpaint: dict | None = None, targets: dict | None = None, position=None) -> SampleRun:
    """The settings of a run of images, checked against the model."""
    check_layout(pipe, canvas, position)
    sampling = sampling_settings(pipe.microdiff_config, s.steps, s.sampler, s.guidance, s.batch_size)
    names = tuple(classes or getattr(s, "classes", ()) or pipe.class_names)
    for c in names:
        pipe.class_index(c)
    return SampleRun(names, s.num, s.seed, sampling.sampler, sampling.steps, sampling.guidance,
                     sampling.batch_size, pipe.fingerprint(), str(getattr(pipe, "model_dir", "")), canvas.shape,
                     canvas.periodic, canvas.overlap, s.segment or "", inpaint, targets, position)


class ImageProducer:
    """The images of a batch of items on the run's canvas (steered by ``targets``; with ``mask``
    known pixels kept, ``finish`` applied to the finished batch)."""
    units = 1

    def __init__(self, pipe, run: SampleRun, targets=None, mask=None, finish: Callable[[Tensor], Tensor] | None = None):
        self.pipe, self.run, self.targets, self.mask, self.finish = pipe, run, targets, mask, finish
        self.batch_size = run.batch_size
        self.sampling = run.sampling(pipe.microdiff_config)
        self.label = f"sampling ({run.sampler}, {run.steps} steps)"

    def prepare(self) -> None:
        pass

    def __call__(self, items: Sequence[Item], tick: Callable[[], None]) -> Tensor:
        images = generate(self.pipe, [it.label for it in items], [it.seed for it in items], self.sampling,
                          self.run.canvas, targets=self.targets, mask=self.mask, position=self.run.position)
        return images if self.finish is None else self.finish(images)

    def annotate(self, item: Item, image: Tensor, seconds: float) -> dict:
        return {"targets": self.targets.measure(image.numpy())} if self.targets else {}
