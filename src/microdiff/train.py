"""The training loop: AdamW, EMA, hybrid loss, checkpoints, exact resume, logs, sample grids.

Every random draw of step ``s`` (data order, timesteps, noise, label dropout, augmentation)
is a pure function of (seed, s) and of the global sample position, so a resumed run continues
exactly and the global batch does not depend on the number of processes: process r of W takes
the r-th W-th of each global batch (accelerate / DDP averages the gradients).
"""
from __future__ import annotations

import contextlib
import copy
import csv
import json
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from .checkpoint import list_checkpoints, load_checkpoint, save_checkpoint
from .config import Config
from .diffusion import Diffusion, hybrid_loss, q_sample
from .model import build_unet, unet_forward
from .seeding import derive_seed as _seed


class RunDirError(ValueError):
    pass


@dataclass
class TrainResult:
    run_dir: Path
    step: int
    seconds: float
    last_loss: float


class DataOrder:
    """Global sample order: epoch e visits a permutation of all N items (seeded by (seed, e)),
    and global batch s takes positions s*B ... s*B + B - 1 of the concatenated epochs."""

    def __init__(self, n: int, batch_size: int, seed: int):
        self.n, self.b, self.seed = n, batch_size, seed
        self._perms: dict[int, torch.Tensor] = {}

    def perm(self, epoch: int) -> torch.Tensor:
        if epoch not in self._perms:
            if len(self._perms) > 4:
                self._perms.clear()
            g = torch.Generator().manual_seed(_seed(self.seed, 1, epoch))
            self._perms[epoch] = torch.randperm(self.n, generator=g)
        return self._perms[epoch]

    def batch(self, step: int) -> torch.Tensor:
        pos = torch.arange(step * self.b, (step + 1) * self.b)
        epochs = pos // self.n
        out = torch.empty(self.b, dtype=torch.long)
        for e in epochs.unique().tolist():
            m = epochs == e
            out[m] = self.perm(e)[pos[m] % self.n]
        return out


def step_randomness(seed: int, step: int, batch: int, shape: tuple[int, ...], timesteps: int,
                    label_dropout: float, augment: bool) -> dict[str, torch.Tensor]:
    """All random draws of one global batch, a pure function of (seed, step)."""
    g = torch.Generator().manual_seed(_seed(seed, 2, step))
    return {
        "t": torch.randint(0, timesteps, (batch,), generator=g),
        "noise": torch.randn((batch, *shape), generator=g),
        "drop": torch.rand(batch, generator=g) < label_dropout,
        "dihedral": torch.randint(0, 8 if augment else 1, (batch,), generator=g),
    }


