"""The settings of a model as frozen dataclasses that validate themselves: ``ModelConfig``,
``DiffusionConfig`` (with its ``Recipe``), ``TrainConfig``, ``SampleConfig``, and ``Config``
holding the four. Every setting is checked for type, range and finiteness when a config is
built, from Python, a JSON file or ``--set`` alike; the message names the setting (``train.lr``),
the bad value and what is allowed."""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field, fields, replace
from typing import Any

from ..core.checks import check_bool, check_choice, check_float, check_int
from ..core.errors import ConfigError
from .sampler import check_sampler

SCHEDULES = ("linear", "cosine")
AUGMENTS = ("dihedral", "flips", "none")            # data.transforms.AUGMENT_ELEMENTS (a test keeps them equal)


@dataclass(frozen=True)
class ModelConfig:
    """The U-Net (diffusers ``UNet2DModel``), as in improved-diffusion.

    ``channel_mult`` multiplies ``base_channels`` per resolution level; ``attention_resolutions``
    are feature-map sizes (16 -> self-attention at 16x16), the middle block always attends.
    ``out_channels`` is 2 x ``image_channels`` when Sigma is learned (eq. 5). ``phases`` K >= 2
    makes the K channels the one-hot phases of label maps (``data.encoding``); training sets it
    from the data set, as it sets ``image_channels`` to 3 for colour data. GroupNorm needs at
    least 4 channels per group: with one channel per group it becomes an instance norm, which
    removes each channel's spatial mean before the output layer, and samples drift in brightness.
    """

    image_size: int = 64
    image_channels: int = 1          # 1 gray, 3 RGB, or K for a model of K phases (= phases)
    phases: int = 0                  # K >= 2: the channels are the one-hot phases of label maps (data.encoding)
    base_channels: int = 32
    channel_mult: tuple[int, ...] = (1, 2, 2)
    num_res_blocks: int = 1
    attention_resolutions: tuple[int, ...] = (16,)
    num_heads: int = 4
    norm_groups: int = 8             # GroupNorm groups; keep >= 4 channels per group
    dropout: float = 0.0
    learn_sigma: bool = True
    eps_skip_sigma: float = 0.0      # > 0: add the exact epsilon of N(0, sigma^2) data (denoiser.gaussian_eps)
    layout: bool = False             # also condition on where each pixel lies in its source (denoise.layout)
    source_shape: tuple[int, ...] = ()   # a layout model's whole source (height, width) at the training scale (set by training)

    @property
    def block_channels(self) -> tuple[int, ...]:
        return tuple(self.base_channels * m for m in self.channel_mult)

    def __post_init__(self):
        for name in ("channel_mult", "attention_resolutions"):      # lists from Python callers
            if isinstance(getattr(self, name), list):
                object.__setattr__(self, name, tuple(getattr(self, name)))
        n = "model."
        check_int(n + "image_size", self.image_size, 8, 65536)
        check_int(n + "phases", self.phases, 0, 16)
        if self.phases == 1:
            raise ConfigError("model.phases = 1: a label map has at least 2 phases (0: the model reads gray or RGB)")
        if self.phases:
            if self.image_channels != self.phases:
                raise ConfigError(f"model.image_channels = {self.image_channels}: a model of {self.phases} phases "
                                  f"has one channel per phase; set it to {self.phases}")
        else:
            check_choice(n + "image_channels", self.image_channels, (1, 3))
        check_int(n + "base_channels", self.base_channels, 1, 4096)
        if not self.channel_mult or not isinstance(self.channel_mult, tuple):
            raise ConfigError(f"model.channel_mult = {self.channel_mult!r}: expected a non-empty list of integers >= 1")
        for m in self.channel_mult:
            check_int(n + "channel_mult", m, 1, 64)
        for r in self.attention_resolutions:
            check_int(n + "attention_resolutions", r, 1, 65536)
        check_int(n + "num_res_blocks", self.num_res_blocks, 1, 16)
        check_int(n + "num_heads", self.num_heads, 1, 1024)
        check_int(n + "norm_groups", self.norm_groups, 1, 1024)
        check_float(n + "dropout", self.dropout, 0.0, 1.0, hi_open=True)
        check_bool(n + "learn_sigma", self.learn_sigma)
        check_float(n + "eps_skip_sigma", self.eps_skip_sigma, 0.0)
        check_bool(n + "layout", self.layout)
        if isinstance(self.source_shape, list):
            object.__setattr__(self, "source_shape", tuple(self.source_shape))
        if self.source_shape != ():
            if len(self.source_shape) != 2:
                raise ConfigError(f"model.source_shape = {self.source_shape!r}: expected (height, width), or empty")
            for v in self.source_shape:
                check_int(n + "source_shape", v, 1, 10 ** 6)
        levels = len(self.channel_mult)
        if self.image_size % 2 ** (levels - 1):
            raise ConfigError(f"model.image_size = {self.image_size}: must be divisible by 2^{levels - 1} "
                              f"for {levels} levels of model.channel_mult")
        if any(c % self.norm_groups or c // self.norm_groups < 4 for c in self.block_channels):
            raise ConfigError(f"model.norm_groups = {self.norm_groups}: every block's channel count "
                              f"{self.block_channels} must be a multiple of it with at least 4 channels per group")
        sizes = [self.image_size // 2 ** i for i in range(levels)]
        unused = [r for r in self.attention_resolutions if r not in sizes]
        if unused:
            raise ConfigError(f"model.attention_resolutions = {self.attention_resolutions}: {unused[0]} is not a "
                              f"feature-map size of this network ({', '.join(map(str, sizes))} for image_size "
                              f"{self.image_size}); choose among them")
        if self.block_channels[-1] % self.num_heads:
            raise ConfigError(f"model.num_heads = {self.num_heads}: must divide the last block's "
                              f"{self.block_channels[-1]} channels")


@dataclass(frozen=True)
class Recipe:
    """How the network is parameterised and what its loss weights (the schedule, T and the
    learned Sigma are separate settings). Every weighting is a weight w(SNR_t) on the x_0 error
    |x0_hat - x0|^2, with SNR = alpha-bar / (1 - alpha-bar):

    - ``eps``: the epsilon MSE of L_simple (w = SNR), the paper;
    - ``v``: the v MSE (w = SNR + 1);
    - ``min_snr``: min-SNR-gamma (w = min(SNR, gamma), Hang et al. 2023);
    - ``edm``: EDM's lambda(sigma) (w = SNR + 1 / sigma_data^2, Karras et al. 2022).

    ``prediction`` is what the network outputs: ``eps``; ``v`` = alpha eps - sigma x_0; ``edm``:
    EDM's preconditioning (c_in, c_skip, c_out with ``sigma_data``; the network keeps its time
    input). ``timesteps`` is how training draws t: ``uniform``, or ``lognormal``: EDM's
    ln(sigma) ~ N(mean, std^2) with sigma = sqrt(1 / SNR), mapped to the nearest timestep.
    """

    prediction: str = "eps"
    weighting: str = "eps"
    timesteps: str = "uniform"
    min_snr_gamma: float = 5.0
    lognormal_mean: float = -1.2
    lognormal_std: float = 1.2
    sigma_data: float = 0.5

    def __post_init__(self):
        check_choice("recipe.prediction", self.prediction, ("eps", "v", "edm"))
        check_choice("recipe.weighting", self.weighting, ("eps", "v", "min_snr", "edm"))
        check_choice("recipe.timesteps", self.timesteps, ("uniform", "lognormal"))
        check_float("recipe.min_snr_gamma", self.min_snr_gamma, 0.0, lo_open=True)
        check_float("recipe.lognormal_mean", self.lognormal_mean)
        check_float("recipe.lognormal_std", self.lognormal_std, 0.0, lo_open=True)
        check_float("recipe.sigma_data", self.sigma_data, 0.0, lo_open=True)


RECIPES: dict[str, Recipe] = {
    "paper": Recipe(),                                            # improved DDPM: epsilon, L_simple, uniform t
    "min_snr": Recipe(weighting="min_snr"),                       # epsilon with min-SNR-5 weighting
    "v": Recipe(prediction="v", weighting="v"),                   # v-prediction, v MSE
    "edm": Recipe(prediction="edm", weighting="edm", timesteps="lognormal"),   # EDM preconditioning
}


@dataclass(frozen=True)
class DiffusionConfig:
    """Forward process and loss (Sections 2.2-2.3)."""

    timesteps: int = 1000            # T
    schedule: str = "linear"         # improved-diffusion's linear schedule, scaled by 1000/T
    lambda_vlb: float = 0.001        # hybrid loss weight, improved-diffusion convention
    recipe: str = "paper"            # a name in RECIPES: parameterisation, loss weighting, timestep sampling
    noise_shift: float = 0.0         # added to a lognormal recipe's mean of ln(sigma) in training (> 0: more
                                     # training at high noise, where binary phases and layout are decided)

    @property
    def recipe_spec(self) -> Recipe:
        """The recipe by name, its lognormal mean moved by ``noise_shift``."""
        r = RECIPES[self.recipe]
        return replace(r, lognormal_mean=r.lognormal_mean + self.noise_shift) if self.noise_shift else r

    def __post_init__(self):
        check_int("diffusion.timesteps", self.timesteps, 2, 100_000)
        check_choice("diffusion.schedule", self.schedule, SCHEDULES)
        check_float("diffusion.lambda_vlb", self.lambda_vlb, 0.0)
        check_choice("diffusion.recipe", self.recipe, RECIPES)
        check_float("diffusion.noise_shift", self.noise_shift, -10.0, 10.0)
        if self.noise_shift and RECIPES[self.recipe].timesteps != "lognormal":
            raise ConfigError(f"diffusion.noise_shift = {self.noise_shift} moves a lognormal timestep draw, and "
                              f"recipe {self.recipe!r} draws t uniformly: set diffusion.recipe = edm or noise_shift = 0")


@dataclass(frozen=True)
class TrainConfig:
    steps: int = 3000
    batch_size: int = 16
    lr: float = 1e-3
    warmup_steps: int = 200
    lr_decay: str = "none"           # after the warm-up: "none" (constant lr) or "cosine" (to 0 at the last step)
    weight_decay: float = 0.0
    ema_decay: float = 0.999
    grad_clip: float = 1.0
    label_dropout: float = 0.1       # probability of the null class (classifier-free guidance)
    augment: str = "dihedral"        # "dihedral" (8 rotations/mirrors), "flips" (4: no quarter turns) or "none"
    seed: int = 0
    checkpoint_every: int = 500
    sample_every: int = 500          # 0: no preview grids
    log_every: int = 10
    grad_accum: int = 1              # micro-batches per step: per-device batch = batch_size / (processes x grad_accum)
    mixed_precision: str = "auto"    # "auto" = bf16 on CUDA, fp32 elsewhere; "no"; "bf16"
    compile: str = "auto"            # torch.compile the U-Net: "auto" = on CUDA only; "yes"; "no"
    channels_last: str = "auto"      # channels_last memory format: "auto" = on CUDA only; "yes"; "no"
    grad_checkpointing: bool = False # recompute activations in the backward pass (saves memory)
    audit_order: bool = False        # write the sample indices each process trains on (RUN/order/)
    keep_checkpoints: int = 2        # the newest checkpoints kept in RUN/checkpoints/

    def __post_init__(self):
        n = "train."
        check_int(n + "steps", self.steps, 1, 10 ** 9)
        check_int(n + "batch_size", self.batch_size, 1, 10 ** 6)
        check_float(n + "lr", self.lr, 0.0, 1.0, lo_open=True)
        check_int(n + "warmup_steps", self.warmup_steps, 0, 10 ** 9)
        check_choice(n + "lr_decay", self.lr_decay, ("none", "cosine"))
        check_float(n + "weight_decay", self.weight_decay, 0.0)
        check_float(n + "ema_decay", self.ema_decay, 0.0, 1.0, hi_open=True)
        check_float(n + "grad_clip", self.grad_clip, 0.0)
        check_float(n + "label_dropout", self.label_dropout, 0.0, 1.0)
        check_choice(n + "augment", self.augment, AUGMENTS)
        check_int(n + "seed", self.seed, 0, 2 ** 63 - 1)
        check_int(n + "checkpoint_every", self.checkpoint_every, 1, 10 ** 9)
        check_int(n + "sample_every", self.sample_every, 0, 10 ** 9)
        check_int(n + "log_every", self.log_every, 1, 10 ** 9)
        check_int(n + "grad_accum", self.grad_accum, 1, 10 ** 6)
        check_choice(n + "mixed_precision", self.mixed_precision, ("auto", "no", "bf16"))
        check_choice(n + "compile", self.compile, ("auto", "yes", "no"))
        check_choice(n + "channels_last", self.channels_last, ("auto", "yes", "no"))
        check_bool(n + "grad_checkpointing", self.grad_checkpointing)
        check_bool(n + "audit_order", self.audit_order)
        check_int(n + "keep_checkpoints", self.keep_checkpoints, 1, 10 ** 6)
        if self.batch_size % self.grad_accum:
            raise ConfigError(f"train.batch_size = {self.batch_size}: must be a multiple of "
                              f"train.grad_accum = {self.grad_accum}")


@dataclass(frozen=True)
class SampleConfig:
    sampler: str = "dpmpp"        # a name, or dpmpp_sde with options (config.sampler.SamplerSpec)
    steps: int = 25
    guidance: float = 1.0
    batch_size: int = 32
    clip_denoised: bool = True

    def __post_init__(self):
        object.__setattr__(self, "sampler", check_sampler("sample.sampler", self.sampler, ConfigError))
        check_int("sample.steps", self.steps, 1, 100_000)
        check_float("sample.guidance", self.guidance, 0.0, 100.0)
        check_int("sample.batch_size", self.batch_size, 1, 10 ** 6)
        check_bool("sample.clip_denoised", self.clip_denoised)


@dataclass(frozen=True)
class Config:
    model: ModelConfig = field(default_factory=ModelConfig)
    diffusion: DiffusionConfig = field(default_factory=DiffusionConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    sample: SampleConfig = field(default_factory=SampleConfig)

    def __post_init__(self):
        if self.sample.steps > self.diffusion.timesteps:
            raise ConfigError(f"sample.steps = {self.sample.steps}: expected at most diffusion.timesteps = "
                              f"{self.diffusion.timesteps}")
        prediction = self.diffusion.recipe_spec.prediction
        if self.model.eps_skip_sigma > 0 and prediction != "eps":
            raise ConfigError(f"model.eps_skip_sigma = {self.model.eps_skip_sigma}: the epsilon skip needs an "
                              f"epsilon-predicting recipe, and diffusion.recipe = {self.diffusion.recipe!r} predicts "
                              f"{prediction!r}; set model.eps_skip_sigma=0")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Config":
        """A config from nested dicts (missing settings take the defaults), validated."""
        if not isinstance(d, dict):
            raise ConfigError(f"expected sections {', '.join(f.name for f in fields(cls))}, got {type(d).__name__}")
        unknown = set(d) - {f.name for f in fields(cls)}
        if unknown:
            raise ConfigError(f"unknown section(s) {', '.join(sorted(map(repr, unknown)))}; "
                              f"choose from {', '.join(f.name for f in fields(cls))}")
        parts = {}
        for f in fields(cls):
            sub_cls = f.default_factory  # type: ignore[misc]
            sub = d.get(f.name, {})
            if not isinstance(sub, dict):
                raise ConfigError(f"section {f.name} = {sub!r}: expected a mapping of settings")
            unknown = set(sub) - {g.name for g in fields(sub_cls)}
            if unknown:
                raise ConfigError(f"unknown {f.name} setting(s): {', '.join(sorted(map(repr, unknown)))}")
            parts[f.name] = sub_cls(**{k: _coerce(sub_cls, f.name, k, v) for k, v in sub.items()})
        return cls(**parts)


def _coerce(cls, section: str, name: str, value: Any) -> Any:
    """Coerce a JSON/CLI value to the type of ``cls.name`` (tuples from lists or 'a,b'); the
    dataclass then checks the range."""
    default = getattr(cls(), name)
    where = f"{section}.{name}"
    if isinstance(default, tuple):
        if isinstance(value, str):
            value = [v for v in value.replace("(", "").replace(")", "").split(",") if v.strip()]
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where} = {value!r}: expected a list of integers")
        return tuple(_number(where, v, int) for v in value)
    if isinstance(default, bool):
        if isinstance(value, str):
            if value.lower() in ("1", "true", "yes", "on"):
                return True
            if value.lower() in ("0", "false", "no", "off"):
                return False
            raise ConfigError(f"{where} = {value!r}: expected true or false")
        return value
    if isinstance(default, (int, float)) and (isinstance(value, str) or isinstance(default, int)):
        return _number(where, value, type(default))
    return value


def _number(where: str, value: Any, kind: type) -> Any:
    """``value`` (a number or a numeric string) as ``kind``; a clear error otherwise."""
    what = "an integer" if kind is int else "a number"
    if isinstance(value, bool):
        raise ConfigError(f"{where} = {value!r}: expected {what}")
    if isinstance(value, str):
        try:
            value = float(value.strip())
        except ValueError:
            raise ConfigError(f"{where} = {value!r}: expected {what}") from None
    if not isinstance(value, (int, float)):
        raise ConfigError(f"{where} = {value!r}: expected {what}")
    if kind is int:
        if value != value or value in (float("inf"), float("-inf")) or value != int(value):
            raise ConfigError(f"{where} = {value!r}: expected an integer")
        return int(value)
    return float(value)
