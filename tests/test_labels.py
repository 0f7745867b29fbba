"""Segmented (phase-label) and colour data through the pipeline: prepare keeps ids exact, K-phase
models train on one-hot channels and write label maps, inpainting keeps known labels, volumes
are label volumes, colour stays three channels; bad inputs stop with one line."""
import json

import numpy as np
import pytest
import torch
from PIL import Image

from helpers import tiny_config
from microdiff.cli import main
from microdiff.data.channels import class_shares, data_encoding, load_class_images, resample_labels, value_counts
from microdiff.data.dataset import read_manifest
from microdiff.data.encoding import Encoding, argmax_labels, levels_to_labels, probabilities
from microdiff.data.io import read_label_stack
from microdiff.data.prepare import PrepareSettings, prepare_folder
from microdiff.data.transforms import DIHEDRAL_NAMES, dihedral
from microdiff.generate.pipeline import load_pipeline
from microdiff.train import train_model as train

Q = dict(show_progress=False)


def _three_phase(rng, n=96):
    from scipy import ndimage as ndi
    f = ndi.gaussian_filter(rng.standard_normal((n, n)), 3, mode="wrap")
    return np.digitize(f, np.quantile(f, [0.45, 0.7])).astype(np.uint8)      # 0, 1, 2


@pytest.fixture(scope="module")
def label_set(tmp_path_factory):
    root = tmp_path_factory.mktemp("labels")
    rng = np.random.default_rng(3)
    for c in ("a", "b"):
        (root / "src" / c).mkdir(parents=True)
        for i in range(3):
            np.save(root / "src" / c / f"m{i}.npy", _three_phase(rng))
    out = prepare_folder(root / "src", root / "data", PrepareSettings(size=16, per_class=60, channels="labels",
                                                                      crop_size=24), **Q).out
    return root, out


@pytest.fixture(scope="module")
def phase_model(label_set):
    root, data = label_set
    train(data, root / "run", tiny_config("train.steps=2"), show_progress=False, log=lambda *a: None)
    return root / "run" / "model"


def test_encoding_one_hot_round_trip_and_probabilities():
    ids = torch.from_numpy(np.random.default_rng(0).integers(0, 4, (2, 1, 8, 8)).astype(np.uint8))
    enc = Encoding("phases", 4)
    x = enc.encode(ids)
    assert x.shape == (2, 4, 8, 8) and set(x.unique().tolist()) == {-1.0, 1.0}
    unit = ((x + 1) / 2).numpy()
    assert (argmax_labels(unit, axis=1) == ids[:, 0].numpy()).all()
    p = probabilities(np.random.default_rng(1).random((3, 5, 5)))
    np.testing.assert_allclose(p.sum(0), 1, rtol=1e-6)
    assert (probabilities(np.zeros((4, 2, 2))) == 0.25).all()              # no evidence: uniform
    # the label PNG levels round(255 k / (K - 1)) decode exactly, other levels are refused
    levels = np.rint(255 * np.arange(5) / 4).astype(np.uint8)
    assert (levels_to_labels(levels, 5) == np.arange(5)).all()
    with pytest.raises(Exception, match="not one of the 5 phase levels"):
        levels_to_labels(np.array([1], np.uint8), 5)


def test_prepare_keeps_label_ids_exact_through_crops_and_transforms(label_set):
    root, data = label_set
    meta = json.loads((data / "dataset.json").read_text())
    assert meta["phases"] == 3 and meta["channels"] == "labels"
    assert data_encoding(data) == Encoding("phases", 3)
    rows = read_manifest(data)
    assert len(rows) == 120 and all(r["file"].endswith("_labels.png") for r in rows)
    assert {r["transform"] for r in rows} - {"identity"}, "augmented crops are turned and mirrored"
    for r in rows:
        src = np.load(r["source"])
        t, l_, s = int(r["crop_top"]), int(r["crop_left"]), int(r["crop_size"])
        want = resample_labels(dihedral(src[t:t + s, l_:l_ + s], DIHEDRAL_NAMES.index(r["transform"])), 16)
        got = read_label_stack([data / r["file"]], 3)[0]
        assert (got == want).all(), r["file"]
    # a map that lacks a phase still decodes with the data set's K (levels 0 and 255 are 0 and 2)
    assert set(np.unique(read_label_stack([data / r["file"] for r in rows]))) <= {0, 1, 2}
    s = load_class_images(data, 16)
    assert s.images.shape == (120, 1, 16, 16) and s.encoding.phases == 3


