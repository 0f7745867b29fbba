"""Generation: one run driver under the three verbs, and the saved pipeline.

- ``settings``: ``SampleSettings``, ``InpaintSettings``, ``VolumeSettings`` (frozen, checked).
- ``driver``: ``run_to_folder`` (folder, lock, resume, processes, batches, records, the finite
  check) and ``GenerationResult``.
- ``records``: ``SampleRun``, ``VolumeRun`` (``sample.json``, ``sample3d.json``) and ``Item``.
- ``writers``: ``ImageWriter``, ``VolumeWriter`` (PNG/NPY; NPY/TIFF/VTI and mid-plane slices).
- ``sampling``: ``generate`` (samples of a loaded pipeline over ``denoise.build_denoiser``),
  ``iter_batches``, ``sampling_settings``.
- ``images``, ``inpaint``, ``volumes``: what is specific to ``sample``, ``inpaint`` and
  ``sample3d`` (``sample_to_folder``, ``inpaint_to_folder``, ``sample3d_to_folder``).
- ``pipeline``: ``MicrodiffPipeline`` (a diffusers pipeline folder plus ``microdiff.json``),
  ``load_pipeline``, ``save_half``.
"""
from .driver import GenerationResult, run_to_folder
from .images import sample_to_folder
from .inpaint import inpaint_to_folder
from .pipeline import load_pipeline, pipeline_class, save_half
from .records import Item, SampleRun, VolumeRun
from .sampling import generate, iter_batches, sampling_settings
from .settings import GenerationSettings, InpaintSettings, SampleSettings, VolumeSettings
from .volumes import generate_volumes, sample3d_to_folder, voxel_marginal


def __getattr__(name):
    if name == "MicrodiffPipeline":
        return pipeline_class()
    raise AttributeError(name)


__all__ = ["sample_to_folder", "inpaint_to_folder", "sample3d_to_folder", "SampleSettings", "InpaintSettings",
           "VolumeSettings", "GenerationSettings", "GenerationResult", "run_to_folder", "Item", "SampleRun",
           "VolumeRun", "generate", "iter_batches", "sampling_settings", "generate_volumes", "voxel_marginal",
           "MicrodiffPipeline", "load_pipeline", "save_half"]
