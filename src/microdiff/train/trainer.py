"""Training: a ``Trainer`` (after improved-diffusion's TrainLoop) with AdamW, EMA, the hybrid loss
through the ``Denoiser``, checkpoints, exact resume, logs and sample grids.

Every random draw of step ``s`` (data order, timesteps, noise, label dropout, augmentation)
is a pure function of (seed, s) and of the global sample position, so a resumed run continues
exactly and the global batch does not depend on the number of processes: process r of W takes
the r-th W-th of each global batch (accelerate / DDP averages the gradients).
"""
from __future__ import annotations

import contextlib
import copy
import json
import math
import sys
import time
from dataclasses import dataclass, fields
from pathlib import Path

import torch

from ..model.checkpoint import list_checkpoints, load_checkpoint, save_checkpoint
from ..core.checks import check_float
from ..config import Config
from ..data.transforms import dihedral_batch
from ..denoise.denoiser import Denoiser
from ..diffusion import Diffusion, DiffusionLoss, lognormal_timesteps, q_sample
from ..core.errors import RunDirError, SettingError, TrainingError, UsageError, say, setting
from ..core.files import RunLock, write_text_atomic
from ..model.network import build_unet
from ..core.seeding import STREAM_INIT, derive_seed
from ..data.encoding import Encoding
from .runs import adopt_data, export_pipeline, mixed_precision, prepare_run_dir, switch
from .logs import TrainLog, write_sample_grid
from .steps import DataOrder, ema_decay_at, lr_at, step_randomness

@dataclass
class TrainResult:
    run_dir: Path
    step: int
    seconds: float
    last_loss: float


