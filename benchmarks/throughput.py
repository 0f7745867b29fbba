"""Training images/s and seconds per sample for a preset, with the FLOP count of one forward pass.

    python benchmarks/throughput.py --preset cpu --batch-size 16 --train-steps 10 \
        --sampler dpmpp --steps 25 --guidance 2 --num-samples 16

Prints one JSON line per measurement (append them to BENCHMARKS.md with the command).
"""
from __future__ import annotations

import argparse
import json
import platform
import time

import torch
from torch.utils.flop_counter import FlopCounterMode

from microdiff.config import apply_overrides, get_preset
from microdiff.denoise.denoiser import Denoiser
from microdiff.diffusion import hybrid_loss, q_sample
from microdiff.model.network import build_unet


def forward_flops(unet, cfg, batch: int, device) -> float:
    x = torch.randn(batch, cfg.model.image_channels, cfg.model.image_size, cfg.model.image_size, device=device)
    t = torch.full((batch,), cfg.diffusion.timesteps // 2, device=device)
    y = torch.zeros(batch, dtype=torch.long, device=device)
    with torch.no_grad(), FlopCounterMode(display=False) as fc:
        Denoiser.from_config(unet, cfg, 3)(x, t, y)
    return fc.get_total_flops() / batch


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def bench_train(unet, cfg, batch, steps, device, bf16, compile_):
    opt = torch.optim.AdamW(unet.parameters(), lr=1e-4, **({"fused": True} if device.type == "cuda" else {}))
    net = torch.compile(unet) if compile_ else unet
    autocast = (lambda: torch.autocast(device.type, dtype=torch.bfloat16)) if bf16 else None
    den = Denoiser.from_config(net, cfg, 3, autocast=autocast)
    diffusion = den.diffusion
    s, c = cfg.model.image_size, cfg.model.image_channels
    x0 = torch.rand(batch, c, s, s, device=device) * 2 - 1
    y = torch.randint(0, 3, (batch,), device=device)

    def step():
        t = torch.randint(0, diffusion.num_timesteps, (batch,), device=device)
        noise = torch.randn_like(x0)
        xt = q_sample(diffusion, x0, t, noise)
        loss = hybrid_loss(diffusion, den(xt, t, y), x0, xt, t, noise)["loss"].mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    for _ in range(2 if not compile_ else 3):
        step()
    sync(device)
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    sync(device)
    dt = time.perf_counter() - t0
    return batch * steps / dt


def bench_sample(unet, cfg, sampler, steps, guidance, n, batch, device):
    from microdiff.config import SampleConfig
    from microdiff.denoise import Canvas, build_denoiser, inference_denoiser
    from microdiff.generate import iter_batches
    den = inference_denoiser(unet, cfg, 3)
    window = cfg.model.image_size
    shape = (cfg.model.image_channels, window, window)
    labels = [i % 3 for i in range(n)]

    def build(d, seeds):
        return build_denoiser(d, seeds, Canvas((window, window)), window, guidance)

    def run(k, num_steps):
        sampling = SampleConfig(sampler, num_steps, guidance, batch)
        for _ in iter_batches(den, labels[:k], list(range(k)), shape, sampling, build, device):
            pass
    run(batch, min(steps, 3))                                                                # warm-up
    sync(device)
    t0 = time.perf_counter()
    run(n, steps)
    sync(device)
    return (time.perf_counter() - t0) / n


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--preset", default="cpu")
    ap.add_argument("--set", action="append", default=[])
    ap.add_argument("--image-size", type=int)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--train-steps", type=int, default=10, help="timed training steps (0: skip)")
    ap.add_argument("--sampler", default="dpmpp")
    ap.add_argument("--steps", type=int, default=25)
    ap.add_argument("--guidance", type=float, default=2.0)
    ap.add_argument("--num-samples", type=int, default=0, help="timed samples (0: skip)")
    ap.add_argument("--sample-batch", type=int, default=16)
    ap.add_argument("--forward-only", action="store_true", help="time one forward pass at --batch-size")
    ap.add_argument("--bf16", action="store_true")
    ap.add_argument("--compile", action="store_true")
    ap.add_argument("--channels-last", action="store_true")
    ap.add_argument("--peak-tflops", type=float, default=None, help="device peak, to print the fraction reached")
    a = ap.parse_args()
    overrides = list(a.set) + ([f"model.image_size={a.image_size}"] if a.image_size else [])
    cfg = apply_overrides(get_preset(a.preset), overrides)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.allow_tf32 = True
    unet = build_unet(cfg.model, 3).to(device)
    if a.channels_last:
        unet = unet.to(memory_format=torch.channels_last)
    flops = forward_flops(unet, cfg, 1, device)
    res = {"preset": a.preset, "image_size": cfg.model.image_size, "params": sum(p.numel() for p in unet.parameters()),
           "forward_gflop_per_image": round(flops / 1e9, 2), "device": torch.cuda.get_device_name() if device.type == "cuda"
           else platform.processor() or platform.machine(), "threads": torch.get_num_threads(),
           "bf16": a.bf16, "compile": a.compile}
    if a.forward_only:
        x = torch.randn(a.batch_size, cfg.model.image_channels, cfg.model.image_size, cfg.model.image_size, device=device)
        t = torch.full((a.batch_size,), cfg.diffusion.timesteps // 2, device=device)
        y = torch.zeros(a.batch_size, dtype=torch.long, device=device)
        den = Denoiser.from_config(unet, cfg, 3)
        with torch.no_grad(), torch.autocast(device.type, dtype=torch.bfloat16, enabled=a.bf16):
            den(x, t, y)
            sync(device)
            t0 = time.perf_counter()
            den(x, t, y)
            sync(device)
        res["forward_s"] = round(time.perf_counter() - t0, 3)
        res["forward_batch"] = a.batch_size
    if a.train_steps:
        ips = bench_train(unet.train(), cfg, a.batch_size, a.train_steps, device, a.bf16, a.compile)
        res.update(train_batch=a.batch_size, train_images_per_s=round(ips, 2))
        if a.peak_tflops:
            res["train_fraction_of_peak"] = round(3 * flops * ips / (a.peak_tflops * 1e12), 3)
    if a.num_samples:
        unet.eval()
        sps = bench_sample(unet, cfg, a.sampler, a.steps, a.guidance, a.num_samples, a.sample_batch, device)
        res.update(sampler=a.sampler, steps=a.steps, guidance=a.guidance, sample_batch=a.sample_batch,
                   seconds_per_sample=round(sps, 4))
        if a.peak_tflops:
            evals = a.steps * (2 if a.guidance != 1 else 1)
            res["sample_fraction_of_peak"] = round(evals * flops / sps / (a.peak_tflops * 1e12), 3)
    print(json.dumps(res))


if __name__ == "__main__":
    main()
