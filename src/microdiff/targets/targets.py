"""Generation to a target: a phase's volume fraction, a reference's two-point correlation S2(r),
or an MCRpy descriptor, reached by guidance on the predicted x_0 (``guidance.GradientGuidance``,
and for S2 ``guidance.X0Guidance``: see ``Targets.guide``).

Each target is a small frozen object with a differentiable ``loss`` of the predicted field
x in [0, 1], shape (B, H, W), and a ``measure`` of a finished image by the hard descriptor (the
number a user checks). The losses are Gaussian log-likelihoods -log p(target | x_0) with a
tolerance ``tol``: L = weight * d(x)^2 / (2 tol^2), so the guidance strength 1 is the posterior
score of a measurement with that noise. Soft versions of the descriptors: a phase indicator
m = sigmoid((x - t) / TEMPERATURE) between the segmentation's thresholds t (computed on the
detached x_0 by the same method that labels the finished sample), S2 = periodic autocorrelation
of m by FFT, radially averaged as ``descriptors.two_point_radial``; correlations and Gram
matrices are MCRpy's own soft descriptors (already differentiable).

A volume fraction can instead be reached by class mixture (``mix``, ``--target-mix``;
``Targets.mixture``): the model's classes interpolated per sample and step, with no pixel gradient.

With ``candidates`` K > 1 (``--target-candidates``) every sample is drawn K times, guided, from
its own seed and K - 1 seeds derived from it, and the candidate whose finished image is nearest
the targets by the hard descriptors is kept (``Targets.penalties``; best-of-K selection, the
baseline of particle methods such as FK steering, Singhal et al. 2025). It costs K times the
sampling and needs no gradient, so it also serves targets the guidance alone does not reach.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from torch import Tensor

from ..core.checks import check_float, check_int
from ..core.errors import DataError, UsageError
from ..metrics.descriptors import radial_autocorrelation
from ..metrics.segmentation import Segmentation

TEMPERATURE = 0.02          # width of the soft phase boundary, in gray levels of [0, 1]
DESCRIPTORS = ("correlations", "gram")


def soft_phase(x: Tensor, seg: Segmentation, phase: int) -> Tensor:
    """Soft indicator of phase ``phase`` (B, H, W) or (B, Z, Y, X): the segmentation's thresholds
    per image or volume (on the detached field), each crossed by a sigmoid of width TEMPERATURE."""
    xd = x.detach().cpu().double().numpy()
    ts = torch.tensor(np.stack([seg.thresholds_for(np.clip(im, 0, 1)) for im in xd]), dtype=x.dtype, device=x.device)
    ts = ts.view(*ts.shape, *[1] * (x.ndim - 1))
    above = torch.sigmoid((x[:, None] - ts) / TEMPERATURE)                        # (B, K-1, H, W)
    ones, zeros = torch.ones_like(x[:, None]), torch.zeros_like(x[:, None])
    levels = torch.cat([ones, above, zeros], dim=1)                                # P(x above t_{k-1}), k = 0..K
    return levels[:, phase] - levels[:, phase + 1]


def hard_phase(image: np.ndarray, seg: Segmentation, phase: int) -> np.ndarray:
    labels, _ = seg.labels(np.clip(image, 0, 1))
    return (labels == phase).astype(np.float64)


@dataclass(frozen=True)
class Target:
    """Shared fields: the weight of this target's loss and the segmentation it reads phases with."""
    weight: float = 1.0
    segment: str = "otsu"
    phase: int = -1                         # -1: the brightest phase

    def seg(self) -> Segmentation:
        return Segmentation.parse(self.segment)

    def phase_index(self) -> int:
        return self.phase if self.phase >= 0 else self.seg().phases - 1

    def check_common(self, flag: str) -> None:
        check_float(f"{flag} weight", self.weight, 0.0, 1e6, error=UsageError)
        if not -1 <= self.phase < self.seg().phases:
            raise UsageError(f"--target-phase {self.phase}: the segmentation {self.segment} has phases "
                             f"0..{self.seg().phases - 1}")


