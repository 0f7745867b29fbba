"""SliceGAN (Kench & Cooper 2021, github.com/stke9/SliceGAN) as a peer baseline for microdiff.

SliceGAN is not part of microdiff and none of its code is copied here: this runner imports it from
a checkout given with ``--slicegan`` and calls its own ``networks.slicegan_rc_nets`` and
``model.train`` unchanged. It was written against commit 58a7ea3bf9ff1a6d97d7247686db7b989532c44a
(2022-09-30, "add raytrace & nphase generalisation"); the commit found is recorded in train.json.

    python benchmarks/peers/slicegan.py train    --slicegan /work/scratch/SliceGAN --data VOL.npy --out DIR --seconds 3600
    python benchmarks/peers/slicegan.py generate --slicegan /work/scratch/SliceGAN --out DIR --num 8 --size 64

train: a segmented two-phase 3D volume (.npy or .tif/.tiff; any two distinct values, the lower one
becoming phase 0) is written as DIR/training_volume.tif (uint8 0/1) and given to SliceGAN as its
``tif3D`` data type with one path, i.e. SliceGAN's isotropic mode: its preprocessing samples
28,800 random 64 x 64 one-hot slices along each of the three axes of the volume, and one
discriminator learns from all three orientations while the 3D generator's output is sliced along
x, y and z. The settings are those of SliceGAN's run_slicegan.py except the channel count:

    image_type 'nphase', img_channels 2 (two phases, one-hot), data_type 'tif3D', scale_factor 1,
    img_size 64, z_channels 32, resize-convolution generator (slicegan_rc_nets), 5 generator layers
    (kernel 4, stride 2, padding 2,2,2,2,3; filters 32-1024-512-128-32-2), 6-entry discriminator
    (kernel 4, stride 2, padding 1,1,1,1,0; filters 2-64-128-256-512-1).

Fixed inside SliceGAN's model.train (not changeable without editing SliceGAN): batch size 8 real
slices per orientation, D_batch_size 8 generated volumes per critic step (8 x 64 = 512 slices per
orientation), Adam lr 1e-4 for both nets with betas (0.9, 0.99), WGAN-GP with lambda 10, 5 critic
steps per generator step, lz = 4 (latent 32 x 4^3), 100 epochs of 3,600 iterations.

Image size 64: it is SliceGAN's default and the only size its default architecture takes without
changes (the discriminator reduces 64 x 64 to 1 x 1, and the generator maps a 4^3 latent to exactly
64^3), so the training slices and the benchmark volumes have the same size and no layer is altered.
The volume must be at least 65 voxels along every axis (SliceGAN draws offsets in [0, n - 64)).

Budget: SliceGAN's loop runs in this process; the generator class handed to it checks the clock at
the start of each of its training-mode forward passes (the start of an iteration, or just before a
generator step) and stops the loop by an exception once ``--seconds`` have passed since the
generator was built, i.e. after SliceGAN's preprocessing (timed separately as seconds_loading).
The generator's weights at that moment, those after the last completed generator step, are saved
as DIR/generator.pt. SliceGAN's own checkpoints (DIR/slicegan/run_Gen.pt, every 25 iterations) and
plots are kept too. "Iterations" are SliceGAN's inner-loop steps (one critic update on the three
orientations; the generator is updated every fifth), counted from the generator's forward passes:
generator updates are the passes that were back-propagated through. As in microdiff's own
``--max-minutes``, the budget is checked between steps, so a run ends up to one iteration after it
(and may skip the generator step those last critic steps prepared); train.json gives the seconds
actually used. On a CUDA machine SliceGAN's model.train picks the GPU by itself (train.json: device).

Cost on the project's CPU (2 shared cores, 2 threads): 18-20 s of preprocessing, 42-51 s per
iteration (a generator update every ~4 min), peak RSS 5 GB (SliceGAN keeps 3 x 28,800 one-hot 64^2
slices in float32 and builds them in float64). A CPU budget of hours gives tens of generator
updates only, far from a trained SliceGAN; an untrained generator gives p(phase 1) ~ 0.49
everywhere, i.e. all-zero volumes after the argmax.

generate: the saved generator (eval mode, as SliceGAN's util.test_img uses it) makes one volume per
seed (seed = --seed + index) from a 32 x lz^3 normal latent; the default lz is the smallest with an
output of at least --size (lz = 4: 64^3 for --size 64, no cropping); a larger output is cropped at
its centre. The phase label of a voxel is the argmax of the two softmax channels (0/1 as in the
training volume). Writes DIR/volumes/NNNN.npy (uint8, shape (size, size, size)) and generate.json.
SliceGAN's util.test_img is not called: it moves the net to CUDA unconditionally.
"""
from __future__ import annotations

