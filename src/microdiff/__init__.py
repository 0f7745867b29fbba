"""microdiff: conditional diffusion-based microstructure reconstruction.

Heavy dependencies (torch, diffusers) load on first use, so importing the package is cheap.
"""
__version__ = "0.1.0"


def __getattr__(name):
    if name == "MicrodiffPipeline":
        from . import model
        return model.MicrodiffPipeline
    raise AttributeError(f"module 'microdiff' has no attribute {name!r}")