@dataclass(frozen=True)
class VolumeFraction(Target):
    """The fraction of one phase (default: the bright phase of Otsu's segmentation)."""
    value: float = 0.5
    tol: float = 0.005
    mix: tuple[str, ...] = ()               # classes to interpolate with ("all": every class); see Targets.mixture
    kind: str = field(default="vf", init=False)

    def __post_init__(self):
        check_float("--target-vf", self.value, 0.0, 1.0, error=UsageError)
        object.__setattr__(self, "mix", (self.mix,) if isinstance(self.mix, str) else tuple(self.mix))

    def check(self, size) -> "VolumeFraction":
        self.check_common("--target-vf")
        return self

    def mix_labels(self, class_names: Sequence[str]) -> tuple[int, ...]:
        """The label indices of ``mix`` in a model's classes (checked: one line naming the fix)."""
        names = list(class_names) if "all" in self.mix else list(self.mix)
        unknown = [n for n in names if n not in class_names]
        if unknown or not names:
            raise UsageError(f"--target-mix {','.join(self.mix)}: {unknown[0] if unknown else 'no class'} is not "
                             f"a class of this model; it knows: {', '.join(class_names)} (or say all)")
        return tuple(sorted({list(class_names).index(n) for n in names}))

    def fraction(self, x: Tensor) -> Tensor:
        """The soft fraction of the phase per sample, x in [0, 1] (B, H, W)."""
        return soft_phase(x, self.seg(), self.phase_index()).flatten(1).mean(1)

    def loss(self, x: Tensor) -> Tensor:
        vf = self.fraction(x)
        return self.weight * (vf - self.value) ** 2 / (2 * self.tol ** 2)

    def measure(self, image: np.ndarray) -> dict:
        vf = self.achieved(image)
        return {"achieved": round(vf, 6), "error": round(vf - self.value, 6)}

    def achieved(self, image: np.ndarray) -> float:
        """The hard fraction of the phase in a finished image."""
        return float(hard_phase(image, self.seg(), self.phase_index()).mean())

    def penalty(self, image: np.ndarray) -> float:
        """The loss's form on the hard fraction of a finished image."""
        return self.weight * (self.achieved(image) - self.value) ** 2 / (2 * self.tol ** 2)

    def record(self) -> dict:
        return {"kind": "vf", "value": self.value, "phase": self.phase_index(), "segment": self.segment,
                "weight": self.weight, **({"mix": list(self.mix), "reach": MIX_REACH} if self.mix else {})}


@dataclass(frozen=True)
class TwoPoint(Target):
    """S2(r) of one phase of a reference micrograph (the same size as the samples)."""
    curve: tuple[float, ...] = ()
    source: str = ""
    sha256: str = ""
    tol: float = 0.002
    kind: str = field(default="s2", init=False)

    @classmethod
    def from_image(cls, path, weight: float = 1.0, segment: str = "otsu", phase: int = -1) -> "TwoPoint":
        from ..data.io import read_image
        image = read_image(path, allow_rgb=False)
        seg = Segmentation.parse(segment)
        ph = phase if phase >= 0 else seg.phases - 1
        curve = hard_s2(image, seg, ph)
        digest = hashlib.sha256(Path(path).read_bytes()).hexdigest()
        return cls(weight, str(seg), phase, tuple(float(v) for v in curve), str(path), digest)

    def check(self, size) -> "TwoPoint":
        self.check_common("--target-s2")
        r = min(size) // 2
        if len(self.curve) != r:
            raise UsageError(f"--target-s2 {self.source}: its S2 has {len(self.curve)} radii (an image of side "
                             f"{2 * len(self.curve)}), but the samples are {size[1]}x{size[0]} ({r} radii); "
                             f"pass --size to match the reference, or crop the reference to {size[1]}x{size[0]}")
        return self

    def loss(self, x: Tensor) -> Tensor:
        s2 = radial_autocorrelation(soft_phase(x, self.seg(), self.phase_index()))
        ref = torch.tensor(self.curve, dtype=s2.dtype, device=s2.device)
        err2 = (s2 - ref) ** 2
        err2 = err2[:, 1:].mean(dim=1) + err2[:, 0]        # S2(0) = the phase's fraction weighs as all r > 0
        return self.weight * err2 / (2 * self.tol ** 2)

    def measure(self, image: np.ndarray) -> dict:
        return {"rmse": round(self.rmse(image), 6)}

    def rmse(self, image: np.ndarray) -> float:
        s2 = hard_s2(image, self.seg(), self.phase_index())
        return float(np.sqrt(np.mean((s2 - np.asarray(self.curve)) ** 2)))

    def penalty(self, image: np.ndarray) -> float:
        """The hard S2's root-mean-square error over all radii (the number ``measure`` reports),
        in the loss's Gaussian form."""
        return self.weight * self.rmse(image) ** 2 / (2 * self.tol ** 2)

    def record(self) -> dict:
        return {"kind": "s2", "image": self.source, "sha256": self.sha256, "phase": self.phase_index(),
                "segment": self.segment, "weight": self.weight}