def test_phase_model_trains_on_one_hot_channels_and_writes_label_maps(phase_model, tmp_path):
    pipe = load_pipeline(phase_model)
    m = pipe.microdiff_config.model
    assert (m.phases, m.image_channels) == (3, 3) and pipe.encoding == Encoding("phases", 3)
    assert main(["sample", "--model", str(phase_model), "--num", "2", "--steps", "3", "--size", "24", "--periodic",
                 "--out", str(tmp_path / "s")]) == 0
    d = tmp_path / "s" / "a"
    lab = np.load(d / "0000_labels.npy")
    probs = np.load(d / "0000_probs.npy").astype(np.float32)
    assert lab.shape == (24, 24) and lab.dtype == np.uint8 and lab.max() <= 2
    assert probs.shape == (3, 24, 24)
    np.testing.assert_allclose(probs.sum(0), 1, atol=2e-3)
    assert (np.argmax(probs, 0) == lab).mean() > 0.99                         # float16 ties aside
    assert np.asarray(Image.open(d / "0000.png")).shape == (24, 24, 3)        # colour-mapped for people
    assert (read_label_stack([d / "0000_labels.png"], 3)[0] == lab).all()
    rec = json.loads((d / "0000.json").read_text())
    np.testing.assert_allclose(rec["phase_fractions"], np.bincount(lab.ravel(), minlength=3) / lab.size, atol=1e-6)
    # --segment is for gray models
    assert main(["sample", "--model", str(phase_model), "--num", "1", "--steps", "2", "--segment", "otsu",
                 "--out", str(tmp_path / "t")]) == 2


def test_inpainting_a_phase_model_keeps_the_known_labels(phase_model, tmp_path):
    rng = np.random.default_rng(5)
    known = _three_phase(rng, 24)
    np.save(tmp_path / "known.npy", known)
    mask = np.zeros((24, 24), np.uint8)
    mask[6:18, 6:18] = 255
    Image.fromarray(mask).save(tmp_path / "mask.png")
    assert main(["inpaint", "--model", str(phase_model), "--class", "b", "--image", str(tmp_path / "known.npy"),
                 "--mask", str(tmp_path / "mask.png"), "--num", "2", "--steps", "3", "--out", str(tmp_path / "i")]) == 0
    for k in range(2):
        lab = np.load(tmp_path / "i" / "b" / f"{k:04d}_labels.npy")
        outside = mask == 0
        assert (lab[outside] == known[outside]).all()
    np.save(tmp_path / "bad.npy", np.full((24, 24), 3, np.uint8))                 # phase 3 of a 3-phase model
    assert main(["inpaint", "--model", str(phase_model), "--class", "b", "--image", str(tmp_path / "bad.npy"),
                 "--mask", str(tmp_path / "mask.png"), "--out", str(tmp_path / "j")]) == 2