class Trainer:
    """One training run on a folder of class subfolders; the EMA pipeline lands in ``run_dir/model``.

    Global batch ``B`` = processes x grad_accum x per-device micro-batch; every global batch is
    drawn as in a single-process run and process r trains on its r-th share, so results (up to
    float summation order) and the number of optimizer steps do not depend on the process count.
    """

    def __init__(self, data_dir: str | Path, run_dir: str | Path, config: Config, resume: bool = False,
                 overwrite: bool = False, max_minutes: float | None = None, show_progress: bool = True,
                 accelerator=None, log=say):
        self.data_dir, self.run_dir, self.config = Path(data_dir), Path(run_dir), config
        self.max_minutes, self.show_progress, self.log = max_minutes, show_progress, log
        self.step_count = self.resumed_from = 0
        self.lock = self.train_log = None
        # -- processes and data (read and checked before the run folder is touched)
        self.acc = accelerator or self._accelerator()
        self._check_batch()
        self._load_data()
        # -- the run folder (locked: one training per folder)
        if self.acc.is_main_process:
            self.lock = RunLock(self.run_dir)
            prepare_run_dir(self.run_dir, resume, overwrite)
        self.acc.wait_for_everyone()
        # -- network, EMA, optimizer
        self._build_networks()
        if resume:
            self.resume()
        if self.acc.is_main_process:
            run = {**self.meta, "data_statistics": "in model/microdiff.json", "argv": sys.argv,
                   "processes": self.acc.num_processes}
            write_text_atomic(self.run_dir / "run.json", json.dumps(run, indent=2))
        self._prepare_devices()

    # ----------------------------------------------------------------- construction

    def _accelerator(self):
        from accelerate import Accelerator
        tc = self.config.train
        cuda = torch.cuda.is_available()
        if tc.mixed_precision == "bf16" and not cuda:
            self.log("note: train.mixed_precision=bf16 is ignored on the CPU (about 50x slower than fp32 there)")
        return Accelerator(mixed_precision=mixed_precision(tc.mixed_precision), cpu=not cuda)

    def _check_batch(self) -> None:
        tc, world = self.config.train, self.acc.num_processes
        if tc.grad_accum < 1 or tc.batch_size % (world * tc.grad_accum):
            raise UsageError(f"batch size {tc.batch_size} is not divisible by {world} process(es) x "
                             f"{tc.grad_accum} accumulation step(s); choose a multiple of {world * tc.grad_accum}")

    def _load_data(self) -> None:
        from ..data.channels import load_class_images, value_counts
        images = load_class_images(self.data_dir, self.config.model.image_size)
        self.config, self.layout, notes = adopt_data(self.config, self.data_dir, images)
        for line in [f"skipped: {s}" for s in images.skipped] + notes if self.acc.is_main_process else ():
            self.log(line)
        self.encoding = images.encoding if images.encoding.kind != "gray" else Encoding.of_model(self.config.model)
        data = torch.from_numpy(images.images)                          # (N, C, S, S) uint8, decoded once
        if images.encoding.kind == "gray" and self.config.model.image_channels != 1:
            data = data.expand(-1, self.config.model.image_channels, -1, -1)
        self.data = data.pin_memory() if self.acc.device.type == "cuda" else data
        self.labels = torch.from_numpy(images.labels)
        self.class_names = images.class_names
        self.meta = {"class_names": self.class_names, "config": self.config.to_dict(), "data_dir": str(self.data_dir),
                     "data_statistics": value_counts(images)}

    def _build_networks(self) -> None:
        tc = self.config.train
        torch.manual_seed(derive_seed(tc.seed, STREAM_INIT))              # identical init on every rank
        self.unet = build_unet(self.config.model, len(self.class_names))
        if tc.grad_checkpointing:
            self.unet.enable_gradient_checkpointing()
        self.ema = copy.deepcopy(self.unet).requires_grad_(False)
        fused = {"fused": True} if self.acc.device.type == "cuda" else {}
        self.opt = torch.optim.AdamW(self.unet.parameters(), lr=tc.lr, weight_decay=tc.weight_decay, **fused)

    def resume(self) -> None:
        """Restore the network, EMA, optimizer and step of the last checkpoint."""
        ck = load_checkpoint(list_checkpoints(self.run_dir)[-1])
        saved = ck["meta"]
        old = Config.from_dict(saved["config"])
        changed = [f"{sec}.{f.name} = {getattr(getattr(old, sec), f.name)!r} there, "
                   f"{getattr(getattr(self.config, sec), f.name)!r} now"
                   for sec in ("model", "diffusion") for f in fields(getattr(old, sec))
                   if getattr(getattr(old, sec), f.name) != getattr(getattr(self.config, sec), f.name)]
        if saved.get("class_names") != self.class_names:
            changed.append("the class list")
        if changed:
            raise RunDirError(f"the checkpoint in {self.run_dir} was written with other settings ({'; '.join(changed)}); "
                              f"resume with its {setting('preset')}/{setting('set')}/{setting('data')} (a run of the `cpu` preset "
                              f"from before the EDM recipe: {setting('preset')} cpu-paper), or start a new {setting('out')}")
        self.unet.load_state_dict(ck["unet"])
        self.ema.load_state_dict(ck["ema"])
        self.opt.load_state_dict(ck["optimizer"])
        self.step_count = self.resumed_from = int(saved["step"])

    def _prepare_devices(self) -> None:
        tc, cuda = self.config.train, torch.cuda.is_available()
        self.channels_last = switch(tc.channels_last, cuda, "channels_last", self.log)
        if self.channels_last:
            self.unet = self.unet.to(memory_format=torch.channels_last)
        self.unet, self.opt = self.acc.prepare(self.unet, self.opt)
        net = torch.compile(self.unet) if switch(tc.compile, cuda, "compile", self.log) else self.unet
        self.ema.to(self.acc.device)
        self.diffusion = Diffusion.from_config(self.config.diffusion.schedule, self.config.diffusion.timesteps)
        self.denoiser = Denoiser.from_config(net, self.config, len(self.class_names), autocast=self.acc.autocast)
        recipe = self.config.diffusion.recipe_spec
        self.loss = DiffusionLoss(recipe, self.config.diffusion.lambda_vlb)
        self.draw_t = None
        if recipe.timesteps == "lognormal":
            self.draw_t = lambda g, n: lognormal_timesteps(
                self.diffusion, torch.randn(n, generator=g, dtype=torch.float64), recipe.lognormal_mean,
                recipe.lognormal_std)
        self.order = DataOrder(len(self.data), tc.batch_size, tc.seed)
        self.per_process = tc.batch_size // self.acc.num_processes
        self.micro = self.per_process // tc.grad_accum
        self.ema_params = list(self.ema.parameters())
        self.audit = None

    # ----------------------------------------------------------------- one step

    def forward_backward(self, m: int, idx: torch.Tensor, rnd: dict) -> dict[str, float]:
        """Loss and gradients of micro-batch ``m`` of this process's share of the global batch."""
        tc, acc, dev = self.config.train, self.acc, self.acc.device
        nb = dev.type == "cuda"
        sl = slice(acc.process_index * self.per_process + m * self.micro,
                   acc.process_index * self.per_process + (m + 1) * self.micro)
        if self.audit:
            self.audit.write(f"{self.step_count},{','.join(map(str, idx[sl].tolist()))}\n")
        x0 = dihedral_batch(self.encoding.encode(self.data[idx[sl]]), rnd["dihedral"][sl]).to(dev, non_blocking=nb)
        y = torch.where(rnd["drop"][sl], len(self.class_names), self.labels[idx[sl]])
        if self.layout is not None:           # and where each crop lies in its source, turned as the crop
            y = self.layout(y, idx[sl], rnd["dihedral"][sl])
        y = y.to(dev, non_blocking=nb)
        t = rnd["t"][sl].to(dev, non_blocking=nb)
        noise = rnd["noise"][sl].to(dev, non_blocking=nb)
        xt = q_sample(self.diffusion, x0, t, noise)
        if self.channels_last:
            xt = xt.contiguous(memory_format=torch.channels_last)
        sync = acc.no_sync(self.unet) if m < tc.grad_accum - 1 else contextlib.nullcontext()
        with sync:
            out = self.denoiser(xt, t, y)
            terms = self.loss(self.diffusion, out, x0, xt, t, noise)
            loss = terms["loss"].mean() / tc.grad_accum
            acc.backward(loss)
        return {"loss": float(loss.detach()), "mse": float(terms["mse"].detach().mean()) / tc.grad_accum,
                "vb": float(terms["vb"].detach().mean()) / tc.grad_accum if "vb" in terms else 0.0}

    def step(self) -> dict[str, float]:
        """One optimizer step on global batch ``step_count``; returns this process's loss terms."""
        tc, dc = self.config.train, self.config.diffusion
        idx = self.order.batch(self.step_count)
        shape = (self.config.model.image_channels, *self.data.shape[2:])
        rnd = step_randomness(tc.seed, self.step_count, tc.batch_size, shape, dc.timesteps,
                              tc.label_dropout, tc.augment, self.draw_t)
        for group in self.opt.param_groups:
            group["lr"] = lr_at(self.step_count, tc)
        self.opt.zero_grad(set_to_none=True)
        sums = {"loss": 0.0, "mse": 0.0, "vb": 0.0}
        for m in range(tc.grad_accum):
            for k, v in self.forward_backward(m, idx, rnd).items():
                sums[k] += v
        self._check_finite(sums["loss"])
        if tc.grad_clip > 0:
            self.acc.clip_grad_norm_(self.unet.parameters(), tc.grad_clip)
        self.opt.step()
        with torch.no_grad():
            d = ema_decay_at(self.step_count, tc.ema_decay)
            torch._foreach_lerp_(self.ema_params, [p.detach() for p in self.acc.unwrap_model(self.unet).parameters()],
                                 1 - d)
        self.step_count += 1
        return sums

    def _check_finite(self, loss: float) -> None:
        """Stop before a non-finite loss reaches the weights (every process agrees); the weights
        before this step are saved as a checkpoint, so nothing is lost."""
        bad = not math.isfinite(loss)
        if self.acc.num_processes > 1:
            flag = torch.tensor([1.0 if bad else 0.0], device=self.acc.device)
            bad = bool(self.acc.reduce(flag, reduction="max").item() > 0)
        if not bad:
            return
        step = self.step_count + 1
        saved = "no checkpoint was written"
        if self.acc.is_main_process and self.step_count > 0:
            saved = f"the weights before it are in {self.save()}"
        raise TrainingError(f"the loss is not finite ({loss}) at step {step}: training diverged; {saved}; "
                            f"lower train.lr (now {self.config.train.lr:g}) or set train.grad_clip, then {setting('resume')}")

    def global_losses(self, sums: dict[str, float]) -> dict[str, float]:
        """The global-batch means of the loss terms (every process must call it)."""
        if self.acc.num_processes == 1:
            return sums
        v = self.acc.reduce(torch.tensor([sums["loss"], sums["mse"], sums["vb"]], device=self.acc.device),
                            reduction="mean")
        return dict(zip(("loss", "mse", "vb"), (float(a) for a in v.cpu())))

    # ----------------------------------------------------------------- writing

    def save(self) -> Path:
        """A checkpoint of the current step (main process)."""
        return save_checkpoint(self.run_dir, self.step_count, self.acc.unwrap_model(self.unet).state_dict(),
                               self.ema.state_dict(), self.opt.state_dict(), self.meta,
                               keep=self.config.train.keep_checkpoints)

    def export(self, path: Path | None = None) -> Path:
        """The EMA network as a pipeline folder, written atomically (main process)."""
        return export_pipeline(self.ema, self.config, self.class_names, Path(path or self.run_dir / "model"),
                               self.step_count, self.meta["data_statistics"])

    def sample_grid(self) -> Path | None:
        """A preview grid from the EMA weights (main process); a failure never ends the run."""
        path = self.run_dir / "samples" / f"step_{self.step_count:07d}.png"
        try:
            write_sample_grid(self.ema, self.config, self.class_names, path)
            return path
        except Exception as e:  # noqa: BLE001  a preview must never end a run
            self.log(f"warning: sample grid at step {self.step_count} failed ({type(e).__name__}: {e}); "
                     "training goes on")
            return None

    # ----------------------------------------------------------------- the loop

    def _out_of_time(self, deadline: float | None) -> bool:
        out = deadline is not None and time.perf_counter() > deadline
        if deadline is not None and self.acc.num_processes > 1:      # every process stops at the same step
            flag = torch.tensor([1.0 if out else 0.0], device=self.acc.device)
            out = bool(self.acc.reduce(flag, reduction="max").item() > 0)
        return out

    def _open_logs(self, stack: contextlib.ExitStack):
        from tqdm.auto import tqdm
        tc, main = self.config.train, self.acc.is_main_process
        log = stack.enter_context(contextlib.closing(TrainLog(self.run_dir / "log.csv", self.resumed_from))) \
            if main else None
        self.train_log = log
        if tc.audit_order:
            (self.run_dir / "order").mkdir(exist_ok=True)
            self.audit = stack.enter_context(open(self.run_dir / "order" / f"rank{self.acc.process_index}.csv", "a"))
        bar = stack.enter_context(contextlib.closing(tqdm(
            total=tc.steps, initial=self.step_count, desc="training", unit="step",
            disable=not (self.show_progress and main), dynamic_ncols=True)))
        return log, bar

    def run(self) -> TrainResult:
        """Train to ``train.steps`` (or the time budget), checkpointing and logging; then export."""
        tc, acc = self.config.train, self.acc
        self.t0 = self.t_last = time.perf_counter()
        self.step_last, last_loss = self.step_count, float("nan")
        deadline = self.t0 + 60 * self.max_minutes if self.max_minutes else None
        try:
            with contextlib.ExitStack() as stack:
                log, bar = self._open_logs(stack)
                while self.step_count < tc.steps:
                    last_loss = self._log_step(self.step(), log, bar)
                    if self._checkpoint_and_preview(self._out_of_time(deadline)):
                        break
            acc.wait_for_everyone()
            if acc.is_main_process:
                self.export()
            acc.wait_for_everyone()
        finally:
            if self.lock is not None:
                self.lock.close()
        return TrainResult(self.run_dir, self.step_count, time.perf_counter() - self.t0, last_loss)

    def _log_step(self, sums: dict[str, float], log: TrainLog | None, bar) -> float:
        """The progress bar and, every ``log_every`` steps, a row of the global-batch losses."""
        tc, step = self.config.train, self.step_count
        log_now = step % tc.log_every == 0 or step == tc.steps
        if log_now:
            sums = self.global_losses(sums)
        bar.update(1)
        if log and log_now:
            now = time.perf_counter()
            ips = (step - self.step_last) * tc.batch_size / max(now - self.t_last, 1e-9)
            self.t_last, self.step_last = now, step
            log.write({"step": step, "loss": f"{sums['loss']:.6f}", "mse": f"{sums['mse']:.6f}",
                       "vb": f"{sums['vb']:.6f}", "lr": f"{lr_at(step - 1, tc):.3g}",
                       "images_per_s": f"{ips:.2f}", "elapsed_s": f"{now - self.t0:.1f}"})
            bar.set_postfix(loss=f"{sums['loss']:.4f}", img_s=f"{ips:.1f}")
        return sums["loss"]

    def _checkpoint_and_preview(self, out_of_time: bool) -> bool:
        """Checkpoint and preview grid when due; True when the time budget ends the run."""
        tc, acc, step = self.config.train, self.acc, self.step_count
        if step % tc.checkpoint_every == 0 or step == tc.steps or out_of_time:
            acc.wait_for_everyone()
            if acc.is_main_process:
                self.save()
        if acc.is_main_process and tc.sample_every > 0 and (step % tc.sample_every == 0 or step == tc.steps):
            grid = self.sample_grid()
            if grid is not None and self.train_log is not None:
                self.train_log.add_image("samples", grid, step)
        if out_of_time and acc.is_main_process:
            self.log(f"time budget of {self.max_minutes} min reached at step {step}; checkpoint written")
        return out_of_time


def train_model(data_dir: str | Path, run_dir: str | Path, config: Config, resume: bool = False,
                overwrite: bool = False, max_minutes: float | None = None, show_progress: bool = True,
                accelerator=None, log=say) -> TrainResult:
    """Train on a folder of class subfolders (``Trainer(...).run()``); the model lands in ``run_dir/model``."""
    if max_minutes is not None:
        check_float("max_minutes", max_minutes, 0.0, lo_open=True, error=SettingError)
    return Trainer(data_dir, run_dir, config, resume, overwrite, max_minutes, show_progress, accelerator, log).run()
