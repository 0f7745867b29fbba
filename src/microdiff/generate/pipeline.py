"""The saved model: a diffusers pipeline folder plus microdiff's config and class names.

    model/model_index.json          (diffusers) pipeline class and components
    model/unet/                     UNet2DModel config + safetensors weights
    model/scheduler/                DDPMScheduler (learned-range variance, the same betas)
    model/microdiff.json            microdiff's full config, the class names and the training
                                    data's value counts per class (``data.channels.value_counts``)

``MicrodiffPipeline.from_pretrained(dir)`` loads it in one line; a plain diffusers user gets the
network with ``UNet2DModel.from_pretrained(dir, subfolder="unet")`` (not of a layout model, whose
class embedding is microdiff's own: load that with the pipeline). diffusers is imported only
when the pipeline class is first used.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

import torch

from ..config import Config
from ..core.errors import ModelDirError, UsageError, setting
from ..model.network import build_unet

MICRODIFF_JSON = "microdiff.json"


def scheduler_for(config: Config):
    """diffusers' DDPMScheduler with the same betas and the learned-range variance (for diffusers
    users; microdiff's own samplers use ``microdiff.diffusion``)."""
    from diffusers import DDPMScheduler

    from ..diffusion import make_betas
    betas = make_betas(config.diffusion.schedule, config.diffusion.timesteps)
    # diffusers knows epsilon and v; EDM's preconditioned output has no diffusers equivalent, so an
    # `edm` model is sampled with microdiff (microdiff.json records the recipe)
    prediction = {"v": "v_prediction"}.get(config.diffusion.recipe_spec.prediction, "epsilon")
    return DDPMScheduler(num_train_timesteps=config.diffusion.timesteps, trained_betas=betas.tolist(),
                         variance_type="learned_range" if config.model.learn_sigma else "fixed_small",
                         clip_sample=True, prediction_type=prediction)


def read_model_meta(path: Path) -> tuple[Config, list[str]]:
    """The config and class names of a model folder, with a clear error when they are unusable."""
    meta_path = path / MICRODIFF_JSON
    if not meta_path.is_file():
        raise ModelDirError(f"{path} is not a microdiff model directory (no {MICRODIFF_JSON}); "
                            f"point {setting('model')} at RUN/model written by `microdiff train`")
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        names = meta["class_names"]
        if not isinstance(names, list) or not names or not all(isinstance(n, str) and n for n in names) \
                or len(set(names)) != len(names):
            raise ValueError(f"class_names = {str(names)[:80]}: expected a list of distinct names")
        return Config.from_dict(meta["config"]), list(names)
    except (KeyError, TypeError, ValueError, OSError) as e:    # JSON, Unicode and config errors are ValueErrors
        raise ModelDirError(f"{meta_path} is corrupt ({type(e).__name__}: {' '.join(str(e).split())[:200]}); "
                            "re-export the model") from None


def read_data_statistics(path: Path, names: Sequence[str], config: Config) -> dict | None:
    """The training data's value counts per class that a model folder keeps
    (``data.channels.value_counts``), checked against its classes and channels; None for a model
    trained before they were kept (or on colour images)."""
    meta_path = path / MICRODIFF_JSON
    stats = json.loads(meta_path.read_text(encoding="utf-8")).get("data_statistics")
    if stats is None:
        return None
    phases = config.model.phases
    try:
        kind, counts = stats["kind"], stats["counts"]
        if kind != ("phases" if phases >= 2 else "gray") or sorted(counts) != sorted(names):
            raise ValueError(f"kind {kind!r} for the classes {sorted(counts)[:8]}")
        bins = phases if phases >= 2 else 256
        for name, c in counts.items():
            if len(c) != bins or not all(isinstance(n, int) and n >= 0 for n in c) or not sum(c):
                raise ValueError(f"class {name!r}: expected {bins} non-negative counts")
    except (KeyError, TypeError, ValueError) as e:
        raise ModelDirError(f"{meta_path}: data_statistics is corrupt ({' '.join(str(e).split())[:200]}); "
                            "remove the entry (volumes then take their fractions from the model's own "
                            "samples) or re-export the model") from None
    return {"kind": kind, "counts": {n: list(c) for n, c in counts.items()}}


