"""The real floor: held-out source images (prepare/synth --holdout), every figure computed for them
(evaluate --reference), verdicts per class, the copy check, the KID interval."""
import csv
import json

import numpy as np
import pytest
import torch
from PIL import Image

from microdiff.cli.main import main
from microdiff.data.transforms import dihedral
from microdiff.metrics.copies import closer_than_floor, copy_distances, floor_percentile


def _err(capsys, args):
    rc = main(args)
    err = capsys.readouterr().err.strip()
    return rc, err


# ----------------------------------------------------------------------------- held-out split

@pytest.fixture
def micrographs(tmp_path):
    rng = np.random.default_rng(0)
    for c, n in (("A", 5), ("B", 3), ("C", 1)):
        (tmp_path / "src" / c).mkdir(parents=True)
        for i in range(n):
            Image.fromarray((rng.random((60, 80)) * 255).astype(np.uint8)).save(tmp_path / "src" / c / f"{i}.png")
    return tmp_path / "src"


def _manifest(root):
    with open(root / "manifest.csv", newline="") as fh:
        return list(csv.DictReader(fh))


def test_holdout_keeps_every_source_image_on_one_side(micrographs, tmp_path, capsys):
    out = tmp_path / "data"
    assert main(["prepare", "folder", str(micrographs), "--out", str(out), "--size", "16", "--per-class", "20",
                 "--holdout", "0.4", "--no-progress"]) == 0
    held = tmp_path / "data-heldout"
    train_rows, held_rows = _manifest(out), _manifest(held)
    for c in ("A", "B"):
        tr = {r["source"] for r in train_rows if r["class"] == c}
        he = {r["source"] for r in held_rows if r["class"] == c}
        assert tr and he and not tr & he
    assert len({r["source"] for r in held_rows if r["class"] == "A"}) == 2        # round(0.4 x 5)
    assert len({r["source"] for r in held_rows if r["class"] == "B"}) == 1        # round(0.4 x 3), at least one
    assert not (held / "C").exists() and len(list((out / "C").glob("*.png"))) == 20
    assert sum(r["class"] == "A" for r in held_rows) == 8                          # per_class x 0.4
    meta, hmeta = json.loads((out / "dataset.json").read_text()), json.loads((held / "dataset.json").read_text())
    assert meta["heldout_set"] == str(held) and hmeta["role"] == "held-out"
    assert set(meta["heldout_sources"]) == {r["source"] for r in held_rows}
    printed = capsys.readouterr().out
    assert "class C: one source image, nothing held out" in printed and "data-heldout" in printed


def test_synth_holdout_draws_other_seeds_and_leaves_the_training_set_unchanged(tmp_path):
    from microdiff.data.synth import synth_fiber
    plain = synth_fiber(tmp_path / "plain", size=32, per_class=6, seed=2, radius=2.0, show_progress=False)
    synth_fiber(tmp_path / "f", size=32, per_class=6, seed=2, radius=2.0, show_progress=False, holdout=0.5)
    for f in sorted(plain.glob("*/*.png")):
        assert f.read_bytes() == (tmp_path / "f" / f.relative_to(plain)).read_bytes()
    seeds = {r["seed"] for r in _manifest(tmp_path / "f")}
    held = _manifest(tmp_path / "f-heldout")
    assert len(held) == 9 and not seeds & {r["seed"] for r in held}


@pytest.mark.parametrize("value", ["0", "1", "1.5"])
def test_holdout_out_of_range_is_one_line(micrographs, tmp_path, capsys, value):
    rc, err = _err(capsys, ["prepare", "folder", str(micrographs), "--out", str(tmp_path / "d"), "--holdout", value])
    assert rc == 2 and "--holdout" in err and len(err.splitlines()) == 1


# ----------------------------------------------------------------------------- copy distance

def test_copy_distance_sees_through_rotation_mirror_and_shift():
    rng = np.random.default_rng(1)
    train = torch.from_numpy(rng.random((5, 24, 24)).astype(np.float32))
    # a copy of training image 3: shifted by (1, -2), then mirrored and turned (element 6 of D4)
    moved = torch.roll(train[3], (1, -2), (0, 1))
    query = torch.stack([dihedral(moved, 6), torch.from_numpy(rng.random((24, 24)).astype(np.float32))])
    m = copy_distances(query, train, shift=2)
    assert m.distance[0] < 1e-3 and m.index[0] == 3          # float32 distances: rounding only
    assert m.transform_name(0) == "rot180+flip" and tuple(m.shift[0]) == (1, -2)   # element 6 undoes itself
    # the independent image: uncorrelated pixels, 100 minus what the best of 1000 alignments buys
    assert 70 < m.distance[1] < 100
    # against brute force over every transform, shift and training image (numpy's correlation)
    s, w = 2, 20
    best = min(1 - np.corrcoef(dihedral(query[1], k)[s + dy:s + dy + w, s + dx:s + dx + w].numpy().ravel(),
                               t[s:s + w, s:s + w].numpy().ravel())[0, 1]
               for k in range(8) for dy in range(-s, s + 1) for dx in range(-s, s + 1) for t in train)
    assert m.distance[1] == pytest.approx(100 * best, rel=1e-4)
    # brightness and contrast do not hide a copy
    assert copy_distances(0.3 + 0.5 * query[:1], train).distance[0] < 1e-3


