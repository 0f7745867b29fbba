"""Real 2-process CPU runs (gloo, via torchrun): data sharding, equivalence with one process,
resume with another process count, and distributed sampling."""
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from helpers import TINY, tiny_config, tiny_data
from microdiff.train import train_model as train

pytestmark = pytest.mark.slow


def _cli(*args, cwd=None):
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env.pop("WORLD_SIZE", None)
    res = subprocess.run([sys.executable, "-m", "microdiff", *map(str, args)], capture_output=True, text=True,
                         env=env, cwd=cwd, timeout=600)
    return res


def _sets(*extra):
    return sum((["--set", s] for s in TINY + list(extra)), [])


def _last_ckpt(run):
    ck = sorted((run / "checkpoints").iterdir())[-1]
    return ck.name, load_file(ck / "unet.safetensors")


@pytest.fixture(scope="module")
def two_proc(tmp_path_factory):
    root = tmp_path_factory.mktemp("dist")
    data = tiny_data(root / "data", per_class=4)                      # 12 images
    res = _cli("train", "--data", data, "--out", root / "run2", "--num-processes", 2, "--no-progress",
               *_sets("train.steps=6", "train.audit_order=true", "train.checkpoint_every=3"))
    assert res.returncode == 0, res.stderr[-3000:]
    return root, data


def test_every_sample_seen_once_per_epoch_across_processes(two_proc):
    root, _ = two_proc
    seen = {}
    for r in (0, 1):
        for line in (root / "run2" / "order" / f"rank{r}.csv").read_text().splitlines():
            step, *idx = map(int, line.split(","))
            seen.setdefault(step, []).extend((r, i) for i in idx)
    assert sorted(seen) == list(range(6))
    assert all(len(v) == 4 and {r for r, _ in v} == {0, 1} for v in seen.values())   # 2 per process per step
    flat = [i for s in range(6) for _, i in sorted(seen[s])]
    for epoch in range(2):                                     # 6 steps x 4 = 24 = 2 epochs of 12
        assert sorted(flat[12 * epoch:12 * (epoch + 1)]) == list(range(12))
    assert not (root / "run2" / "order" / "rank1.csv").read_text() == (root / "run2" / "order" / "rank0.csv").read_text()


def test_two_processes_equal_one_process_and_accumulation(two_proc):
    root, data = two_proc
    quiet = dict(show_progress=False, log=lambda *a: None)
    train(data, root / "run1", tiny_config("train.steps=6", "train.checkpoint_every=3"), **quiet)
    train(data, root / "acc2", tiny_config("train.steps=6", "train.checkpoint_every=3", "train.grad_accum=2"), **quiet)
    n1, w1 = _last_ckpt(root / "run1")
    n2, w2 = _last_ckpt(root / "run2")
    na, wa = _last_ckpt(root / "acc2")
    assert n1 == n2 == na == "step_0000006"                    # the same number of optimizer steps
    # the same global-batch losses at every step (logged as the mean over processes)
    losses = [np.loadtxt(root / r / "log.csv", delimiter=",", skiprows=1)[:, 1] for r in ("run1", "run2", "acc2")]
    np.testing.assert_allclose(losses[1], losses[0], rtol=1e-3)
    np.testing.assert_allclose(losses[2], losses[0], rtol=1e-5)
    # the same weights, up to float32 summation order; Adam divides by sqrt(v) + eps, which turns
    # round-off in near-zero gradients into steps of up to ~lr, so a few elements differ by ~1e-4
    for w in (w2, wa):
        diff = torch.cat([(w[k] - w1[k]).abs().flatten() for k in w1])
        assert float(diff.max()) < 2e-3 and float((diff > 1e-5).float().mean()) < 0.01, float(diff.max())
    # only the main process wrote logs and the model
    assert (root / "run2" / "model" / "microdiff.json").is_file()
    assert len((root / "run2" / "log.csv").read_text().splitlines()) == 7


def test_resume_with_one_process(two_proc):
    root, data = two_proc
    res = _cli("train", "--data", data, "--out", root / "run2", "--resume", "--no-progress",
               *_sets("train.steps=8", "train.checkpoint_every=3"))
    assert res.returncode == 0, res.stderr[-3000:]
    name, w = _last_ckpt(root / "run2")
    assert name == "step_0000008"
    # equals a single-process run of 8 steps straight
    train(data, root / "run1_8", tiny_config("train.steps=8"), show_progress=False, log=lambda *a: None)
    _, ref = _last_ckpt(root / "run1_8")
    diff = torch.cat([(w[k] - ref[k]).abs().flatten() for k in ref])
    assert float(diff.max()) < 2e-3 and float((diff > 1e-5).float().mean()) < 0.01


def test_two_process_sampling_equals_one_process(two_proc):
    root, _ = two_proc
    model = root / "run2" / "model"
    common = ["sample", "--model", model, "--num", 3, "--steps", 4, "--sampler", "ancestral", "--seed", 5]
    r1 = _cli(*common, "--out", root / "s1")
    r2 = _cli(*common, "--out", root / "s2", "--num-processes", 2)
    assert r1.returncode == 0 and r2.returncode == 0, r2.stderr[-3000:]
    f1 = sorted(p.relative_to(root / "s1") for p in (root / "s1").rglob("*.npy"))
    f2 = sorted(p.relative_to(root / "s2") for p in (root / "s2").rglob("*.npy"))
    assert f1 == f2 and len(f1) == 9
    for f in f1:
        np.testing.assert_allclose(np.load(root / "s2" / f), np.load(root / "s1" / f), atol=1e-4)
    r = _cli(*common, "--out", root / "s3", "--num-processes", 4)
    assert r.returncode == 2 and "at most 3 processes" in r.stderr