def dihedral(x: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
    """Apply element i of the dihedral group D4 (k = 0..7: rot90^(k mod 4), then a flip if k >= 4)."""
    out = x.clone()
    for i in range(x.shape[0]):
        ki = int(k[i])
        y = torch.rot90(x[i], ki % 4, dims=(-2, -1))
        out[i] = torch.flip(y, dims=(-1,)) if ki >= 4 else y
    return out


def lr_at(step: int, cfg) -> float:
    if cfg.warmup_steps > 0 and step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    return cfg.lr


def ema_decay_at(step: int, decay: float) -> float:
    """EMA decay with the usual warm-up min(decay, (1 + s) / (10 + s)), so short runs average sensibly."""
    return min(decay, (1 + step) / (10 + step))


def prepare_run_dir(out: Path, resume: bool, overwrite: bool) -> None:
    has_run = out.exists() and any((out / n).exists() for n in ("run.json", "checkpoints", "model"))
    if resume:
        if not list_checkpoints(out):
            raise RunDirError(f"{out} holds no checkpoint to resume; start without --resume")
        return
    if has_run and not overwrite:
        raise RunDirError(f"{out} already holds a training run; pass --resume to continue it or "
                          "--overwrite to replace it (or choose another --out)")
    if has_run and overwrite:
        for n in ("run.json", "checkpoints", "model", "samples", "log.csv"):
            p = out / n
            if p.is_dir():
                shutil.rmtree(p)
            elif p.exists():
                p.unlink()
    out.mkdir(parents=True, exist_ok=True)


def _switch(value: str, cuda: bool, name: str, log) -> bool:
    """Resolve an auto/yes/no fast-path switch; a CUDA-only switch asked for on a CPU is ignored, saying why."""
    if value not in ("auto", "yes", "no"):
        raise ValueError(f"train.{name} must be auto, yes or no (got {value!r})")
    if value == "yes" and not cuda:
        log(f"note: train.{name}=yes is ignored: it only pays off on a CUDA GPU and none is in use")
        return False
    return value == "yes" or (value == "auto" and cuda)


def train(data_dir: str | Path, out_dir: str | Path, config: Config, resume: bool = False,
          overwrite: bool = False, max_minutes: float | None = None, show_progress: bool = True,
          accelerator=None, log=print) -> TrainResult:
    """Train on a folder of class subfolders; the final EMA pipeline lands in ``out_dir/model``.

    Global batch ``B`` = processes x grad_accum x per-device micro-batch; every global batch is
    drawn as in a single-process run and process r trains on its r-th share, so results (up to
    float summation order) and the number of optimizer steps do not depend on the process count.
    """
    from accelerate import Accelerator
    from tqdm.auto import tqdm

    from .data.io import load_class_folders

    out = Path(out_dir)
    tc, mc, dc = config.train, config.model, config.diffusion
    cuda = torch.cuda.is_available()
    if tc.mixed_precision == "bf16" and not cuda:
        log("note: train.mixed_precision=bf16 is ignored on the CPU (about 50x slower than fp32 there)")
    acc = accelerator or Accelerator(mixed_precision=_mixed_precision(tc.mixed_precision), cpu=not cuda)
    world, rank = acc.num_processes, acc.process_index
    if tc.grad_accum < 1 or tc.batch_size % (world * tc.grad_accum):
        raise ValueError(f"batch size {tc.batch_size} is not divisible by {world} process(es) x "
                         f"{tc.grad_accum} accumulation step(s); choose a multiple of {world * tc.grad_accum}")
    if acc.is_main_process:
        prepare_run_dir(out, resume, overwrite)
    acc.wait_for_everyone()

    images, labels, class_names, skipped = load_class_folders(data_dir, mc.image_size)
    if acc.is_main_process:
        for s in skipped:
            log(f"skipped: {s}")
    data = torch.from_numpy(images)[:, None]                         # (N, 1, S, S) uint8, decoded once
    if mc.image_channels != 1:
        data = data.expand(-1, mc.image_channels, -1, -1)
    if acc.device.type == "cuda":
        data = data.pin_memory()
    labels_t = torch.from_numpy(labels)

    torch.manual_seed(_seed(tc.seed, 0))                             # identical init on every rank
    unet = build_unet(mc, len(class_names))
    if tc.grad_checkpointing:
        unet.enable_gradient_checkpointing()
    ema = copy.deepcopy(unet).requires_grad_(False)
    opt = torch.optim.AdamW(unet.parameters(), lr=tc.lr, weight_decay=tc.weight_decay,
                            **({"fused": True} if acc.device.type == "cuda" else {}))
    step = 0
    meta = {"class_names": class_names, "config": config.to_dict(), "data_dir": str(data_dir)}
    if resume:
        ck = load_checkpoint(list_checkpoints(out)[-1])
        saved = ck["meta"]
        old = Config.from_dict(saved["config"])
        if (old.model, old.diffusion) != (config.model, config.diffusion) or saved.get("class_names") != class_names:
            raise RunDirError(f"the checkpoint in {out} was written by a different model configuration "
                              "or class list; resume with the same --preset/--set/--data, or start a new --out")
        unet.load_state_dict(ck["unet"])
        ema.load_state_dict(ck["ema"])
        opt.load_state_dict(ck["optimizer"])
        step = int(saved["step"])
    if acc.is_main_process:
        (out / "run.json").write_text(json.dumps({**meta, "argv": sys.argv, "processes": world}, indent=2))

    channels_last = _switch(tc.channels_last, cuda, "channels_last", log)
    if channels_last:
        unet = unet.to(memory_format=torch.channels_last)
    unet, opt = acc.prepare(unet, opt)
    forward_net = torch.compile(unet) if _switch(tc.compile, cuda, "compile", log) else unet
    ema.to(acc.device)
    diff = Diffusion.from_config(dc.schedule, dc.timesteps)
    order = DataOrder(len(data), tc.batch_size, tc.seed)
    per = tc.batch_size // world
    micro = per // tc.grad_accum
    shape = tuple(data.shape[1:])
    null = len(class_names)
    log_path = out / "log.csv"
    new_log = not log_path.exists()
    logf = open(log_path, "a", newline="") if acc.is_main_process else None
    writer = csv.writer(logf) if logf else None
    if writer and new_log:
        writer.writerow(["step", "loss", "mse", "vb", "lr", "images_per_s", "elapsed_s"])
    audit = None
    if tc.audit_order:
        (out / "order").mkdir(exist_ok=True)
        audit = open(out / "order" / f"rank{rank}.csv", "a")
    bar = tqdm(total=tc.steps, initial=step, desc="training", unit="step",
               disable=not (show_progress and acc.is_main_process), dynamic_ncols=True)
    t0 = time.perf_counter()
    t_last, step_last = t0, step
    deadline = t0 + 60 * max_minutes if max_minutes else None
    last_loss = float("nan")
    ema_params = list(ema.parameters())
    nb = acc.device.type == "cuda"

    while step < tc.steps:
        idx = order.batch(step)
        rnd = step_randomness(tc.seed, step, tc.batch_size, shape, dc.timesteps, tc.label_dropout,
                              tc.augment == "dihedral")
        for group in opt.param_groups:
            group["lr"] = lr_at(step, tc)
        opt.zero_grad(set_to_none=True)
        loss_sum = mse_sum = vb_sum = 0.0
        for m in range(tc.grad_accum):
            sl = slice(rank * per + m * micro, rank * per + (m + 1) * micro)
            if audit:
                audit.write(f"{step},{','.join(map(str, idx[sl].tolist()))}\n")
            x0 = dihedral(data[idx[sl]].float() / 127.5 - 1, rnd["dihedral"][sl]).to(acc.device, non_blocking=nb)
            y = torch.where(rnd["drop"][sl], null, labels_t[idx[sl]]).to(acc.device, non_blocking=nb)
            t = rnd["t"][sl].to(acc.device, non_blocking=nb)
            noise = rnd["noise"][sl].to(acc.device, non_blocking=nb)
            xt = q_sample(diff, x0, t, noise)
            if channels_last:
                xt = xt.contiguous(memory_format=torch.channels_last)
            sync = acc.no_sync(unet) if m < tc.grad_accum - 1 else contextlib.nullcontext()
            with sync:
                with acc.autocast():
                    out_ = unet_forward(forward_net, xt, diff.model_timesteps(t), y,
                                        diff.alphas_cumprod[t], mc.eps_skip_sigma)
                terms = hybrid_loss(diff, out_.float(), x0, xt, t, noise, dc.lambda_vlb)
                loss = terms["loss"].mean() / tc.grad_accum
                acc.backward(loss)
            loss_sum += float(loss.detach())
            mse_sum += float(terms["mse"].detach().mean()) / tc.grad_accum
            vb_sum += float(terms["vb"].detach().mean()) / tc.grad_accum if "vb" in terms else 0.0
        if tc.grad_clip > 0:
            acc.clip_grad_norm_(unet.parameters(), tc.grad_clip)
        opt.step()
        with torch.no_grad():
            d = ema_decay_at(step, tc.ema_decay)
            torch._foreach_lerp_(ema_params, [p.detach() for p in acc.unwrap_model(unet).parameters()], 1 - d)
        step += 1
        last_loss = loss_sum
        log_now = step % tc.log_every == 0 or step == tc.steps
        if log_now and world > 1:      # log the global-batch means, not the main process's share
            v = acc.reduce(torch.tensor([loss_sum, mse_sum, vb_sum], device=acc.device), reduction="mean")
            last_loss, mse_sum, vb_sum = (float(a) for a in v.cpu())
        if acc.is_main_process:
            bar.update(1)
            if log_now:
                now = time.perf_counter()
                ips = (step - step_last) * tc.batch_size / max(now - t_last, 1e-9)
                t_last, step_last = now, step
                writer.writerow([step, f"{last_loss:.6f}", f"{mse_sum:.6f}", f"{vb_sum:.6f}",
                                 f"{lr_at(step - 1, tc):.3g}", f"{ips:.2f}", f"{now - t0:.1f}"])
                logf.flush()
                bar.set_postfix(loss=f"{last_loss:.4f}", img_s=f"{ips:.1f}")
        out_of_time = deadline is not None and time.perf_counter() > deadline
        if deadline is not None and world > 1:       # every process stops at the same step
            flag = torch.tensor([1.0 if out_of_time else 0.0], device=acc.device)
            out_of_time = bool(acc.reduce(flag, reduction="max").item() > 0)
        if step % tc.checkpoint_every == 0 or step == tc.steps or out_of_time:
            acc.wait_for_everyone()
            if acc.is_main_process:
                save_checkpoint(out, step, acc.unwrap_model(unet).state_dict(), ema.state_dict(),
                                opt.state_dict(), meta)
        if acc.is_main_process and tc.sample_every > 0 and (step % tc.sample_every == 0 or step == tc.steps):
            try:   # a preview must never end a run
                write_sample_grid(ema, config, class_names, out / "samples" / f"step_{step:07d}.png")
            except Exception as e:  # noqa: BLE001
                log(f"warning: sample grid at step {step} failed ({type(e).__name__}: {e}); training goes on")
        if out_of_time:
            if acc.is_main_process:
                log(f"time budget of {max_minutes} min reached at step {step}; checkpoint written")
            break
    bar.close()
    if logf:
        logf.close()
    if audit:
        audit.close()
    acc.wait_for_everyone()
    if acc.is_main_process:
        export_pipeline(ema, config, class_names, out / "model")
    acc.wait_for_everyone()
    return TrainResult(out, step, time.perf_counter() - t0, last_loss)


def _mixed_precision(setting: str) -> str:
    if setting == "auto":
        return "bf16" if torch.cuda.is_available() else "no"
    return setting


def make_pipeline(unet, config: Config, class_names):
    from .model import MicrodiffPipeline, _scheduler_for
    pipe = MicrodiffPipeline(unet=unet, scheduler=_scheduler_for(config))
    pipe.microdiff_config = config
    pipe.class_names = list(class_names)
    return pipe


def export_pipeline(ema_unet, config: Config, class_names, path: Path) -> None:
    """Write the EMA network as a pipeline folder (atomically: a temp folder, then a rename)."""
    path = Path(path)
    tmp = path.parent / f".tmp_{path.name}"
    if tmp.exists():
        shutil.rmtree(tmp)
    unet = copy.deepcopy(ema_unet).to("cpu").float()
    make_pipeline(unet, config, class_names).save_pretrained(tmp)
    if path.exists():
        shutil.rmtree(path)
    tmp.rename(path)


@torch.no_grad()
def write_sample_grid(ema_unet, config: Config, class_names, path: Path, per_class: int = 8,
                      steps: int = 25, sampler: str = "dpmpp") -> None:
    """A grid, one row per class, from the EMA weights with fixed seeds."""
    from .data.io import save_png
    from .sample import generate
    pipe = make_pipeline(ema_unet, config, class_names)
    labels = [c for c in range(len(class_names)) for _ in range(per_class)]
    seeds = list(range(len(labels)))
    was_training = ema_unet.training
    imgs = generate(pipe, labels, seeds, min(steps, config.diffusion.timesteps), sampler,
                    config.sample.guidance, batch_size=len(labels))
    ema_unet.train(was_training)
    path.parent.mkdir(parents=True, exist_ok=True)
    from .figures import image_grid, labelled_grid
    save_png(path, labelled_grid(image_grid(imgs, per_class), config.model.image_size, 2,
                                 row_labels=class_names))
