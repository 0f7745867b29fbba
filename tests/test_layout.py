"""Layout models (issue 25, item 5): where a crop lies in its source, as the network's condition."""
import json

import numpy as np
import pytest
import torch
from PIL import Image

from microdiff.cli.main import main
from microdiff.data.channels import load_class_images
from microdiff.data.layout import read_regions
from microdiff.data.transforms import dihedral
from microdiff.denoise.canvas import WindowedDenoiser
from microdiff.denoise.denoiser import ClassifierFreeGuidance, Denoiser
from microdiff.denoise.layout import (COMPOSE, canvas_region, coordinate_maps, layout_condition, window_conditions)
from microdiff.diffusion.schedule import Diffusion


def test_composition_table_is_the_data_transforms_group():
    a = np.arange(9.0).reshape(3, 3)
    for k1 in range(8):
        for k2 in range(8):
            assert np.array_equal(dihedral(dihedral(a, k1), k2), dihedral(a, COMPOSE[k1][k2]))


@pytest.fixture
def ramps(tmp_path):
    """Two classes of sources whose pixels hold their own row (class rows) or column (class cols)."""
    h, w = 60, 90
    r = (np.arange(h)[:, None] + 0.5) / h * np.ones((1, w))
    c = np.ones((h, 1)) * (np.arange(w)[None, :] + 0.5) / w
    for name, img in (("rows", r), ("cols", c)):
        (tmp_path / "src" / name).mkdir(parents=True)
        Image.fromarray(np.round(img * 255).astype(np.uint8)).save(tmp_path / "src" / name / "0.png")
    return tmp_path / "src"


def test_prepared_crops_sit_where_their_coordinates_say(ramps, tmp_path):
    """Crops of every size, place and dihedral element of a source that holds its own coordinates:
    the coordinate channels of each crop's recorded region and element equal its pixels."""
    out = tmp_path / "d"
    assert main(["prepare", "folder", str(ramps), "--out", str(out), "--size", "16", "--per-class", "24",
                 "--crop-fraction", "0.6"]) == 0
    images = load_class_images(out, 16)
    reg = read_regions(out, images.files, 16)
    assert set(reg.elements.tolist()) - {0} and reg.source_shape == (60, 90)      # one micrograph: crops at its own resolution
    y = layout_condition(images.labels, reg.regions, reg.elements)
    maps = (coordinate_maps(y, 16).numpy() + 1) / 2
    for i, k in enumerate(images.labels):
        channel = 0 if images.class_names[k] == "rows" else 1
        assert np.abs(maps[i, channel] - images.images[i, 0] / 255).max() < 0.02


def test_a_window_sees_its_share_of_the_canvas_coordinates():
    y = layout_condition([0, 1], [canvas_region((24, 40), (48, 80), (0.3, 0.6)), (0.0, 0.0, 1.0, 1.0)])
    canvas = coordinate_maps(y, 24, 40)
    rows0, cols0 = torch.tensor([[0, 9, 16], [0, 5, 16]]), torch.tensor([[0, 13, 32], [0, 20, 32]])
    win = coordinate_maps(window_conditions(y, rows0, cols0, 8, 24, 40), 8).view(2, 3, 3, 2, 8, 8)
    for b in range(2):
        for i in range(3):
            for j in range(3):
                r, c = int(rows0[b, i]), int(cols0[b, j])
                assert torch.allclose(win[b, i, j], canvas[b, :, r:r + 8, c:c + 8], atol=1e-12)
    centre = torch.tensor([2 * 0.3 - 1 + 1 / 48, 2 * 0.6 - 1 + 1 / 80], dtype=torch.float64)
    assert torch.allclose(canvas[0, :, 12, 20], centre, atol=1e-9)


class _RowNet(torch.nn.Module):
    """A 'network' whose epsilon is its row-coordinate input channel; it records what it was given."""
    def forward(self, x, t, class_labels=None):
        self.seen = (x.shape[1], class_labels, x[:, 1:3].clone())
        return type("Out", (), {"sample": x[:, 1:2]})()


def test_windows_laid_over_a_canvas_put_each_coordinate_where_the_canvas_has_it():
    net = _RowNet()
    den = Denoiser(net, Diffusion.from_config("linear", 50), channels=1, null_label=2, image_size=8)
    y = layout_condition([1], [(0.1, 0.2, 0.5, 0.5)])
    x, t = torch.zeros(1, 1, 24, 40, dtype=torch.float64), torch.tensor([10])
    out = WindowedDenoiser(ClassifierFreeGuidance(den, 2.0), 8, [0], overlap=0.3)(x, t, y)
    assert torch.allclose(out.eps, coordinate_maps(y, 24, 40)[:, :1], atol=1e-9)      # guided: the same map twice
    channels, labels, maps = net.seen
    assert channels == 3 and labels.shape == (maps.shape[0], 7) and set(labels[:, 0].tolist()) == {1, 2}
    first, down, across = labels[:, 1:3, None, None], labels[:, 3:5, None, None], labels[:, 5:7, None, None]
    steps = torch.arange(8, dtype=torch.float64) / 7
    rebuilt = first + down * steps.view(1, 1, 8, 1) + across * steps.view(1, 1, 1, 8)
    assert torch.allclose(rebuilt, maps, atol=1e-12)          # the frame is each window's affine map to its source


