"""The product of planes as a 3D denoiser, scored on real 3D data (Ketton, benchmarks/ct.py's layout).

Cubes of 64^3 from the training half (``ROOT/train_volume.npy``; never the truth cubes) are
noised to x_t at each timestep, the model's three planes predict x_0 (``PlanarVolumeDenoiser.along``),
and the product's rule x0 = ref + lam * sum_a G_W (x0_a - ref) (``product_x0``; ref: the voxel's
own marginal denoiser) is rank-mapped onto the planes' pooled x0 (what 2D samples' levels are at
that step) and scored by its mean squared error against the clean cube: the loss a 3D denoiser
minimises, so the (lam, W) with the lowest error is the best of the family at that noise level.
The default rule is lam = EVIDENCE, W = NORMAL_STD s^2 / (s^2 + NORMAL_FADE^2), s = sigma / alpha.

    python benchmarks/ct_denoise.py --root runs/ct --cubes 6
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

CORNERS = ((0, 0, 0), (64, 64, 128), (0, 128, 64), (64, 192, 192), (0, 64, 192), (64, 0, 64))
LAMS = (0.33, 0.5, 0.7, 1.0, 1.5)
WIDTHS = (0.0, 0.5, 1.0, 1.5, 2.0, 3.0)


def rule_errors(x, xt, x0s, alpha, sigma, prior) -> np.ndarray:
    """(len(LAMS), len(WIDTHS)): the rank-mapped rule's mean squared error against x."""
    from microdiff.denoise.volume import marginal_denoiser, rank_map, smooth_along
    ref = marginal_denoiser(xt, alpha, sigma, prior.values, prior.weights)
    levels = torch.cat(x0s).flatten().sort().values
    out = np.zeros((len(LAMS), len(WIDTHS)))
    for j, w in enumerate(WIDTHS):
        evidence = sum(smooth_along(xa - ref, a, w) for a, xa in enumerate(x0s))
        for i, lam in enumerate(LAMS):
            out[i, j] = float(((rank_map(ref + lam * evidence, levels) - x) ** 2).mean())
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--root", type=Path, default=Path("runs/ct"))
    ap.add_argument("--run", default="run", help="the model's run folder under --root")
    ap.add_argument("--cubes", type=int, default=6, help=f"training-half cubes scored (at most {len(CORNERS)})")
    ap.add_argument("--timesteps", default="50,100,200,300,400,500,600,700,800,900")
    a = ap.parse_args()
    from microdiff.denoise import volume as V
    from microdiff.denoise.canvas import Canvas
    from microdiff.denoise.denoiser import inference_denoiser
    from microdiff.denoise.stack import Planes, build_denoiser
    from microdiff.generate.pipeline import load_pipeline
    pipe = load_pipeline(a.root / a.run / "model")
    half = np.load(a.root / "train_volume.npy")
    cubes = [half[z:z + 64, y:y + 64, x:x + 64] for z, y, x in CORNERS[:a.cubes]]
    porosity = float((half == 0).mean())
    prior = V.VoxelPrior(torch.tensor([-1.0, 1.0]), torch.tensor([porosity, 1 - porosity]))
    planes = build_denoiser(inference_denoiser(pipe.unet, pipe.microdiff_config, 1), [0], Canvas.of(64, 64, ndim=3),
                            64, planes=Planes(mode="product", prior=prior))
    y, gen = torch.zeros(1, 3, dtype=torch.long), torch.Generator().manual_seed(0)
    print("| t | s = sigma/alpha | best lam, W | its MSE | default rule's MSE (W) | MSE at lam 1 by W " +
          "/".join(map(str, WIDTHS)) + " |\n|---|---|---|---|---|---|")
    for t in (int(v) for v in a.timesteps.split(",")):
        tt, err = torch.tensor([t]), 0
        for c in cubes:
            x = torch.from_numpy(2.0 * c - 1).float()[None, None]
            alpha, sigma = planes.coefficients(tt, x)
            xt = alpha * x + sigma * torch.randn(x.shape, generator=gen)
            with torch.no_grad():
                x0s = [planes.along(ax, xt, tt, y).x0 for ax in range(3)]
            err = err + rule_errors(x, xt, x0s, alpha, sigma, prior) / len(cubes)
        s = float(sigma / alpha)
        w_now = V.NORMAL_STD * s * s / (s * s + V.NORMAL_FADE ** 2)
        now = np.interp(w_now, WIDTHS, err[LAMS.index(V.EVIDENCE)])
        i, j = np.unravel_index(err.argmin(), err.shape)
        print(f"| {t} | {s:.2f} | {LAMS[i]}, {WIDTHS[j]} | {err.min():.4g} | {now:.4g} ({w_now:.2f}) | "
              + " / ".join(f"{v:.4g}" for v in err[LAMS.index(1.0)]) + " |", flush=True)


if __name__ == "__main__":
    main()
