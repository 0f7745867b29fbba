"""U-Net configuration, training (resume exactness), the pipeline folder and the sample contract."""
import json

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from helpers import tiny_config, tiny_data
from microdiff.cli import main
from microdiff.config import PRESETS, load_config
from microdiff.generate.pipeline import load_pipeline
from microdiff.model.network import build_unet
from microdiff.core.seeding import sample_seed
from microdiff.generate import generate, sampling_settings
from microdiff.data.transforms import dihedral, dihedral_batch
from microdiff.train import DataOrder, train_model as train


def test_paper_unet_matches_improved_diffusion_parameter_count():
    # improved-diffusion's 256x256 U-Net, num_channels 128, 3 res blocks, attention at 16x16,
    # gray in, learned sigma out, 10 class embeddings (here: 9 classes + the null class)
    unet = build_unet(PRESETS["paper"].model, 9)
    assert sum(p.numel() for p in unet.parameters()) == 156_946_050
    cfg = unet.config
    assert cfg.out_channels == 2 and cfg.in_channels == 1
    assert cfg.block_out_channels == (128, 128, 256, 256, 512, 512)
    assert cfg.down_block_types[4] == "AttnDownBlock2D" and cfg.down_block_types.count("AttnDownBlock2D") == 1
    assert cfg.resnet_time_scale_shift == "scale_shift" and cfg.num_class_embeds == 10
    assert PRESETS["paper"].diffusion.timesteps == 4000 and PRESETS["paper"].model.learn_sigma


def test_config_overrides_and_file(tmp_path):
    f = tmp_path / "c.json"
    f.write_text(json.dumps({"train": {"lr": 3e-4}, "model": {"channel_mult": [1, 2], "attention_resolutions": [32]}}))
    cfg = load_config("cpu", f, ["train.steps=7", "ema_decay=0.5"])
    assert cfg.train.lr == 3e-4 and cfg.model.channel_mult == (1, 2) and cfg.train.steps == 7
    assert cfg.train.ema_decay == 0.5 and PRESETS["cpu"].train.ema_decay == 0.999   # presets untouched
    with pytest.raises(ValueError, match="unknown setting"):
        load_config("cpu", None, ["train.nope=1"])
    with pytest.raises(ValueError, match="not a feature-map size"):   # attention at 16 needs a third level
        load_config("cpu", None, ["model.channel_mult=1,2"])


def test_data_order_visits_every_item_once_per_epoch():
    order = DataOrder(n=10, batch_size=4, seed=3)
    seen = torch.cat([order.batch(s) for s in range(5)])      # 20 positions = 2 epochs
    assert sorted(seen[:10].tolist()) == list(range(10)) and sorted(seen[10:].tolist()) == list(range(10))
    assert not torch.equal(seen[:10], seen[10:])


def test_dihedral_group():
    x = torch.arange(9.0).view(1, 1, 3, 3).repeat(8, 1, 1, 1)
    out = dihedral_batch(x, torch.arange(8))
    assert len({tuple(o.flatten().tolist()) for o in out}) == 8
    assert torch.equal(out[1, 0], torch.rot90(x[0, 0], 1))
    assert torch.equal(out[4, 0], torch.flip(x[0, 0], dims=(-1,)))
    a = np.arange(12.0).reshape(3, 4)          # one transform: NumPy (prepare) = PyTorch (training)
    for k in range(8):
        np.testing.assert_array_equal(dihedral(a, k), dihedral(torch.from_numpy(a), k).numpy())


def _weights(run):
    ck = sorted((run / "checkpoints").iterdir())[-1]
    return load_file(ck / "unet.safetensors"), load_file(ck / "ema.safetensors")


def test_resume_continues_exactly(tmp_path):
    data = tiny_data(tmp_path / "data")
    cfg4 = tiny_config()
    train(data, tmp_path / "straight", cfg4, show_progress=False, log=lambda *a: None)
    train(data, tmp_path / "resumed", tiny_config("train.steps=2"), show_progress=False, log=lambda *a: None)
    train(data, tmp_path / "resumed", cfg4, resume=True, show_progress=False, log=lambda *a: None)
    a, ea = _weights(tmp_path / "straight")
    b, eb = _weights(tmp_path / "resumed")
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=0, atol=0)
        torch.testing.assert_close(ea[k], eb[k], rtol=0, atol=0)
    log = (tmp_path / "resumed" / "log.csv").read_text().splitlines()
    assert [r.split(",")[0] for r in log[1:]] == ["1", "2", "3", "4"]
    # the exported pipeline holds the EMA weights and the class names
    pipe = load_pipeline(tmp_path / "straight" / "model")
    assert pipe.class_names == ["FVC40", "FVC50", "FVC60"]
    sd = pipe.unet.state_dict()
    for k in ea:
        torch.testing.assert_close(sd[k], ea[k])