def weights_fingerprint(net) -> str:
    """SHA-256 of a network's weights (in float32, by parameter name)."""
    import hashlib
    h = hashlib.sha256()
    for k, v in sorted(net.state_dict().items()):
        h.update(k.encode())
        h.update(v.detach().to("cpu", torch.float32).contiguous().numpy().tobytes())
    return h.hexdigest()


class _Outdated(Exception):
    """A layout model saved with a plain class embedding."""


def load_components(path: Path, config: Config, num_classes: int, **kwargs):
    """The U-Net and the scheduler of a model folder, loaded directly (no progress bar), with a
    clear error for missing or truncated files. A layout model's U-Net has microdiff's own class
    embedding (``model.network.RegionEmbedding``): it is built from ``config`` and its weights
    loaded strictly."""
    from diffusers import DDPMScheduler, UNet2DModel
    from diffusers.utils import SAFETENSORS_WEIGHTS_NAME
    try:
        if config.model.layout:
            from safetensors.torch import load_file
            state = load_file(str(path / "unet" / SAFETENSORS_WEIGHTS_NAME))
            if "class_embedding.weight" in state:
                raise _Outdated
            unet = build_unet(config.model, num_classes)
            unet.load_state_dict(state)
        else:
            unet = UNet2DModel.from_pretrained(str(path), subfolder="unet", **kwargs)
        scheduler = DDPMScheduler.from_pretrained(str(path), subfolder="scheduler")
    except _Outdated:
        raise ModelDirError(f"{path} is a layout model made before layout models read their window's frame "
                            "(model.network.RegionEmbedding); train it again with `microdiff train --layout`") from None
    except Exception as e:  # noqa: BLE001  diffusers raises many kinds for missing or truncated files
        raise ModelDirError(f"cannot load the model in {path} ({type(e).__name__}: {' '.join(str(e).split())[:300]}); "
                            "re-export it or retrain") from None
    return unet, scheduler


def model_encoding(config: Config):
    """How the model's channels read (``data.encoding.Encoding``): gray, rgb or K phases."""
    from ..data.encoding import Encoding
    return Encoding.of_model(config.model)


def _attach_meta(pipe, config: Config, class_names: Sequence[str], data_statistics: dict | None):
    """``pipe`` with microdiff's config, class names and training data's value counts."""
    pipe.microdiff_config = config
    pipe.class_names = list(class_names)
    pipe.data_statistics = data_statistics
    return pipe


def _meta_of(pipe) -> dict:
    """What ``microdiff.json`` holds for ``pipe``."""
    meta = {"class_names": pipe.class_names, "config": pipe.microdiff_config.to_dict()}
    if pipe.data_statistics is not None:
        meta["data_statistics"] = pipe.data_statistics
    return meta