def hard_s2(image: np.ndarray, seg: Segmentation, phase: int) -> np.ndarray:
    """S2(r) of one phase of a gray image (``two_point_radial`` of its indicator)."""
    from ..metrics.descriptors import two_point_radial
    m = torch.from_numpy(hard_phase(image, seg, phase))
    return two_point_radial(m, threshold=0.5)[0].numpy()


@dataclass(frozen=True)
class Descriptor(Target):
    """An MCRpy descriptor (correlations, limit_to 32; or Gram matrices) of a reference, as
    ``characterize`` or MCRpy writes it; the loss is the squared error relative to |target|^2."""
    descriptor: str = "correlations"
    source: str = ""
    array: np.ndarray | None = field(default=None, compare=False, repr=False)
    sha256: str = ""
    tol: float = 0.2                        # of the same order as between real images of one class
    kind: str = field(default="descriptor", init=False)

    @classmethod
    def from_file(cls, path, descriptor: str, weight: float = 1.0) -> "Descriptor":
        from ..metrics.descriptors import num_channels
        if descriptor not in DESCRIPTORS:
            raise UsageError(f"--descriptor {descriptor!r}: choose one of {', '.join(DESCRIPTORS)}")
        try:
            arr = np.load(path, allow_pickle=False)
        except (OSError, ValueError) as e:
            raise DataError(f"{path}: not a readable .npy descriptor ({e}); write one with "
                            f"`microdiff characterize IMAGE --descriptor {descriptor} --out {path}`") from None
        want = num_channels(32) ** 2 if descriptor == "correlations" else 610304
        if arr.size != want or not np.isfinite(arr).all():
            raise DataError(f"{path}: a {descriptor} descriptor of one image has {want} finite values "
                            f"(shape {'(1, 1, 1985, 1985)' if descriptor == 'correlations' else '(1, 1, 1, 610304)'}), "
                            f"this file has shape {arr.shape}; write one with `microdiff characterize IMAGE "
                            f"--descriptor {descriptor}`")
        digest = hashlib.sha256(Path(path).read_bytes()).hexdigest()
        return cls(weight, "otsu", -1, descriptor, str(path), arr.astype(np.float32).reshape(-1), digest)

    def check(self, size) -> "Descriptor":
        self.check_common("--target-descriptor")
        if min(size) < 32:
            raise UsageError(f"--target-descriptor: samples of {size[1]}x{size[0]} are smaller than the 32 pixels "
                             "the descriptor needs")
        return self

    def describe(self, x: Tensor) -> Tensor:
        from ..metrics import descriptors as D
        x = x.clamp(0, 1)
        if self.descriptor == "gram":
            return D.gram_matrices(x)
        f = D.correlation_features(x, 32, mcrpy_shift=True)
        return torch.bmm(f, f.transpose(1, 2)).flatten(1) / f.shape[-1]

    def loss(self, x: Tensor) -> Tensor:
        d = self.describe(x)
        ref = torch.from_numpy(self.array).to(d)
        rel = ((d - ref) ** 2).sum(dim=1) / (ref ** 2).sum()
        return self.weight * rel / (2 * self.tol ** 2)

    def measure(self, image: np.ndarray) -> dict:
        return {"relative_error": round(self.relative_error(image), 6)}

    def relative_error(self, image: np.ndarray) -> float:
        with torch.no_grad():
            d = self.describe(torch.from_numpy(np.asarray(image, np.float32))[None])[0].numpy()
        return float(np.sqrt(((d - self.array) ** 2).sum() / (self.array ** 2).sum()))

    def penalty(self, image: np.ndarray) -> float:
        return self.weight * self.relative_error(image) ** 2 / (2 * self.tol ** 2)

    def record(self) -> dict:
        return {"kind": "descriptor", "descriptor": self.descriptor, "file": self.source, "sha256": self.sha256,
                "weight": self.weight}