def test_phase_model_volumes_are_label_volumes(phase_model, tmp_path):
    assert main(["sample3d", "--model", str(phase_model), "--class", "a", "--num", "1", "--steps", "2",
                 "--out", str(tmp_path / "v"), "--abaqus"]) == 0
    v = tmp_path / "v" / "0000"
    lab = np.load(v / "labels.npy")
    probs = np.load(v / "probs.npy").astype(np.float32)
    assert lab.shape == (16, 16, 16) and lab.max() <= 2 and probs.shape == (3, 16, 16, 16)
    rec = json.loads((v / "volume.json").read_text())
    prior = rec["phase_prior"]["fractions"]
    assert rec["phases"] == 3 and len(prior) == 3 and abs(sum(prior) - 1) < 1e-5
    ids = load_class_images(phase_model.parent.parent / "data", 16)           # the training images of class a
    want = np.bincount(ids.images[ids.labels == 0].ravel(), minlength=3) / ids.images[ids.labels == 0].size
    assert rec["phase_prior"]["from"] == "training data"
    np.testing.assert_allclose(prior, want, atol=1e-6)                         # the data's shares, not the samples'
    np.testing.assert_allclose(rec["phase_fractions"], np.bincount(lab.ravel(), minlength=3) / lab.size, atol=1e-6)
    np.testing.assert_allclose(rec["phase_fractions"], prior, atol=3 / lab.size + 1e-5)    # the labels' shares fixed
    assert (np.argmax(probs, 0) == lab).mean() > 0.99
    assert (v / "labels.inp").is_file()
    assert main(["sample3d", "--model", str(phase_model), "--class", "a", "--fractions", "scatter",
                 "--out", str(tmp_path / "w")]) == 2


def test_a_model_keeps_its_training_datas_value_counts(phase_model, tmp_path):
    """The model folder keeps each class's phase-id counts of its training images (what volumes
    take their shares from), through checkpoints and the saved folder; a corrupt entry is one line."""
    from microdiff.core.errors import ModelDirError
    from microdiff.train.runs import checkpoint_pipeline
    from microdiff.model.checkpoint import list_checkpoints
    ids = load_class_images(phase_model.parent.parent / "data", 16)
    want = value_counts(ids)
    pipe = load_pipeline(phase_model)
    assert pipe.data_statistics == want and want["kind"] == "phases"
    for i, c in enumerate(ids.class_names):
        assert want["counts"][c] == np.bincount(ids.images[ids.labels == i].ravel(), minlength=3).tolist()
    assert checkpoint_pipeline(list_checkpoints(phase_model.parent)[-1]).data_statistics == want
    a, b = (np.asarray(want["counts"][c], float) for c in ("a", "b"))
    np.testing.assert_allclose(class_shares(want, ["a", "b", "b"]), (a / a.sum() + 2 * b / b.sum()) / 3)
    assert class_shares(None, ["a"]) is None
    meta = json.loads((phase_model / "microdiff.json").read_text())
    meta["data_statistics"]["counts"]["a"] = [1, 2]                           # 2 counts for 3 phases
    bad = tmp_path / "model"
    import shutil
    shutil.copytree(phase_model, bad)
    (bad / "microdiff.json").write_text(json.dumps(meta))
    with pytest.raises(ModelDirError, match="data_statistics is corrupt.*expected 3"):
        load_pipeline(bad)


def test_phase_product_combines_the_planes_and_fixes_each_phases_share():
    from microdiff.denoise.volume import phase_product
    p = torch.softmax(torch.randn(1, 3, 4, 4, 4), 1)
    x0 = 2 * p - 1
    torch.testing.assert_close(phase_product([x0] * 3), x0, atol=1e-4, rtol=0)   # planes that agree
    sure = -torch.ones_like(x0)
    sure[:, 2] = 1
    flat = torch.zeros_like(x0) - 1 / 3                                        # p = 1/3 each
    assert (phase_product([sure, flat, flat]).argmax(1) == 2).all()            # one sure plane, two unsure
    # with the fractions given, every volume's mean probabilities are those fractions
    from microdiff.denoise.shares import match_fractions
    logp = torch.randn(2, 3, 6, 6, 6, dtype=torch.float64) * 3
    want = torch.tensor([0.5, 0.13, 0.37])
    got = torch.softmax(match_fractions(logp, want), 1).mean((2, 3, 4))
    torch.testing.assert_close(got, want.double().expand(2, 3), atol=1e-5, rtol=0)
    kept = match_fractions(logp, want).argmax(1) == logp.argmax(1)
    assert kept.double().mean() > 0.3                                       # the evidence's order is kept