import argparse
import importlib
import json
import os
import random
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

# SliceGAN's run_slicegan.py settings, with img_channels = 2 for a two-phase volume.
IMAGE_TYPE = "nphase"
DATA_TYPE = "tif3D"
NPHASE = 2
IMG_SIZE = 64
SCALE_FACTOR = 1
Z_CHANNELS = 32
LAYS, LAYSD = 5, 6
DK, GK = [4] * LAYSD, [4] * LAYS
DS, GS = [2] * LAYSD, [2] * LAYS
DF = [NPHASE, 64, 128, 256, 512, 1]
GF = [Z_CHANNELS, 1024, 512, 128, 32, NPHASE]
DP, GP = [1, 1, 1, 1, 0], [2, 2, 2, 2, 3]
# Fixed inside SliceGAN's model.train; recorded in train.json, not passed.
TRAIN_CONSTANTS = dict(batch_size=8, D_batch_size=8, lrg=1e-4, lrd=1e-4, betas=[0.9, 0.99], Lambda=10,
                       critic_iters=5, lz=4, num_epochs=100, samples_per_orientation=32 * 900)
PROJECT = "run"                  # SliceGAN's file prefix inside DIR/slicegan/


class BudgetReached(Exception):
    """Raised from the generator's forward pass to leave SliceGAN's training loop."""


def fail(msg: str) -> None:
    sys.exit(f"slicegan.py: error: {msg}")


def import_slicegan(src: Path):
    """SliceGAN's ``slicegan`` package from the checkout at ``src`` (not this file, of the same name)."""
    if not (src / "slicegan" / "model.py").is_file() or not (src / "slicegan" / "networks.py").is_file():
        fail(f"no SliceGAN source at {src} (expected {src}/slicegan/model.py and networks.py)")
    os.environ.setdefault("MPLBACKEND", "Agg")
    here = str(Path(__file__).resolve().parent)
    sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(here)]
    sys.path.insert(0, str(src.resolve()))
    sys.modules.pop("slicegan", None)
    pkg = importlib.import_module("slicegan")
    if Path(pkg.__file__).resolve().parent != (src / "slicegan").resolve():
        fail(f"imported slicegan from {pkg.__file__}, not from {src}")
    return pkg


def source_commit(src: Path) -> str | None:
    try:
        out = subprocess.run(["git", "-C", str(src), "rev-parse", "HEAD"], capture_output=True, text=True)
    except OSError:
        return None
    return out.stdout.strip() or None


def load_binary_volume(path: Path) -> tuple[np.ndarray, list]:
    """The volume as uint8 0/1 and its two original values (lower -> 0); exits on bad input."""
    if not path.is_file():
        fail(f"no volume file {path}")
    if path.suffix == ".npy":
        vol = np.load(path)
    elif path.suffix in (".tif", ".tiff"):
        import tifffile
        vol = tifffile.imread(path)
    else:
        fail(f"{path}: expected a .npy or .tif volume")
    vol = np.squeeze(np.asarray(vol))
    if vol.ndim != 3:
        fail(f"{path}: a 3D volume is needed, got shape {vol.shape}")
    if min(vol.shape) <= IMG_SIZE:
        fail(f"{path}: every axis must be longer than {IMG_SIZE} voxels, got shape {vol.shape}")
    values = np.unique(vol)
    if len(values) != 2:
        fail(f"{path}: a binary (two-phase) volume is needed, found {len(values)} distinct values")
    return (vol == values[1]).astype(np.uint8), values.tolist()


def seed_everything(seed: int) -> None:
    import torch
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def make_nets(sg, pth: str, training: bool):
    """SliceGAN's (Discriminator, Generator) classes; training writes the params file, else reads it."""
    return sg.networks.slicegan_rc_nets(pth, int(training), IMAGE_TYPE, DK, DS, DF, DP, GK, GS, GF, GP)