@pytest.fixture(scope="module", params=["cpu", "cpu-paper"])
def tiny_model(tmp_path_factory, request):
    """A tiny trained model of each recipe (EDM, the paper's): everything downstream works for both."""
    root = tmp_path_factory.mktemp("tiny")
    data = tiny_data(root / "data")
    train(data, root / "run", tiny_config("train.steps=2", preset=request.param), show_progress=False,
          log=lambda *a: None)
    return root / "run" / "model"


def test_pipeline_round_trip(tiny_model, tmp_path):
    pipe = load_pipeline(tiny_model)
    pipe.save_pretrained(tmp_path / "copy")
    again = load_pipeline(tmp_path / "copy")
    assert again.class_names == pipe.class_names
    assert again.microdiff_config == pipe.microdiff_config
    x = torch.randn(2, 1, 16, 16)
    t = torch.tensor([3.0, 700.0])
    y = torch.tensor([0, 3])
    torch.testing.assert_close(again.unet(x, t, class_labels=y).sample, pipe.unet(x, t, class_labels=y).sample)
    # a plain diffusers user loads the network alone
    from diffusers import UNet2DModel
    u = UNet2DModel.from_pretrained(tiny_model, subfolder="unet")
    assert u.config.num_class_embeds == 4


@pytest.mark.parametrize("sampler", ["dpmpp", "ancestral"])
def test_sample_independent_of_batch_size(tiny_model, sampler):
    pipe = load_pipeline(tiny_model)
    labels, seeds = [0, 1, 2, 1, 0], [11, 12, 13, 14, 15]
    one = generate(pipe, labels, seeds, sampling_settings(pipe.microdiff_config, 8, sampler, 2.0, 1))
    five = generate(pipe, labels, seeds, sampling_settings(pipe.microdiff_config, 8, sampler, 2.0, 5))
    assert one.shape == (5, 1, 16, 16) and one.min() >= 0 and one.max() <= 1
    torch.testing.assert_close(one, five, rtol=0, atol=1e-4)   # float32 BLAS, batch-shape dependent
    other = generate(pipe, [0], [99], sampling_settings(pipe.microdiff_config, 8, sampler, 2.0))
    assert (other - one[0]).abs().max() > 1e-3                  # different seed, different sample


def test_sample_cli_output_contract(tiny_model, tmp_path, capsys):
    out = tmp_path / "s"
    rc = main(["sample", "--model", str(tiny_model), "--class", "FVC50", "--class", "FVC40", "--num", "3",
               "--steps", "5", "--sampler", "ddim", "--guidance", "1.5", "--seed", "7", "--out", str(out)])
    assert rc == 0
    for c in ("FVC50", "FVC40"):
        files = sorted(p.name for p in (out / c).iterdir())
        assert files == [f"000{i}.{e}" for i in range(3) for e in ("json", "npy", "png")]
        rec = json.loads((out / c / "0002.json").read_text())
        assert rec["class"] == c and rec["index"] == 2 and rec["sampler"] == "ddim" and rec["steps"] == 5
        assert rec["seed"] == sample_seed(7, ["FVC40", "FVC50", "FVC60"].index(c), 2) and rec["size"] == [16, 16]
        arr = np.load(out / c / "0001.npy")
        assert arr.dtype == np.float32 and arr.shape == (16, 16) and 0 <= arr.min() and arr.max() <= 1
        from PIL import Image
        png = np.asarray(Image.open(out / c / "0001.png"))
        assert png.dtype == np.uint8 and np.abs(png / 255.0 - arr).max() <= 0.5 / 255 + 1e-6
    # the same sample number in another run, alone, is the same image
    out2 = tmp_path / "s2"
    main(["sample", "--model", str(tiny_model), "--class", "FVC40", "--num", "2", "--steps", "5",
          "--sampler", "ddim", "--guidance", "1.5", "--seed", "7", "--out", str(out2), "--batch-size", "1"])
    np.testing.assert_allclose(np.load(out2 / "FVC40" / "0001.npy"), np.load(out / "FVC40" / "0001.npy"), atol=1e-4)
    assert sample_seed(7, 0, 1) != sample_seed(7, 1, 1)
    # the Python pipeline call gives the CLI's images for the same seed
    pipe = load_pipeline(tiny_model)
    imgs = pipe(["FVC50"], num=2, steps=5, sampler="ddim", guidance=1.5, seed=7)
    np.testing.assert_allclose(imgs[1, 0].numpy(), np.load(out / "FVC50" / "0001.npy"), atol=1e-4)


