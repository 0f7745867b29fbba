"""The old import path, kept as aliases: the U-Net is built in ``network``, the denoiser lives
in ``denoiser``, the saved pipeline in ``pipeline``."""
from .errors import ModelDirError  # noqa: F401
from .network import build_unet, unet_kwargs  # noqa: F401
from .pipeline import MICRODIFF_JSON, load_pipeline, save_half  # noqa: F401


def __getattr__(name):
    if name == "MicrodiffPipeline":
        from .pipeline import pipeline_class
        return pipeline_class()
    raise AttributeError(name)
