"""`microdiff prepare` on the real UHCS data and database, and on small fixtures."""
import csv
import hashlib
import json
import sqlite3

import numpy as np
import pytest
from PIL import Image

from conftest import shared_path
from microdiff.cli import main
from microdiff.data.dataset import read_manifest
from microdiff.data.prepare import (ClassCount, PrepareError, PrepareSettings, detect_bar, prepare_fiber,
                                    prepare_folder, prepare_nffa, prepare_uhcs)

Q = dict(show_progress=False)


def _hashes(root):
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest() for p in root.rglob("*.png")}


@pytest.fixture(scope="module")
def uhcs():
    return shared_path("data", "uhcs")


def test_uhcs_classes_and_counts_match_database(uhcs, tmp_path):
    res = prepare_uhcs(uhcs / "microstructures.sqlite", uhcs / "images", tmp_path / "u",
                       PrepareSettings(size=64, per_class=None), **Q)
    out, counts = res.out, res.counts
    con = sqlite3.connect(uhcs / "microstructures.sqlite")
    ids = [int(p.stem[4:]) for p in (uhcs / "images").glob("uhcs*.tif")]
    expect = {}
    for (c,) in (con.execute("SELECT primary_microconstituent FROM micrograph WHERE micrograph_id = ?", (i,))
                 .fetchone() for i in ids):
        expect[c] = expect.get(c, 0) + 1
    assert {c: k.total for c, k in counts.items()} == expect
    meta = json.loads((out / "dataset.json").read_text())
    n_real = con.execute("SELECT count(*) FROM micrograph WHERE primary_microconstituent IN "
                         "('martensite','pearlite','pearlite+spheroidite','pearlite+widmanstatten','spheroidite',"
                         "'spheroidite+widmanstatten','network')").fetchone()[0]
    assert n_real == 961 and meta["rows_without_image"] == 961 - len(ids)
    rows = read_manifest(out)
    mag = {r["micrograph_id"]: r["magnification"] for r in csv.DictReader(open(uhcs / "labels.csv")) if r["micrograph_id"]}
    assert all(r["magnification"] == mag[r["micrograph_id"]] for r in rows)


def test_uhcs_output_holds_no_part_of_the_data_bar(uhcs, tmp_path):
    out = prepare_uhcs(uhcs / "microstructures.sqlite", uhcs / "images", tmp_path / "u",
                       PrepareSettings(size=484, per_class=30, seed=3), classes=["spheroidite"], **Q).out
    rows = read_manifest(out)
    assert all(int(r["bar_rows"]) == 38 for r in rows)
    assert all(int(r["crop_top"]) + int(r["crop_size"]) <= 522 - 38 for r in rows)
    # an original at full size is exactly the bar-free centre square of the raw micrograph
    r = next(r for r in rows if r["original"] == "True")
    raw = np.asarray(Image.open(r["source"]))
    got = np.asarray(Image.open(out / r["file"]))
    left = int(r["crop_left"])
    np.testing.assert_array_equal(got, raw[:484, left:left + 484])
    assert raw[484:].mean() < 60 and got[-1].mean() > 60          # the bar is dark; the last kept row is not


def test_bar_detection_for_other_heights():
    rng = np.random.default_rng(0)
    for bar in (0, 12, 50, 70):
        img = np.clip(rng.normal(0.5, 0.15, (400, 300)), 0, 1)
        if bar:
            img[-bar:] = 0.0
            img[-bar + 4:-bar + 10, 20:120] = 1.0                   # "text" and a scale bar
            img[-8:-4, 200:280] = 1.0
        assert detect_bar(img) == bar