def test_phase_product_smooths_each_planes_log_p_along_its_normal():
    from microdiff.denoise.volume import phase_product, smooth_along
    g = torch.Generator().manual_seed(0)
    logp = [torch.log_softmax(torch.randn(2, 3, 6, 5, 7, generator=g, dtype=torch.float64), 1) for _ in range(3)]
    planes = [2 * lp.exp() - 1 for lp in logp]
    # log p = (1/3) sum_a G_a log p_a: by hand, with the shares then fixed as without smoothing
    want = sum(smooth_along(lp, a, 1.0) for a, lp in enumerate(logp)) / 3
    torch.testing.assert_close(phase_product(planes, floor=0, normal_std=1.0), 2 * torch.softmax(want, 1) - 1)
    assert torch.equal(phase_product(planes, normal_std=0.0), phase_product(planes))    # width 0: the geometric mean
    # a plane constant along its own normal is left as it is
    flat = [torch.log_softmax(torch.randn(2, 3, 1, 5, 7, generator=g, dtype=torch.float64), 1).expand(2, 3, 6, 5, 7)]
    one = [2 * flat[0].exp() - 1, planes[1], planes[2]]
    by_hand = (flat[0] + smooth_along(logp[1], 1, 1.5) + smooth_along(logp[2], 2, 1.5)) / 3
    torch.testing.assert_close(phase_product(one, floor=0, normal_std=1.5), 2 * torch.softmax(by_hand, 1) - 1)
    # a single voxel where one plane is sure of a phase the others are not: the sure plane's evidence
    # spreads along its normal, so the voxel is no longer decided alone
    sure = torch.full((1, 3, 9, 3, 3), 1 / 3, dtype=torch.float64)
    sure[0, :, 4, 1, 1] = torch.tensor([0.01, 0.01, 0.98])
    x = [2 * sure - 1, torch.full_like(sure, -1 / 3), torch.full_like(sure, -1 / 3)]
    sharp, smooth = phase_product(x), phase_product(x, normal_std=1.0)
    assert float(smooth[0, 2, 4, 1, 1]) < float(sharp[0, 2, 4, 1, 1]) and float(smooth[0, 2, 3, 1, 1]) > float(sharp[0, 2, 3, 1, 1])


def test_match_label_shares_fixes_each_phases_share_of_the_arg_max_labels():
    from microdiff.denoise.shares import match_label_shares
    from microdiff.generate.volumes import label_shares_fixed
    g = torch.Generator().manual_seed(3)
    # two phases: the closed form is a threshold on the log-odds, the round(f N) largest win
    logp = torch.randn(1, 2, 10, 10, 10, generator=g, dtype=torch.float64)
    labels = match_label_shares(logp, torch.tensor([0.7, 0.3])).argmax(1).flatten()
    top = (logp[0, 1] - logp[0, 0]).flatten().argsort(descending=True)[:300]
    assert int(labels.sum()) == 300 and bool(labels[top].all())
    # three phases, each volume its own offsets: every share to within one voxel per phase
    logp = torch.randn(2, 3, 12, 12, 12, generator=g, dtype=torch.float64) * 2
    logp[1, 0] += 3                                                  # the second volume mostly phase 0
    want = torch.tensor([0.46, 0.13, 0.41])
    shares = torch.stack([(match_label_shares(logp, want).argmax(1) == k).double().mean((1, 2, 3)) for k in range(3)], 1)
    torch.testing.assert_close(shares, want.double().expand(2, 3), atol=3 / 12 ** 3, rtol=0)
    # labels whose shares are already the fractions stay as they are (to the few voxels of the tolerance)
    made = match_label_shares(logp, want)
    assert int((match_label_shares(made, want).argmax(1) != made.argmax(1)).sum()) <= 2 * 3
    # finished volumes (probabilities): the same labels, returned as probabilities summing to 1
    probs = torch.softmax(logp, 1).float()
    fixed = label_shares_fixed(probs, want)
    torch.testing.assert_close(fixed.sum(1), torch.ones(2, 12, 12, 12), atol=1e-5, rtol=0)
    assert torch.equal(fixed.argmax(1), match_label_shares(torch.log(probs.double()), want).argmax(1))


