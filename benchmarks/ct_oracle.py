"""Where a volume's pore connectivity is lost: the sampler walks a real cube's path down to s0,
the product of planes takes over below it (Ketton, benchmarks/ct.py's layout).

For cubes of 64^3 from the training half (``ROOT/train_volume.npy``; the corners of
``ct_denoise.py``), ``sample3d``'s sampler runs as usual except that while s = sigma / alpha > s0
the denoiser returns the cube itself as x_0, so x_t is the cube under the sampler's own noise; below
s0 the product of planes (``denoise.volume``, with ``--set`` changes) finishes the volume at the
cube's porosity. What the product keeps of the cube's pore connectivity (largest cluster, Euler
density, tau), against the cube, per s0, says at which noise levels the joining rule loses it.

    python benchmarks/ct_oracle.py --root runs/ct --cubes 3 --s0 1,3
    python benchmarks/ct_oracle.py --root runs/ct --cubes 3 --s0 3 --set EVIDENCE=0.5
"""
from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from ct_denoise import CORNERS  # noqa: E402
from ct_screen import describe, set_volume_settings  # noqa: E402


def oracle_class(base, cube: np.ndarray, s0: float):
    """A ``PlanarVolumeDenoiser`` that returns ``cube`` as x_0 while s > s0, at the cube's porosity."""
    truth = torch.from_numpy(2.0 * cube - 1).float()[None, None]

    class Oracle(base):
        def __call__(self, x, t, y):
            self.fractions = (float(cube.mean()),)
            alpha, sigma = self.coefficients(t, x)
            if float((sigma / alpha).flatten()[0]) > s0:
                self.calls += 1
                return self.output_from_x0(x, t, truth.to(x.dtype))
            return super().__call__(x, t, y)
    return Oracle


def line(name: str, ind: np.ndarray) -> str:
    d = describe(ind, ("vf", "surface", "cluster", "euler", "tau"))
    return (f"| {name} | {d['vf']:.3f} | {d['surface']:.4f} | {d['cluster']:.3f} | {d['euler']:.2g} | "
            f"{' / '.join(f'{v:.1f}' for v in d['tau'])} |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--root", type=Path, default=Path("runs/ct"))
    ap.add_argument("--run", default="run", help="the model's run folder under --root")
    ap.add_argument("--cubes", type=int, default=3)
    ap.add_argument("--s0", default="1,3", help="comma-separated noise levels sigma/alpha where the product takes over")
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--set", nargs="*", default=[], metavar="NAME=VALUE", help="denoise.volume settings")
    a = ap.parse_args()
    set_volume_settings(ap, a.set)
    import microdiff.denoise.volume as volume
    from microdiff.core.launch import keep_freed_memory
    from microdiff.generate import sample3d_to_folder
    from microdiff.generate.pipeline import load_pipeline
    keep_freed_memory()
    pipe = load_pipeline(a.root / a.run / "model")
    half = np.load(a.root / "train_volume.npy")
    base = volume.PlanarVolumeDenoiser
    head = "| pores of | porosity | S_V | largest cluster | Euler density | tau z / y / x |"
    print(f"{a.run}, {' '.join(a.set) or 'defaults'}\n\n{head}\n"
          "|---|---|---|---|---|---|")
    for k, (z, y, x) in enumerate(CORNERS[:a.cubes]):
        cube = half[z:z + 64, y:y + 64, x:x + 64]
        print(line(f"cube {k}", cube == 0), flush=True)
        for s0 in (float(v) for v in a.s0.split(",")):
            volume.PlanarVolumeDenoiser = oracle_class(base, cube, s0)
            try:
                with tempfile.TemporaryDirectory() as out:
                    sample3d_to_folder(pipe, out, class_name=pipe.class_names[0], num=1, steps=a.steps, segment="otsu",
                                       overwrite=True, show_progress=False)
                    print(line(f"cube {k}, the product below s = {s0:g}", np.load(Path(out) / "0000" / "labels.npy") == 0),
                          flush=True)
            finally:
                volume.PlanarVolumeDenoiser = base


if __name__ == "__main__":
    main()