def budgeted(gen_cls, seconds: float):
    """A subclass of SliceGAN's generator that ends training ``seconds`` after it is built."""
    import torch

    class Budgeted(gen_cls):
        instance = None

        def __init__(self):
            super().__init__()
            self.t0 = time.monotonic()
            self.passes = 0          # completed training-mode forward passes
            self.updates = 0         # of those, the ones back-propagated through (generator steps)
            self.t_stop = None
            type(self).instance = self

        def elapsed(self) -> float:
            return (self.t_stop or time.monotonic()) - self.t0

        def forward(self, x):
            if not (self.training and torch.is_grad_enabled()):
                return super().forward(x)        # SliceGAN's preview every 25 iterations
            if time.monotonic() - self.t0 >= seconds:
                self.t_stop = time.monotonic()
                raise BudgetReached
            out = super().forward(x)
            out.register_hook(self._backward_seen)
            self.passes += 1
            return out

        def _backward_seen(self, grad):
            self.updates += 1
            return grad

    return Budgeted


def train(args) -> None:
    import torch
    sg = import_slicegan(args.slicegan)
    vol, values = load_binary_volume(args.data)
    out = args.out
    (out / "slicegan").mkdir(parents=True, exist_ok=True)
    tif = out / "training_volume.tif"
    import tifffile
    tifffile.imwrite(tif, vol)
    if args.threads:
        torch.set_num_threads(args.threads)
    seed_everything(args.seed)
    pth = str(out / "slicegan" / PROJECT)
    disc, gen = make_nets(sg, pth, training=True)
    Gen = budgeted(gen, args.seconds)
    t_start = time.monotonic()
    stopped = "finished"
    try:
        sg.model.train(pth, IMAGE_TYPE, DATA_TYPE, [str(tif)], disc, Gen, NPHASE, IMG_SIZE, Z_CHANNELS, SCALE_FACTOR)
    except BudgetReached:
        stopped = "budget"
    net = Gen.instance
    if net is None:
        fail("SliceGAN's training ended before it built the generator")
    seconds_train = net.elapsed()
    torch.save(net.state_dict(), out / "generator.pt")
    iterations = net.passes - net.updates
    report = dict(
        slicegan_source=str(args.slicegan.resolve()), slicegan_commit=source_commit(args.slicegan),
        data=str(args.data.resolve()), data_shape=list(vol.shape), data_values=values,
        phase1_fraction=float(vol.mean()), seed=args.seed, torch_threads=torch.get_num_threads(),
        device="cuda:0" if torch.cuda.is_available() else "cpu",     # SliceGAN's own choice in model.train
        budget_seconds=args.seconds, stopped_by=stopped,
        seconds_loading=round(net.t0 - t_start, 2), seconds=round(seconds_train, 2),
        seconds_total=round(time.monotonic() - t_start, 2),
        iterations=iterations, generator_updates=net.updates,
        seconds_per_iteration=round(seconds_train / iterations, 3) if iterations else None,
        checkpoint=str((out / "generator.pt").resolve()),
        settings=dict(image_type=IMAGE_TYPE, data_type=DATA_TYPE, img_channels=NPHASE, img_size=IMG_SIZE,
                      scale_factor=SCALE_FACTOR, z_channels=Z_CHANNELS, nets="slicegan_rc_nets", isotropic=True,
                      dk=DK, ds=DS, df=DF, dp=DP, gk=GK, gs=GS, gf=GF, gp=GP, **TRAIN_CONSTANTS),
    )
    (out / "train.json").write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps({k: report[k] for k in ("stopped_by", "seconds_loading", "seconds", "iterations",
                                               "generator_updates", "seconds_per_iteration")}))


def output_size(lz: int) -> int:
    """Edge of the default generator's output for a lz^3 latent: 4 transposed convs, x2 resize, conv 3."""
    n = lz
    for _ in range(LAYS - 1):
        n = 2 * n - 2
    return 2 * (n - 1) - 2