def test_colour_round_trip(tmp_path):
    rng = np.random.default_rng(2)
    for c in ("red", "blue"):
        (tmp_path / "src" / c).mkdir(parents=True)
        for i in range(2):
            img = (rng.random((20, 20, 3)) * 60).astype(np.uint8)
            img[..., 0 if c == "red" else 2] += 180
            Image.fromarray(img).save(tmp_path / "src" / c / f"{i}.png")
    data = prepare_folder(tmp_path / "src", tmp_path / "data", PrepareSettings(size=16, channels="color"), **Q).out
    assert json.loads((data / "dataset.json").read_text())["color"] is True
    s = load_class_images(data, 16)
    assert s.images.shape == (4, 3, 16, 16) and s.encoding == Encoding("rgb")
    red = s.images[s.labels == s.class_names.index("red")]
    assert red[:, 0].mean() > red[:, 2].mean() + 100                           # channels kept in order
    train(data, tmp_path / "run", tiny_config("train.steps=1"), show_progress=False, log=lambda *a: None)
    pipe = load_pipeline(tmp_path / "run" / "model")
    assert pipe.microdiff_config.model.image_channels == 3 and pipe.encoding == Encoding("rgb")
    assert main(["sample", "--model", str(tmp_path / "run" / "model"), "--num", "1", "--steps", "2",
                 "--out", str(tmp_path / "s")]) == 0
    assert np.asarray(Image.open(tmp_path / "s" / "red" / "0000.png")).shape == (16, 16, 3)
    # evaluate reads colour samples and training images by their luminance
    assert main(["evaluate", "--generated", str(tmp_path / "s"), "--train", str(data), "--no-fid", "--descriptors",
                 "S,px", "--limit-to", "8", "--out", str(tmp_path / "ev")]) == 0
    assert "red" in (tmp_path / "ev" / "metrics.csv").read_text()


def _err(capsys, args):
    rc = main(args)
    msg = capsys.readouterr().err.strip()
    assert rc == 2 and "Traceback" not in msg and "\n" not in msg, msg
    return msg


def test_bad_label_inputs_stop_with_one_line(tmp_path, capsys):
    def folder(name, arrays):
        for c, arrs in arrays.items():
            (tmp_path / name / c).mkdir(parents=True)
            for i, a in enumerate(arrs):
                np.save(tmp_path / name / c / f"{i}.npy", a) if isinstance(a, np.ndarray) else a.save(
                    tmp_path / name / c / f"{i}.png")
        return str(tmp_path / name)
    base = ["--size", "16", "--labels", "--no-progress", "--strict"]
    big = folder("big", {"a": [np.full((40, 40), 300, np.int16)]})
    assert "0..255" in _err(capsys, ["prepare", "folder", big, "--out", str(tmp_path / "o1"), *base])
    flt = folder("flt", {"a": [np.random.default_rng(0).random((40, 40))]})
    assert "integer" in _err(capsys, ["prepare", "folder", flt, "--out", str(tmp_path / "o2"), *base])
    photo = Image.fromarray((np.random.default_rng(1).random((40, 40)) * 255).astype(np.uint8))
    ph = folder("photo", {"a": [photo]})
    assert "not a label map" in _err(capsys, ["prepare", "folder", ph, "--out", str(tmp_path / "o3"), *base])
    two = np.zeros((40, 40), np.uint8)
    two[:, 20:] = 1
    three = two.copy()
    three[:10] = 2
    mixed = folder("mixed", {"a": [two], "b": [three]})
    assert "different phase counts" in _err(capsys, ["prepare", "folder", mixed, "--out", str(tmp_path / "o4"),
                                                     *base])
    assert not any((tmp_path / f"o{i}").exists() for i in range(1, 5))