def test_floor_percentile_of_a_small_floor_is_a_fitted_one():
    rng = np.random.default_rng(2)
    # floors of 20 images, fresh independent images: they undercut the fitted 1st percentile about
    # 1 % of the time, where the minimum of 20 (the empirical 1st percentile) would be undercut ~5 %
    rates = []
    for _ in range(200):
        floor = np.exp(rng.normal(1.0, 0.2, 20))
        rates.append(np.mean(np.exp(rng.normal(1.0, 0.2, 2000)) < floor_percentile(floor, 1.0)))
    assert 0.005 < np.mean(rates) < 0.02
    _, frac = closer_than_floor(np.full(10, 1e-3), floor)
    assert frac == 1.0
    big = rng.random(500)
    assert floor_percentile(big, 1.0) == pytest.approx(np.percentile(big, 1.0))


def test_kid_interval_holds_the_estimate_and_separates_other_distributions():
    from microdiff.metrics.fid import kid_interval
    rng = np.random.default_rng(3)
    a, b = (torch.from_numpy(rng.normal(0, 1, (60, 16))) for _ in range(2))
    kid, lo, hi = kid_interval(a, b, resamples=200)
    assert lo <= kid <= hi and lo < 0 < hi
    c = torch.from_numpy(rng.normal(0.7, 1, (60, 16)))
    kid2, lo2, hi2 = kid_interval(a, c, resamples=200)
    assert lo2 > hi and lo2 <= kid2 <= hi2


# ----------------------------------------------------------------------------- evaluate --reference

@pytest.fixture(scope="module")
def fibers(tmp_path_factory):
    from microdiff.data.synth import synth_fiber
    root = tmp_path_factory.mktemp("floor")
    classes = {"FVC40": 0.4, "FVC60": 0.6}
    train = synth_fiber(root / "train", size=32, per_class=40, seed=0, radius=2.5, classes=classes,
                        show_progress=False, holdout=0.5)
    other = synth_fiber(root / "other", size=32, per_class=16, seed=9, radius=2.5, classes=classes,
                        show_progress=False)                        # independent images: what a good model makes
    copies = root / "copies"                                        # what a memorising model makes
    from microdiff.data.io import read_image, save_png
    rng = np.random.default_rng(4)
    for c in classes:
        (copies / c).mkdir(parents=True)
        for i, f in enumerate(sorted((train / c).glob("*.png"))[:16]):
            x = dihedral(np.roll(read_image(f), (i % 3 - 1, 1), (0, 1)), i % 8)
            save_png(copies / c / f"{i:04d}.png", np.clip(x + rng.normal(0, 0.01, x.shape), 0, 1))
    return root, train, root / "train-heldout", other, copies


def _verdicts(path):
    with open(path, newline="") as fh:
        return {(r["class"], r["check"]): r for r in csv.DictReader(fh)}


