"""report.html (issue 12): in headless Chromium every image loads, no console errors, one
section per class with metrics.csv's numbers; the S2 curves are `characterize --descriptor s2`;
a class with one image or without training images still renders, marked; TensorBoard events
hold the CSV's losses."""
import csv
import html
import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from helpers import tiny_config, tiny_data
from microdiff.evaluate.characterize import characterize
from microdiff.cli import main
from microdiff.data.synth import synth_fiber
from microdiff.evaluate.evaluate import EvalSettings, evaluate_folders

pytest.importorskip("matplotlib", reason="the report needs the `report` extra (matplotlib)")
CHROMIUM, DRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")


@pytest.fixture(scope="module")
def evaluated(tmp_path_factory):
    """Generated = training images of FVC40 (4) and FVC50 (1), plus a class with no training folder."""
    root = tmp_path_factory.mktemp("report")
    train = synth_fiber(root / "train", size=32, per_class=6, seed=1, show_progress=False)
    gen = root / "gen"
    for c, n in (("FVC40", 4), ("FVC50", 1)):
        (gen / c).mkdir(parents=True)
        for f in sorted((train / c).glob("*.png"))[:n]:
            shutil.copy(f, gen / c / f"g_{f.name}")
    (gen / "EXTRA").mkdir()
    shutil.copy(sorted((train / "FVC60").glob("*.png"))[0], gen / "EXTRA" / "a.png")
    res = evaluate_folders(gen, train, root / "eval", EvalSettings(descriptors=("S", "px"), fid=False),
                           show_progress=False)
    return res, gen, train


def plot_data(page: str, kind: str) -> dict:
    out = {}
    for attrs, text in re.findall(r'<script type="application/json" class="plot-data"([^>]*)>(.*?)</script>', page, re.S):
        if f'data-kind="{kind}"' in attrs:
            out[html.unescape(re.search(r'data-class="([^"]*)"', attrs).group(1))] = json.loads(text)
    return out


def test_s2_curves_are_characterize_s2_of_the_same_images(evaluated):
    res, gen, train = evaluated
    page = res.report.read_text()
    s2 = plot_data(page, "s2")
    assert set(s2) == {"FVC40", "FVC50"}
    for c in s2:
        g = characterize(sorted((gen / c).glob("*.png")), "s2")
        t = characterize(sorted((train / c).glob("*.png")), "s2")
        np.testing.assert_allclose(s2[c]["generated_mean"], g.mean(0), atol=1e-12)
        np.testing.assert_allclose(s2[c]["training_mean"], t.mean(0), atol=1e-12)
        np.testing.assert_allclose(s2[c]["training_std"], t.std(0), atol=1e-12)


def test_one_image_and_unmatched_classes_render_marked(evaluated):
    res, _, _ = evaluated
    page = res.report.read_text()
    assert re.findall(r'<section class="class[^"]*" id="class-(\w+)"', page) == ["FVC40", "FVC50", "EXTRA"]
    fvc50 = page[page.index('id="class-FVC50"'):page.index('id="class-EXTRA"')]
    assert "only one generated image" in fvc50
    assert 'class="class unmatched" id="class-EXTRA"' in page and "no training images of this class" in page
    assert list(res.unmatched) == ["EXTRA"]


def _browser():
    if not (CHROMIUM.exists() and DRIVER.exists()):
        pytest.skip("Debian's chromium and chromium-driver are not installed (.ci/run installs them with apt-get)")
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium (the test extra) is not installed")
    from selenium.webdriver.chrome.service import Service
    opts = webdriver.ChromeOptions()
    for a in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
              "--disable-background-networking", "--disable-component-update", "--disable-sync",
              "--window-size=1280,1600"):
        opts.add_argument(a)
    opts.binary_location = str(CHROMIUM)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(options=opts, service=Service(str(DRIVER)))


def test_report_in_headless_chromium(evaluated, tmp_path):
    res, _, _ = evaluated
    driver = _browser()
    try:
        driver.get(res.report.resolve().as_uri())
        images = driver.execute_script("return Array.from(document.images).map(i => [i.complete, i.naturalWidth])")
        sections = driver.execute_script(
            "return Array.from(document.querySelectorAll('section.class'))"
            ".map(s => [s.getAttribute('data-class'), s.innerText])")
        errors = [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]
        assert driver.save_screenshot(str(tmp_path / "report.png"))
    finally:
        driver.quit()
    assert images and all(ok and w > 0 for ok, w in images), images
    assert not errors, errors
    assert [c for c, _ in sections] == ["FVC40", "FVC50", "EXTRA"]
    with open(res.out_dir / "metrics.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    text = dict(sections)
    for c in ("FVC40", "FVC50"):
        m = res.classes[c]
        assert f"{m.median['S']:.4g}" in text[c] and f"{m.median['px']:.4g}" in text[c]
        assert str(sum(r["class"] == c for r in rows)) in text[c]
    assert (tmp_path / "report.png").stat().st_size > 10_000


def test_tensorboard_events_hold_the_csv_losses(tmp_path):
    pytest.importorskip("tensorboard", reason="the `tensorboard` extra is not installed")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from microdiff.train import train_model
    data = tiny_data(tmp_path / "data")
    train_model(data, tmp_path / "run", tiny_config("train.steps=3", "train.sample_every=3"), show_progress=False,
                log=lambda *a: None)
    with open(tmp_path / "run" / "log.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    acc = EventAccumulator(str(tmp_path / "run" / "tensorboard"), size_guidance={"images": 0, "scalars": 0}).Reload()
    for key in ("loss", "mse", "vb", "lr", "images_per_s"):
        events = acc.Scalars(f"train/{key}")
        assert [e.step for e in events] == [int(r["step"]) for r in rows]
        np.testing.assert_allclose([e.value for e in events], [float(r[key]) for r in rows], rtol=1e-6)
    assert acc.Images("samples")
    assert main(["report", str(tmp_path / "run")]) == 0
    page = (tmp_path / "run" / "report.html").read_text()
    assert plot_data(page, "log")[""]["loss"] == [float(r["loss"]) for r in rows]