def _make_pipeline_class():
    from diffusers import DiffusionPipeline

    class MicrodiffPipeline(DiffusionPipeline):
        """Class-conditional improved DDPM. ``pipe(["FVC40"], num=4, steps=25)`` -> float images in [0, 1]."""

        model_cpu_offload_seq = "unet"

        def __init__(self, unet, scheduler):
            super().__init__()
            self.register_modules(unet=unet, scheduler=scheduler)
            self.microdiff_config: Config | None = None
            self.class_names: list[str] = []
            self.data_statistics: dict | None = None     # the training data's value counts per class

        @classmethod
        def create(cls, config: Config, class_names: Sequence[str], unet=None,
                   data_statistics: dict | None = None) -> "MicrodiffPipeline":
            """A pipeline around ``unet`` (default: a freshly initialised one for ``config``);
            ``data_statistics``: its training data's value counts (``data.channels.value_counts``)."""
            unet = unet if unet is not None else build_unet(config.model, len(class_names))
            return _attach_meta(cls(unet=unet, scheduler=scheduler_for(config)), config, class_names, data_statistics)

        def save_pretrained(self, save_directory, **kwargs):
            super().save_pretrained(save_directory, safe_serialization=True, **kwargs)
            (Path(save_directory) / MICRODIFF_JSON).write_text(json.dumps(_meta_of(self), indent=2))

        @classmethod
        def from_pretrained(cls, pretrained_model_name_or_path, **kwargs):
            path = Path(pretrained_model_name_or_path)
            config, names = read_model_meta(path)
            return _attach_meta(cls(*load_components(path, config, len(names), **kwargs)), config, names,
                                read_data_statistics(path, names, config))

        def class_index(self, name: str) -> int:
            if name not in self.class_names:
                raise UsageError(f"class {name!r} is not in this model; it knows: {', '.join(self.class_names)}")
            return self.class_names.index(name)

        encoding = property(lambda self: model_encoding(self.microdiff_config), doc=model_encoding.__doc__)

        def fingerprint(self) -> str:
            """SHA-256 of the network's weights (in float32, by parameter name)."""
            return weights_fingerprint(self.unet)

        def denoiser(self):
            """The network as a ``Denoiser`` (eval mode; bf16 autocast on a GPU)."""
            from ..denoise.denoiser import inference_denoiser
            return inference_denoiser(self.unet, self.microdiff_config, len(self.class_names))

        @torch.no_grad()
        def __call__(self, class_names: Sequence[str], num: int = 1, steps: int | None = None,
                     sampler: str | None = None, guidance: float | None = None, seed: int = 0,
                     size=None, periodic: bool = False, overlap: float = 0.2, targets=None,
                     target_strength: float | None = None):
            """(N, C, H, W) images in [0, 1]; ``size`` = an int or (height, width) >= the training size,
            ``periodic`` for seamless tiling (see ``denoise.canvas.Canvas``); ``targets`` steer the samples to
            descriptor values ({"vf": 0.55}, {"s2": "ref.png", "candidates": 4}; see ``targets.make_targets``);
            the settings are ``SampleSettings``' (``images.sample_images``)."""
            from .images import sample_images
            from .settings import SampleSettings
            return sample_images(self, SampleSettings(
                classes=tuple(class_names), num=num, steps=steps, sampler=sampler, guidance=guidance, seed=seed,
                size=size, periodic=periodic, overlap=overlap, targets=targets,
                target_strength=target_strength if targets else None))

    MicrodiffPipeline.__module__ = __name__
    return MicrodiffPipeline


_PIPELINE_CLS = None


def __getattr__(name):  # lazy: diffusers is imported only when the pipeline is used
    global _PIPELINE_CLS
    if name == "MicrodiffPipeline":
        if _PIPELINE_CLS is None:
            _PIPELINE_CLS = _make_pipeline_class()
        return _PIPELINE_CLS
    raise AttributeError(name)


def pipeline_class():
    return __getattr__("MicrodiffPipeline")


def load_pipeline(path: str | Path, device: str | torch.device = "cpu"):
    """Load a model directory, with a clear error when it is missing or corrupt."""
    path = Path(path)
    if not path.exists():
        raise ModelDirError(f"model directory {path} does not exist; train one with `microdiff train`")
    pipe = pipeline_class().from_pretrained(path)
    if pipe.unet.dtype != torch.float32:   # weights may be stored in half precision (the demo model)
        pipe.unet.to(torch.float32)
    pipe.model_dir = str(path)
    return pipe.to(device)


def save_half(src: str | Path, dst: str | Path) -> Path:
    """Copy a model folder with the U-Net weights stored in float16 (half the size; loaded back
    as float32). How the shipped demo model is made from ``RUN/model``."""
    pipe = load_pipeline(src)
    pipe.unet.to(torch.float16)
    dst = Path(dst)
    pipe.save_pretrained(dst)
    return dst