def test_reference_floor_passes_independent_images_and_flags_copies(fibers, tmp_path):
    from microdiff.evaluate import EvalSettings, evaluate_folders
    root, train, held, other, copies = fibers
    settings = EvalSettings(descriptors=("S", "px"), fid=False)
    good = evaluate_folders(other, train, tmp_path / "good", settings, show_progress=False, reference=held)
    evaluate_folders(copies, train, tmp_path / "bad", settings, show_progress=False, reference=held)
    vg, vb = _verdicts(tmp_path / "good" / "verdicts.csv"), _verdicts(tmp_path / "bad" / "verdicts.csv")
    for c in ("FVC40", "FVC60"):
        assert vg[c, "copies"]["verdict"] == "within" and float(vg[c, "copies"]["score"]) <= 0.05
        assert vb[c, "copies"]["verdict"] == "outside" and float(vb[c, "copies"]["score"]) == 15 / 16
        assert vb[c, "copies"]["detail"].startswith("16 of 16 closer") and "up to 1" in vb[c, "copies"]["detail"]
        # independent images score like the held-out ones: E ratios near 1
        for d in ("E_S", "E_px"):
            assert 0.6 < float(vg[c, d]["ratio"]) < 1.5, (c, d, vg[c, d])
        # the plain pixel error does not see turned and shifted copies (they score like real images); the copy check does
        assert float(vb[c, "E_px"]["ratio"]) > 0.6
        assert vg[c, "phase 1 fraction"]["verdict"] in ("within", "near")
    # the floor's rows are the held-out images, scored as the generated ones
    with open(tmp_path / "good" / "metrics.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    ref = [r for r in rows if r["set"] == "reference"]
    assert len(ref) == 40 and {r["file"].split("/")[0] for r in ref} == {"FVC40", "FVC60"}
    assert good.floor["FVC40"].median["px"] == pytest.approx(np.median([float(r["E_px_pct"]) for r in ref
                                                                         if r["class"] == "FVC40"]))
    table = (tmp_path / "good" / "table.md").read_text()
    assert "| FVC40 | floor | 20 |" in table and "## Verdicts" in table
    if good.report is not None:
        page = good.report.read_text()
        assert 'id="verdicts"' in page and page.index('id="verdicts"') < page.index('class="class"')
        assert "copy check" in page and "held-out" in page


def test_without_a_reference_the_checks_that_need_one_say_so(fibers, tmp_path):
    from microdiff.evaluate import EvalSettings, evaluate_folders
    _, train, _, other, _ = fibers
    res = evaluate_folders(other, train, tmp_path / "ev", EvalSettings(descriptors=("px",), fid=False),
                           show_progress=False, report=False)
    v = _verdicts(tmp_path / "ev" / "verdicts.csv")
    assert v["FVC40", "E_px"]["verdict"] == "no floor" and v["FVC40", "copies"]["verdict"] == "no floor"
    assert v["FVC40", "phase 1 fraction"]["verdict"] in ("within", "near")      # judged by the training spread
    assert res.verdicts["FVC40"].overall in ("within", "near")


def test_bad_reference_is_one_line(fibers, tmp_path, capsys):
    from microdiff.data.synth import synth_fiber
    root, train, held, other, _ = fibers
    small = synth_fiber(tmp_path / "small", size=16, per_class=3, seed=5, radius=1.5, classes={"FVC40": 0.4},
                        show_progress=False)
    alien = synth_fiber(tmp_path / "alien", size=32, per_class=3, seed=5, radius=2.5, classes={"X": 0.4},
                        show_progress=False)
    base = ["evaluate", "--generated", str(other), "--train", str(train), "--descriptors", "px", "--no-fid",
            "--no-report", "--out", str(tmp_path / "ev")]
    for ref, words in ((small, ["16x16", "--size 32"]), (alien, ["X", "none of the generated"]),
                       (tmp_path / "nowhere", ["does not exist"])):
        rc, err = _err(capsys, base + ["--reference", str(ref)])
        assert rc == 2 and len(err.splitlines()) == 1 and all(w in err for w in words), err


@pytest.mark.slow
def test_copy_check_flags_a_memorising_model_and_passes_one_that_is_not(tmp_path):
    """Two tiny models for the same 1000 steps: one on two 16x16 images (it memorises them), one on
    200; 16 samples of each against 16 held-out images of other seeds."""
    from helpers import tiny_config
    from microdiff.data.synth import synth_fiber
    from microdiff.evaluate import EvalSettings, evaluate_folders
    from microdiff.generate import SampleSettings, sample_to_folder
    from microdiff.generate.pipeline import load_pipeline
    from microdiff.train import train_model
    verdicts = {}
    for name, n, holdout in (("memorising", 2, 0.99), ("general", 200, 0.08)):
        data = synth_fiber(tmp_path / name / "data", size=16, per_class=n, seed=3, classes={"A": 0.4}, radius=2.0,
                           show_progress=False, holdout=holdout)
        cfg = tiny_config("train.steps=1000", "train.checkpoint_every=100000", "train.warmup_steps=10",
                          "train.log_every=500")
        train_model(data, tmp_path / name / "run", cfg, show_progress=False, log=lambda *a: None)
        pipe = load_pipeline(tmp_path / name / "run" / "model", "cpu")
        sample_to_folder(pipe, tmp_path / name / "samples", SampleSettings(num=16, steps=20, seed=0),
                         show_progress=False)
        res = evaluate_folders(tmp_path / name / "samples", data, tmp_path / name / "ev",
                               EvalSettings(descriptors=("px",), fid=False), show_progress=False, report=False,
                               reference=tmp_path / name / "data-heldout")
        verdicts[name] = next(v for v in res.verdicts["A"].checks if v.check == "copies")
    mem, gen = verdicts["memorising"], verdicts["general"]
    assert mem.verdict == "outside" and mem.score > 0.5, mem        # measured: 15 of 16 below the floor's 1st pct
    assert gen.verdict == "within" and gen.score == 0, gen
    assert mem.generated < 0.75 * mem.floor and gen.generated > 0.8 * gen.floor