@dataclass(frozen=True)
class Targets:
    """Targets that guide sampling together (their losses add), with a common strength; with
    ``candidates`` K > 1 the best of K guided draws of each sample is kept (``penalties``)."""
    items: tuple[Target, ...]
    strength: float = 1.0
    class_names: tuple[str, ...] = ()       # the model's, for a volume fraction reached by class mixture
    candidates: int = 1

    def __post_init__(self):
        check_float("--target-strength", self.strength, 0.0, 1e6, error=UsageError)
        object.__setattr__(self, "candidates", check_int("--target-candidates", self.candidates, 1, MAX_CANDIDATES,
                                                         error=UsageError))
        mixed = [t for t in self.items if getattr(t, "mix", ())]
        if len(mixed) > 1:
            raise UsageError("--target-mix: only one volume-fraction target can be reached by class mixture")
        if mixed and self.class_names:
            mixed[0].mix_labels(self.class_names)

    def __bool__(self) -> bool:
        return bool(self.items)

    def checked(self, size: tuple[int, int]) -> "Targets":
        for t in self.items:
            t.check(size)
        return self

    def loss(self, x0: Tensor, kinds: Sequence[str] | None = None) -> Tensor:
        """Per-sample loss of a predicted x_0 in [-1, 1], (B, C, H, W): the first channel as a
        field; only the targets of ``kinds`` when given."""
        x = (x0[:, 0] + 1) / 2
        return sum(t.loss(x) for t in self.items if kinds is None or t.kind in kinds)

    def measure(self, image: np.ndarray) -> list[dict]:
        """Each target with what the finished image (gray, [0, 1]) achieved."""
        return [{**t.record(), **t.measure(image)} for t in self.items]

    def record(self) -> dict:
        return {"strength": self.strength, "targets": [t.record() for t in self.items],
                **({"candidates": self.candidates} if self.candidates > 1 else {})}

    def penalty(self, image: np.ndarray) -> float:
        """How far a finished image (gray, [0, 1], (H, W)) is from all targets: the sum of each
        target's loss form (weight * d^2 / (2 tol^2)) on its hard descriptor."""
        return float(sum(t.penalty(image) for t in self.items))

    def penalties(self, images: Tensor) -> Tensor:
        """``penalty`` of each of ``images`` (N, C, H, W) in [0, 1], its first channel the field
        (as in ``loss``): (N,) float64. ``sample.generate`` keeps each sample's draw of least penalty."""
        return torch.tensor([self.penalty(im[0].numpy()) for im in images], dtype=torch.float64)

    def mixed(self) -> "VolumeFraction | None":
        """The volume-fraction target reached by class mixture, if any."""
        return next((t for t in self.items if getattr(t, "mix", ())), None)

    def mixture(self, denoiser):
        """The denoiser as a mixture of classes that meets the volume fraction of a target with
        ``mix`` (``guidance.ClassMixture``: per sample and step the two classes whose x0_hat
        fractions bracket the target, interpolated; up to MIX_REACH class spacings beyond the
        outermost); the denoiser itself when no target mixes or the strength is 0 (unguided bit
        for bit, like every target). It goes inside any canvas, so large
        canvases interpolate per window. Measured on the demo model: vf 0.55 from FVC50 within
        1.5 points for 32 of 32 samples with E_S to the nearest training image 1.1x that of
        unguided FVC50 samples (DPS alone: 11x), as the model moves fibers rather than swelling them."""
        vf = self.mixed()
        if vf is None or self.strength == 0:
            return denoiser
        if not self.class_names:
            raise UsageError("--target-mix needs the model's class names (sample with a pipeline)")
        from ..denoise.guidance import ClassMixture
        return ClassMixture(denoiser, vf.mix_labels(self.class_names), lambda x0: vf.fraction((x0[:, 0] + 1) / 2),
                            vf.value, MIX_REACH)

    def pooled_loss(self, x0: Tensor, kinds: Sequence[str] | None = None) -> Tensor:
        """``loss`` of a batch taken as one field (its images stacked, one segmentation threshold),
        repeated per image: the B images share one push of the strength of a single image's (the
        sum is B times the pooled loss). For the sections of a volume: its fraction steered as a
        whole rather than each section pinned to the target."""
        b, c, h, w = x0.shape
        return self.loss(x0.movedim(0, 1).reshape(1, c, b * h, w), kinds).expand(b)

    def guide(self, denoiser, pooled: bool = False):
        """The denoiser steered towards the targets (a volume fraction with ``mix``: see
        ``mixture``, which replaces its gradient guidance). Volume fractions and MCRpy descriptors: DPS
        (``GradientGuidance``, gradient through the network) with the strength as its scale. S2:
        descent on the predicted x_0 itself (``X0Guidance``: X0_ITERS normalised steps of
        X0_STEP * strength / 3 while sigma_t >= X0_MIN_SIGMA, so the last steps leave the texture
        to the model). Measured on the demo model, DPS did not lower the S2 error to a held-out
        image (median 0.0079 unguided, 0.0083-0.0101 guided) while the x_0 descent halves it.
        ``pooled``: DPS on ``pooled_loss`` (every call's batch steered as one field)."""
        from ..denoise.guidance import GradientGuidance, X0Guidance
        kinds = {t.kind for t in self.items if not getattr(t, "mix", ())}
        out = denoiser
        dps = tuple(kinds - X0_KINDS)
        loss = self.pooled_loss if pooled else self.loss
        if dps:
            out = GradientGuidance(out, lambda x0: loss(x0, dps), self.strength)
        if kinds & X0_KINDS:
            out = X0Guidance(out, lambda x0: self.loss(x0, tuple(X0_KINDS)), X0_STEP * self.strength / 3,
                             X0_ITERS, X0_MIN_SIGMA)
        return out


