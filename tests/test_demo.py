"""The demo on the shipped model: files, report, and fiber fractions that follow the class."""
import re

import numpy as np
import pytest
from PIL import Image

from microdiff.demo import run_demo, shipped_model_dir


def test_demo_with_shipped_model(tmp_path):
    if not (shipped_model_dir() / "microdiff.json").exists():
        pytest.fail("the shipped demo model is missing from src/microdiff/assets/demo_model")
    report = run_demo(tmp_path / "demo", num=8, show_progress=False, log=lambda *a: None)
    text = report.read_text()
    for c in ("FVC40", "FVC50", "FVC60"):
        assert len(list((tmp_path / "demo" / "samples" / c).glob("*.png"))) == 8
    grid = np.asarray(Image.open(tmp_path / "demo" / "grid.png"))
    assert grid.shape[0] == 3 * 64 + 2 * 2 and grid.shape[1] > 8 * 64 + 7 * 2      # + a column of class labels
    rows = {m[0]: (float(m[1]), float(m[2])) for m in
            re.findall(r"\| (FVC\d\d) \| ([\d.]+) \| [\d.]+ \| [\d.]+ ± [\d.]+ \| ([\d.]+) ± [\d.]+ \|", text)}
    assert set(rows) == {"FVC40", "FVC50", "FVC60"}
    gen = [rows[c][1] for c in ("FVC40", "FVC50", "FVC60")]
    assert gen[0] < gen[1] < gen[2], text                      # the fraction follows the class
    assert all(abs(rows[c][1] - rows[c][0]) < 0.1 for c in rows), text
    with pytest.raises(FileExistsError, match="--overwrite"):
        run_demo(tmp_path / "demo", num=1, show_progress=False)