def centre_crop(a: np.ndarray, size: int) -> np.ndarray:
    starts = [(n - size) // 2 for n in a.shape]
    return a[tuple(slice(s, s + size) for s in starts)]


def generate(args) -> None:
    import torch
    sg = import_slicegan(args.slicegan)
    pth = str(args.out / "slicegan" / PROJECT)
    ckpt = args.out / "generator.pt"
    if not ckpt.is_file() or not Path(pth + "_params.data").is_file():
        fail(f"no trained generator in {args.out} (run train first)")
    if args.threads:
        torch.set_num_threads(args.threads)
    lz = args.lz or next(n for n in range(4, 64) if output_size(n) >= args.size)
    _, gen = make_nets(sg, pth, training=False)
    net = gen()
    net.load_state_dict(torch.load(ckpt, map_location="cpu"))
    net.eval().to(args.device)
    vdir = args.out / "volumes"
    vdir.mkdir(exist_ok=True)
    seconds, fractions, raw_shape = [], [], None
    for i in range(args.num):
        t0 = time.perf_counter()
        g = torch.Generator().manual_seed(args.seed + i)
        noise = torch.randn(1, Z_CHANNELS, lz, lz, lz, generator=g).to(args.device)
        with torch.no_grad():
            raw = net(noise)
        labels = torch.argmax(raw[0], 0).cpu().numpy().astype(np.uint8)
        raw_shape = list(labels.shape)
        if min(labels.shape) < args.size:
            fail(f"the generator made {raw_shape} for lz={lz}, smaller than --size {args.size}; give a larger --lz")
        vol = np.ascontiguousarray(centre_crop(labels, args.size))
        np.save(vdir / f"{i:04d}.npy", vol)
        seconds.append(time.perf_counter() - t0)
        fractions.append(float(vol.mean()))
    report = dict(checkpoint=str(ckpt.resolve()), num=args.num, size=args.size, lz=lz, generator_output=raw_shape,
                  crop="centre" if raw_shape != [args.size] * 3 else "none", seeds=[args.seed + i for i in range(args.num)],
                  device=args.device, torch_threads=torch.get_num_threads(), seconds_per_volume=[round(s, 3) for s in seconds],
                  mean_seconds_per_volume=round(float(np.mean(seconds)), 3) if seconds else None,
                  phase1_fractions=[round(f, 4) for f in fractions])
    (args.out / "generate.json").write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps({k: report[k] for k in ("num", "generator_output", "mean_seconds_per_volume", "phase1_fractions")}))


def positive(kind):
    def parse(s):
        v = kind(s)
        if v <= 0:
            raise argparse.ArgumentTypeError(f"must be > 0, got {s}")
        return v
    return parse


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description="SliceGAN (stke9/SliceGAN) as a peer baseline: train on a binary 3D "
                                "volume for a wall-clock budget, then generate volumes.")
    sub = p.add_subparsers(dest="cmd", required=True)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--slicegan", type=Path, required=True, help="SliceGAN checkout (the folder holding slicegan/)")
    common.add_argument("--out", type=Path, required=True, help="run folder (train writes it, generate reads it)")
    common.add_argument("--threads", type=positive(int), default=None, help="torch threads (default: torch's own)")
    t = sub.add_parser("train", parents=[common], help="train SliceGAN for a fixed number of seconds")
    t.add_argument("--data", type=Path, required=True, help="segmented two-phase volume, .npy or .tif, > 64 per axis")
    t.add_argument("--seconds", type=positive(float), required=True,
                   help="wall-clock budget of the training loop (after SliceGAN's preprocessing)")
    t.add_argument("--seed", type=int, default=0, help="seed of numpy/torch/random (default 0)")
    g = sub.add_parser("generate", parents=[common], help="write volumes from the trained generator")
    g.add_argument("--num", type=positive(int), required=True, help="number of volumes")
    g.add_argument("--size", type=positive(int), default=64, help="edge of the written volumes (default 64)")
    g.add_argument("--lz", type=positive(int), default=None,
                   help="latent edge (default: the smallest >= 4 whose output covers --size; 4 gives 64^3)")
    g.add_argument("--seed", type=int, default=0, help="volume i uses seed SEED + i (default 0)")
    g.add_argument("--device", default="cpu", help="torch device for generation (default cpu; the latent is drawn on the CPU)")
    return p


def main(argv=None) -> None:
    args = parser().parse_args(argv)
    train(args) if args.cmd == "train" else generate(args)


if __name__ == "__main__":
    main()