def test_balancing_exact_counts_no_duplicates_and_determinism(tmp_path):
    src = tmp_path / "src"
    rng = np.random.default_rng(1)
    for c, n in (("big", 7), ("small", 2)):
        (src / c).mkdir(parents=True)
        for i in range(n):
            Image.fromarray((rng.random((80, 100)) * 255).astype(np.uint8)).save(src / c / f"{i}.png")
    s = PrepareSettings(size=32, per_class=5, seed=9)
    res = prepare_folder(src, tmp_path / "a", s, **Q)
    a, counts = res.out, res.counts
    b = prepare_folder(src, tmp_path / "b", s, **Q).out
    assert counts["big"] == ClassCount(sources=7, originals_available=7, originals=5, augmented=0)
    assert counts["small"].originals == 2 and counts["small"].augmented == 3 and counts["small"].total == 5
    rows = read_manifest(a)
    keys = [(r["source"], r["crop_top"], r["crop_left"], r["crop_size"], r["transform"]) for r in rows]
    assert len(keys) == len(set(keys)) == 10
    assert _hashes(a) == _hashes(b)
    c = prepare_folder(src, tmp_path / "c", PrepareSettings(size=32, per_class=5, seed=10), **Q).out
    assert _hashes(a) != _hashes(c)
    meta = json.loads((a / "dataset.json").read_text())
    assert meta["counts_before"] == {"big": 7, "small": 2} and meta["counts_after"] == {"big": 5, "small": 5}


def test_16bit_rgb_and_multipage_gray_values(tmp_path):
    src = tmp_path / "src" / "x"
    src.mkdir(parents=True)
    Image.fromarray(np.full((40, 40), 32768, np.uint16)).save(src / "a16.tif")
    Image.fromarray(np.full((40, 40), 65535, np.uint16)).save(src / "b16max.png")
    Image.fromarray(np.tile(np.array([255, 0, 0], np.uint8), (40, 40, 1))).save(src / "c_rgb.png")
    pages = [Image.fromarray(np.full((40, 40), v, np.uint8)) for v in (200, 10)]
    pages[0].save(src / "d_pages.tif", save_all=True, append_images=pages[1:])
    Image.fromarray(np.full((40, 40), 77, np.uint8)).save(src / "e.jpg", quality=100)
    Image.fromarray(np.full((40, 40), 99, np.uint8)).save(src / "f.bmp")
    out = prepare_folder(tmp_path / "src", tmp_path / "o", PrepareSettings(size=16, per_class=None), **Q).out
    got = {r["source"].rsplit("/", 1)[-1]: int(np.asarray(Image.open(out / r["file"])).mean().round())
           for r in read_manifest(out)}
    assert got == {"a16.tif": 128, "b16max.png": 255, "c_rgb.png": 76, "d_pages.tif": 200, "e.jpg": 77, "f.bmp": 99}