X0_KINDS = frozenset({"s2"})       # targets steered by descent on x_0 (see Targets.guide)
X0_STEP, X0_ITERS, X0_MIN_SIGMA = 0.1, 6, 0.2
MIX_REACH = 1.0                    # class mixture: extrapolate up to one class spacing beyond the outermost
MAX_CANDIDATES = 64                # --target-candidates: at most this many draws per sample


def make_targets(spec, strength: float = 1.0, size: tuple[int, int] | None = None,
                 class_names: Sequence[str] = (), candidates: int | None = None) -> Targets:
    """Targets from Python: a ``Targets``, a sequence of ``Target`` objects, or a dict with keys
    ``vf`` (a fraction), ``mix`` (with ``vf``: classes to interpolate with, or "all"), ``s2`` (an
    image path), ``correlations`` / ``gram`` (a .npy path) and ``candidates`` (draws per sample,
    the best kept); checked against the sample ``size`` (height, width) when given and the
    model's ``class_names``. ``candidates`` given here overrides the spec's."""
    if isinstance(spec, Targets):
        out = spec
    elif isinstance(spec, dict):
        if "mix" in spec and "vf" not in spec:
            raise UsageError("targets: 'mix' interpolates classes to reach 'vf'; give a 'vf' too")
        items = []
        for key, value in spec.items():
            if key == "vf":
                items.append(VolumeFraction(value=float(value), mix=spec.get("mix", ())))
            elif key == "s2":
                items.append(TwoPoint.from_image(value))
            elif key in DESCRIPTORS:
                items.append(Descriptor.from_file(value, key))
            elif key not in ("mix", "candidates"):
                raise UsageError(f"targets: unknown key {key!r}; use vf, mix, s2, correlations, gram or candidates")
        if not items:
            raise UsageError("targets: no target given; use vf, s2, correlations or gram ('mix' and "
                             "'candidates' only go beside them)")
        out = Targets(tuple(items), strength, candidates=spec.get("candidates", 1))
    else:
        out = Targets(tuple(spec), strength)
    if class_names or candidates is not None:
        out = Targets(out.items, out.strength, tuple(class_names) or out.class_names,
                      out.candidates if candidates is None else candidates)
    return out.checked(size) if size is not None else out


