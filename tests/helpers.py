"""Tiny settings and data shared by the tests (seconds on a 2-core CPU)."""
from pathlib import Path

from microdiff.config import apply_overrides, get_preset

TINY = [
    "model.image_size=16", "model.base_channels=32", "model.channel_mult=1,2", "model.num_res_blocks=1",
    "model.attention_resolutions=8", "diffusion.timesteps=50", "train.batch_size=4", "train.steps=4",
    "train.warmup_steps=2", "train.checkpoint_every=2", "train.sample_every=0", "train.log_every=1",
    "sample.batch_size=8",
]


def tiny_config(*extra, preset: str = "cpu"):
    """The tiny network with a preset's recipe: ``cpu`` (EDM) or ``cpu-paper`` (the paper's)."""
    return apply_overrides(get_preset(preset), TINY + list(extra))


def tiny_data(root: Path, per_class: int = 4) -> Path:
    from microdiff.data.synth import synth_fiber
    return synth_fiber(root, size=32, per_class=per_class, seed=1, show_progress=False)