def test_bad_files_are_skipped_or_stop_with_strict(tmp_path):
    src = tmp_path / "src" / "k"
    src.mkdir(parents=True)
    Image.fromarray(np.zeros((40, 40), np.uint8)).save(src / "good.png")
    good = (src / "good.png").read_bytes()
    (src / "trunc.png").write_bytes(good[: len(good) // 2])
    (src / "text.tif").write_text("not an image")
    res = prepare_folder(tmp_path / "src", tmp_path / "o", PrepareSettings(size=16), **Q)
    out, counts, report = res.out, res.counts, res.report
    assert counts["k"].sources == 1 and {p.rsplit("/", 1)[-1] for p, _ in report.skipped} == {"trunc.png", "text.tif"}
    assert len(json.loads((out / "dataset.json").read_text())["skipped"]) == 2
    with pytest.raises(PrepareError, match="trunc.png|text.tif"):
        prepare_folder(tmp_path / "src", tmp_path / "o2", PrepareSettings(size=16, strict=True), **Q)
    assert not (tmp_path / "o2").exists() and not list(tmp_path.glob(".o2.partial*"))


def _err(capsys, args):
    rc = main(args)
    msg = capsys.readouterr().err.strip()
    assert rc == 2 and "Traceback" not in msg and "\n" not in msg, msg
    return msg


def test_prepare_cli_bad_inputs(tmp_path, capsys, uhcs):
    db = uhcs / "microstructures.sqlite"
    notdb = tmp_path / "x.sqlite"
    notdb.write_text("hello")
    imgs = tmp_path / "imgs"
    imgs.mkdir()
    assert "not a readable SQLite" in _err(capsys, ["prepare", "uhcs", "--db", str(notdb), "--images", str(imgs),
                                                     "--out", str(tmp_path / "o"), "--no-progress"])
    other = tmp_path / "other.sqlite"
    sqlite3.connect(other).execute("CREATE TABLE micrograph (micrograph_id INTEGER, path TEXT)")
    assert "primary_microconstituent" in _err(capsys, ["prepare", "uhcs", "--db", str(other), "--images",
                                                        str(imgs), "--out", str(tmp_path / "o"), "--no-progress"])
    assert "have no usable images" in _err(capsys, ["prepare", "uhcs", "--db", str(db), "--images",
                                                     str(uhcs / "images"), "--classes", "martensite",
                                                     "--out", str(tmp_path / "o"), "--no-progress"])
    assert "do not occur" in _err(capsys, ["prepare", "uhcs", "--db", str(db), "--images", str(uhcs / "images"),
                                           "--classes", "bainite", "--out", str(tmp_path / "o"), "--no-progress"])
    empty = tmp_path / "e" / "cls"
    empty.mkdir(parents=True)
    assert "no usable images" in _err(capsys, ["prepare", "folder", str(empty.parent), "--out", str(tmp_path / "o"),
                                               "--no-progress"])
    done = tmp_path / "done"
    (done / "x").mkdir(parents=True)
    (done / "dataset.json").write_text("{}")
    (tmp_path / "s" / "a").mkdir(parents=True)
    Image.fromarray(np.zeros((40, 40), np.uint8)).save(tmp_path / "s" / "a" / "i.png")
    assert "--overwrite" in _err(capsys, ["prepare", "folder", str(tmp_path / "s"), "--out", str(done), "--no-progress"])
    assert (done / "dataset.json").read_text() == "{}"


def test_nffa_mapping_and_exclude(tmp_path):
    src = tmp_path / "nffa"
    for cat in ("Biological", "Films_Coated_Surface", "Tips"):
        (src / cat).mkdir(parents=True)
        for i in range(2):
            Image.fromarray(np.full((50, 60), 40 * i + 20, np.uint8)).save(src / cat / f"{cat}_{i}.jpg")
    excl = tmp_path / "ex.txt"
    excl.write_text("Biological_1.jpg\n")
    res = prepare_nffa(src, tmp_path / "o", PrepareSettings(size=32, per_class=None), excl, **Q)
    counts, report = res.counts, res.report
    assert {c: k.total for c, k in counts.items()} == {"Biological": 1, "Coated_surfaces": 2}
    assert ("Biological/Biological_1.jpg", "excluded by the exclude list") in report.skipped


def test_fiber_regions(tmp_path):
    src = tmp_path / "fib" / "FVC40"
    src.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i in range(2):
        Image.fromarray((rng.random((300, 400)) * 255).astype(np.uint8)).save(src / f"{i}.tif")
    res = prepare_fiber(tmp_path / "fib", tmp_path / "o", PrepareSettings(size=32, per_class=None),
                        regions_per_image=5, region_um=180, pixel_size=1.5, **Q)
    out, counts = res.out, res.counts
    rows = read_manifest(out)
    assert counts["FVC40"].total == 10 and all(int(r["crop_size"]) == 120 for r in rows)
    assert len({(r["source"], r["crop_top"], r["crop_left"]) for r in rows}) == 10
    with pytest.raises(PrepareError, match="smaller than the 500 px crop|no usable"):
        prepare_fiber(tmp_path / "fib", tmp_path / "o2", PrepareSettings(size=32), region_px=500, **Q)
