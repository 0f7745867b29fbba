"""Training checkpoints: safetensors + JSON, written atomically (never pickles).

``RUN/checkpoints/step_NNNNNNN/`` holds ``unet.safetensors``, ``ema.safetensors``,
``optimizer.safetensors`` and ``state.json`` (step, config, class names, optimizer groups).
"""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import torch
from safetensors.torch import load_file, save

from ..core.errors import CheckpointError, setting
from ..core.files import free_bytes, is_disk_full, mb, remove

STATE_JSON = "state.json"


def _flatten_optimizer(opt_state: dict) -> tuple[dict[str, torch.Tensor], dict]:
    tensors, scalars = {}, {}
    for idx, st in opt_state["state"].items():
        for k, v in st.items():
            if torch.is_tensor(v):
                tensors[f"{idx}.{k}"] = v.detach().cpu().contiguous()
            else:
                scalars[f"{idx}.{k}"] = v
    return tensors, {"param_groups": opt_state["param_groups"], "scalars": scalars}


def _unflatten_optimizer(tensors: dict[str, torch.Tensor], meta: dict) -> dict:
    state: dict[int, dict] = {}
    for key, v in list(tensors.items()) + list(meta["scalars"].items()):
        idx, k = key.split(".", 1)
        state.setdefault(int(idx), {})[k] = v
    return {"state": state, "param_groups": meta["param_groups"]}


def _write_tensors(tensors: dict[str, torch.Tensor], path: Path) -> None:
    """safetensors bytes written with Python I/O, so that a full disk is an ``OSError``."""
    data = save({k: v.detach().cpu().contiguous() for k, v in tensors.items()})
    with open(path, "wb") as fh:
        fh.write(data)


def save_checkpoint(run_dir: Path, step: int, unet_state: dict, ema_state: dict, opt_state: dict,
                    meta: dict, keep: int = 2) -> Path:
    """``RUN/checkpoints/step_N`` written into a temporary folder and renamed; older checkpoints
    beyond the newest ``keep`` are removed only after the new one is complete. A full disk or a
    write error leaves the previous checkpoints as they were and raises ``CheckpointError``."""
    ckdir = Path(run_dir) / "checkpoints"
    ckdir.mkdir(parents=True, exist_ok=True)
    final = ckdir / f"step_{step:07d}"
    tmp = ckdir / f".tmp_step_{step:07d}"
    remove(tmp)
    tensors, opt_meta = _flatten_optimizer(opt_state)
    try:
        tmp.mkdir()
        _write_tensors(unet_state, tmp / "unet.safetensors")
        _write_tensors(ema_state, tmp / "ema.safetensors")
        _write_tensors(tensors, tmp / "optimizer.safetensors")
        (tmp / STATE_JSON).write_text(json.dumps({**meta, "step": step, "optimizer": opt_meta}, indent=1))
    except OSError as e:
        remove(tmp)
        need = 4 * sum(v.numel() * v.element_size() for v in unet_state.values()) + (1 << 20)
        why = (f"the disk is full: {ckdir} needs about {mb(need)} free and has {mb(free_bytes(ckdir))}"
               if is_disk_full(e) else f"writing failed ({e.strerror or e})")
        raise CheckpointError(f"cannot write the checkpoint of step {step}: {why}; the previous checkpoints are "
                              f"intact: free space (or fix the folder) and continue with {setting('resume')}") from None
    remove(final)
    os.replace(tmp, final)
    for old in list_checkpoints(run_dir)[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
    return final


def list_checkpoints(run_dir: Path) -> list[Path]:
    ckdir = Path(run_dir) / "checkpoints"
    if not ckdir.is_dir():
        return []
    return sorted(p for p in ckdir.iterdir() if p.is_dir() and p.name.startswith("step_"))


def load_checkpoint(path: Path) -> dict:
    """Load one checkpoint directory; a clear ``CheckpointError`` if it is incomplete or corrupt."""
    path = Path(path)
    try:
        meta = json.loads((path / STATE_JSON).read_text())
        out = {
            "meta": meta,
            "unet": load_file(path / "unet.safetensors"),
            "ema": load_file(path / "ema.safetensors"),
            "optimizer": _unflatten_optimizer(load_file(path / "optimizer.safetensors"), meta["optimizer"]),
        }
    except Exception as e:
        raise CheckpointError(f"checkpoint {path} is unreadable ({type(e).__name__}: {e}); "
                              "delete it to resume from the previous one") from None
    return out