def parse_weights(texts: Sequence[str]) -> dict[str, float]:
    """``--target-weight vf=2 --target-weight s2=0.5`` -> {"vf": 2.0, "s2": 0.5}."""
    out = {}
    for text in texts:
        key, sep, value = text.partition("=")
        try:
            out[key.strip()] = float(value) if sep else float("nan")
        except ValueError:
            out[key.strip()] = float("nan")
        if key.strip() not in ("vf", "s2", "descriptor") or not np.isfinite(out[key.strip()]):
            raise UsageError(f"--target-weight {text!r}: expected vf=W, s2=W or descriptor=W with a number W >= 0")
    return out


def targets_from_flags(vf: float | None = None, s2: str | None = None, descriptor_file: str | None = None,
                       descriptor: str | None = None, phase: int | None = None, segment: str | None = None,
                       weights: Sequence[str] = (), mix: str | None = None) -> list[Target]:
    """The targets of ``sample``'s flags: --target-vf (with --target-mix CLASSES), --target-s2,
    --target-descriptor with --descriptor, --target-phase (of --segment, default otsu) and
    --target-weight NAME=W."""
    w = parse_weights(weights)
    seg = str(Segmentation.parse(segment)) if segment else "otsu"
    ph = -1 if phase is None else phase
    if (descriptor is None) != (descriptor_file is None):
        raise UsageError("--target-descriptor FILE.npy and --descriptor correlations|gram go together")
    if phase is not None and vf is None and s2 is None:
        raise UsageError("--target-phase chooses the phase of --target-vf or --target-s2; give one of them")
    items: list[Target] = []
    if mix is not None and vf is None:
        raise UsageError("--target-mix interpolates classes to reach --target-vf; give --target-vf too")
    if vf is not None:
        names = tuple(n.strip() for n in (mix or "").split(",") if n.strip())
        if mix is not None and not names:
            raise UsageError(f"--target-mix {mix!r}: name classes to mix with, comma-separated, or all")
        items.append(VolumeFraction(w.get("vf", 1.0), seg, ph, value=vf, mix=names))
    if s2 is not None:
        items.append(TwoPoint.from_image(s2, w.get("s2", 1.0), seg, ph))
    if descriptor_file is not None:
        items.append(Descriptor.from_file(descriptor_file, descriptor, w.get("descriptor", 1.0)))
    unused = sorted(set(w) - {t.kind for t in items})
    if unused:
        raise UsageError(f"--target-weight {unused[0]}=...: there is no --target-{unused[0]} to weigh")
    for t in items:
        t.check_common(f"--target-{t.kind}")
    return items