def test_user_errors_are_one_line(tiny_model, tmp_path, capsys):
    def err(args):
        rc = main(args)
        msg = capsys.readouterr().err.strip()
        assert rc == 2 and "\n" not in msg and "Traceback" not in msg
        return msg
    assert "does not exist" in err(["train", "--data", str(tmp_path / "nope"), "--out", str(tmp_path / "r")])
    assert "FVC99" in err(["sample", "--model", str(tiny_model), "--class", "FVC99", "--out", str(tmp_path / "x")])
    assert "not a microdiff model" in err(["sample", "--model", str(tmp_path), "--out", str(tmp_path / "x")])
    run = tiny_model.parent
    m = err(["train", "--data", str(run.parent / "data"), "--out", str(run)])
    assert "--resume" in m and "--overwrite" in m
    empty = tmp_path / "empty" / "cls"
    empty.mkdir(parents=True)
    assert "have no images" in err(["train", "--data", str(empty.parent), "--out", str(tmp_path / "r2")])
    # resumed with the other recipe's preset (a cpu run from before issue 14, say): the settings
    # that differ are named, nothing is written
    tiny_sets = sum((["--set", s] for s in __import__("helpers").TINY), [])
    other = "cpu-paper" if load_pipeline(tiny_model).microdiff_config.diffusion.recipe == "edm" else "cpu"
    before = sorted(p.name for p in run.rglob("*"))
    m = err(["train", "--data", str(run.parent / "data"), "--out", str(run), "--resume", "--preset", other, *tiny_sets])
    assert "diffusion.recipe" in m and "model.learn_sigma" in m and "--preset cpu-paper" in m
    assert sorted(p.name for p in run.rglob("*")) == before
    # a corrupt checkpoint: clear message, the run folder is left as it was
    ck = sorted((run / "checkpoints").iterdir())[-1]
    (ck / "unet.safetensors").write_bytes(b"garbage")
    before = sorted(p.name for p in run.rglob("*"))
    data = tiny_model.parent.parent / "data"
    assert "unreadable" in err(["train", "--data", str(data), "--out", str(run), "--resume",
                                *sum((["--set", s] for s in __import__("helpers").TINY), [])])
    assert sorted(p.name for p in run.rglob("*")) == before


def test_skip_alone_samples_its_gaussian(tiny_model):
    """With the network's output zeroed, the denoiser is its skip alone: the paper recipe's
    eps_skip, or EDM's c_skip x. Both are the exact denoiser of N(0, 0.5^2) data, so the whole
    sampling path (timestep mapping and preconditioning included) must produce that distribution."""
    from scipy import stats
    pipe = load_pipeline(tiny_model)
    cfg = pipe.microdiff_config
    if cfg.diffusion.recipe == "edm":
        assert cfg.diffusion.recipe_spec.sigma_data == 0.5 and cfg.model.eps_skip_sigma == 0
    else:
        assert cfg.model.eps_skip_sigma == 0.5
    torch.nn.init.zeros_(pipe.unet.conv_out.weight)
    torch.nn.init.zeros_(pipe.unet.conv_out.bias)
    import dataclasses
    sampling = dataclasses.replace(sampling_settings(cfg, 25, "dpmpp", 1.0), clip_denoised=False)
    x = generate(pipe, [0] * 16, list(range(16)), sampling)                            # 4096 pixels
    z = x.double() * 2 - 1                                                              # back to [-1, 1]
    # N(0, 0.25) clamped to [-1, 1] at the end: mean 0; variance = inside part + mass at +-1
    p_out = 2 * stats.norm.sf(2)
    std_ref = float(np.sqrt(stats.truncnorm(-2, 2, scale=0.5).var() * (1 - p_out) + p_out * 1.0))
    assert float(z.mean()) == pytest.approx(0.0, abs=0.03)
    assert float(z.std()) == pytest.approx(std_ref, rel=0.04)