def test_the_frame_embedding_starts_silent_and_reads_turned_windows():
    """An untrained layout network's class embedding is the class label's alone; a turned window's
    frame swaps the roles of its rows and columns, and the frame rebuilds its coordinates."""
    from microdiff.config import ModelConfig
    from microdiff.denoise.layout import network_condition
    from microdiff.model.network import build_unet
    unet = build_unet(ModelConfig(image_size=8, base_channels=16, channel_mult=(1, 2), attention_resolutions=(4,),
                                  norm_groups=4, layout=True), num_classes=3)
    y = layout_condition([2, 2], [(0.1, 0.2, 0.5, 0.5)] * 2, [0, 1])
    maps = coordinate_maps(y, 8)
    cond = network_condition(y, maps)
    emb = unet.class_embedding
    assert torch.equal(emb(cond), emb.labels(torch.tensor([2, 2])))
    assert torch.allclose(cond[0, 3:5], torch.tensor([0.875, 0.0], dtype=torch.float64))     # upright: rows run down the source
    assert cond[1, 3:5].abs().argmax() == 1 and cond[1, 5:7].abs().argmax() == 0             # turned: along its columns
    steps = torch.arange(8, dtype=torch.float64) / 7
    for i in range(2):
        rebuilt = (cond[i, 1:3, None, None] + cond[i, 3:5, None, None] * steps.view(1, 8, 1)
                   + cond[i, 5:7, None, None] * steps.view(1, 1, 8))
        assert torch.allclose(rebuilt, maps[i], atol=1e-12)


def test_layout_round_trip_and_its_errors(tmp_path, capsys):
    from microdiff.data.synth import synth_fiber, synth_layers
    data = synth_layers(tmp_path / "d", size=16, per_class=40, sources=4, show_progress=False)
    sets = [f"--set={k}" for k in ["model.image_size=16", "model.base_channels=32", "model.channel_mult=1,2",
                                   "model.attention_resolutions=8", "diffusion.timesteps=50", "train.batch_size=4",
                                   "train.warmup_steps=2", "train.sample_every=0"]]
    assert main(["train", "--data", str(data), "--out", str(tmp_path / "r"), *sets, "--steps", "2", "--layout",
                 "--no-progress"]) == 0
    model = tmp_path / "r" / "model"
    recorded = json.loads((model / "microdiff.json").read_text())["config"]
    assert (recorded["train"]["lr_decay"], recorded["diffusion"]["noise_shift"]) == ("cosine", 0.8)   # --layout's
    assert main(["sample", "--model", str(model), "--out", str(tmp_path / "s"), "--num", "1", "--steps", "2"]) == 0
    rec = json.loads((tmp_path / "s" / "sample.json").read_text())
    assert rec["size"] == [48, 64] and rec["position"] is None                  # a whole source by default
    assert main(["sample", "--model", str(model), "--out", str(tmp_path / "p"), "--num", "1", "--steps", "2",
                 "--position", "0.1,0.5"]) == 0
    rec = json.loads((tmp_path / "p" / "sample.json").read_text())
    assert rec["size"] == [16, 16] and rec["position"] == [0.1, 0.5]
    capsys.readouterr()
    for args, flag in ((["--position", "1.5,0.5"], "--position"), (["--periodic"], "--periodic")):
        rc = main(["sample", "--model", str(model), "--out", str(tmp_path / "x"), "--num", "1", *args])
        err = capsys.readouterr().err.strip()
        assert rc == 2 and flag in err and len(err.splitlines()) == 1
    rc = main(["sample3d", "--model", str(model), "--out", str(tmp_path / "v")])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and "layout" in err and len(err.splitlines()) == 1
    import shutil

    from safetensors.torch import load_file, save_file
    old = tmp_path / "old_model"                     # a layout model saved with a plain class embedding
    shutil.copytree(model, old)
    weights = old / "unet" / "diffusion_pytorch_model.safetensors"
    state = {k: v for k, v in load_file(str(weights)).items() if not k.startswith("class_embedding.")}
    save_file({**state, "class_embedding.weight": torch.zeros(2, 128)}, str(weights))
    rc = main(["sample", "--model", str(old), "--out", str(tmp_path / "o"), "--num", "1", "--steps", "2"])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and "train --layout" in err and str(old) in err and len(err.splitlines()) == 1
    fibers = synth_fiber(tmp_path / "f", size=32, per_class=2, show_progress=False)
    rc = main(["train", "--data", str(fibers), "--out", str(tmp_path / "r2"), *sets, "--steps", "2", "--layout",
               "--no-progress"])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and "manifest.csv" in err and len(err.splitlines()) == 1
    assert main(["train", "--data", str(fibers), "--out", str(tmp_path / "r3"), *sets, "--steps", "2",
                 "--no-progress"]) == 0
    recorded = json.loads((tmp_path / "r3" / "model" / "microdiff.json").read_text())["config"]
    assert (recorded["train"]["lr_decay"], recorded["diffusion"]["noise_shift"]) == ("none", 0.0)
    capsys.readouterr()
    rc = main(["sample", "--model", str(tmp_path / "r3" / "model"), "--out", str(tmp_path / "y"), "--position", "0.5,0.5"])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and "--position" in err and "--layout" in err and len(err.splitlines()) == 1