def test_one_micrograph_becomes_crops_at_its_own_resolution(tmp_path):
    (tmp_path / "src" / "only").mkdir(parents=True)
    img = _three_phase(np.random.default_rng(4), 80)
    np.save(tmp_path / "src" / "only" / "m.npy", img)
    res = prepare_folder(tmp_path / "src", tmp_path / "data", PrepareSettings(size=16, channels="labels"), **Q)
    assert res.counts["only"].total == 500 and res.counts["only"].originals == 25       # 5 x 5 tiles, then crops
    rows = read_manifest(res.out)
    assert {int(r["crop_size"]) for r in rows} == {16}                                  # nothing resampled
    assert any("one micrograph" in n for n in res.report.notes)
    assert {r["transform"] for r in rows} == set(DIHEDRAL_NAMES)                        # every turn by default
    # a micrograph with a direction: mirrors and half turns only, and training follows (flips)
    from microdiff.config import get_preset
    from microdiff.train.runs import adopt_orientation
    kept = prepare_folder(tmp_path / "src", tmp_path / "kept", PrepareSettings(size=16, channels="labels",
                                                                               keep_orientation=True), **Q)
    turns = {r["transform"] for r in read_manifest(kept.out)}
    assert turns == {"identity", "rot180", "flip", "rot180+flip"}
    meta = json.loads((kept.out / "dataset.json").read_text())
    assert meta["orientation"] == "fixed" and "half turn" in meta["crop_policy"]["augmented"]
    assert adopt_orientation(get_preset("cpu"), kept.out)[0].train.augment == "flips"
    assert "orientation" not in json.loads((res.out / "dataset.json").read_text())


def test_targets_of_a_phase_model_name_its_phase_ids(phase_model, tmp_path, capsys):
    """On a phase model a target is of a phase id: its soft field is that phase's probability, the
    value achieved is the share of the arg-max labels written; a missing or unknown phase and an
    MCRpy descriptor (which reads a gray image) stop with one line."""
    from microdiff.core.errors import SettingError
    from microdiff.targets import make_targets
    ids = np.zeros((8, 8), np.uint8)
    ids[:, 6:], ids[:2, :6] = 2, 1                                         # shares 36, 12, 16 of 64
    unit = (np.arange(3)[:, None, None] == ids[None]).astype(np.float32)   # one-hot in [0, 1]
    x0 = torch.from_numpy(2 * unit - 1)[None]
    goal = make_targets({"vf": 0.3, "phase": 2}, labels=3)
    x = goal.field(x0)
    assert x.shape == (1, 3, 8, 8)
    np.testing.assert_allclose(x.sum(1).numpy(), 1, atol=1e-6)
    vf = goal.items[0]
    assert abs(float(vf.fraction(x)[0]) - 16 / 64) < 1e-3
    assert vf.achieved(goal.reading(unit)) == 16 / 64
    assert goal.measure(unit)[0] | {"phase": 2, "phases": 3} == goal.measure(unit)[0]
    np.save(tmp_path / "ref.npy", ids)
    s2 = make_targets({"s2": str(tmp_path / "ref.npy"), "phase": 1}, labels=3, size=(8, 8))
    assert s2.items[0].rmse(s2.reading(unit)) == 0 and float(s2.loss(x0)[0]) < 1e-2
    with pytest.raises(SettingError, match="reads a gray image"):
        make_targets({"correlations": str(tmp_path / "ref.npy")}, labels=3)
    with pytest.raises(SettingError, match="phases: say which phase 0..2"):
        make_targets({"vf": 0.3}, labels=3)
    # the command line: the record names the phase id, and achieved is the written labels' share
    assert main(["sample", "--model", str(phase_model), "--num", "2", "--steps", "3", "--target-vf", "0.4",
                 "--target-phase", "1", "--out", str(tmp_path / "s")]) == 0
    rec = json.loads((tmp_path / "s" / "a" / "0000.json").read_text())["targets"][0]
    lab = np.load(tmp_path / "s" / "a" / "0000_labels.npy")
    assert (rec["phase"], rec["phases"]) == (1, 3)
    assert abs(rec["achieved"] - (lab == 1).mean()) < 1e-6
    capsys.readouterr()
    assert "--target-phase" in _err(capsys, ["sample", "--model", str(phase_model), "--num", "1", "--steps", "2",
                                             "--target-vf", "0.4", "--out", str(tmp_path / "t")])
