"""The demo on the shipped model: files, report, and fiber fractions that follow the class."""
import numpy as np
import pytest
from PIL import Image

from microdiff.demo import run_demo, shipped_model_dir
from microdiff.core.errors import OutputExistsError


def test_demo_with_shipped_model(tmp_path):
    if not (shipped_model_dir() / "microdiff.json").exists():
        pytest.fail("the shipped demo model is missing from src/microdiff/assets/demo_model")
    res = run_demo(tmp_path / "demo", show_progress=False, log=lambda *a: None)         # the demo's own 16 per class
    for c in ("FVC40", "FVC50", "FVC60"):
        assert len(list((tmp_path / "demo" / "samples" / c).glob("*.png"))) == 16
    grid = np.asarray(Image.open(res.grid_path))
    assert grid.shape[0] == 3 * 64 + 2 * 2 and grid.shape[1] > 8 * 64 + 7 * 2      # + a column of class labels
    assert list(res.classes) == ["FVC40", "FVC50", "FVC60"]
    gen = [res.classes[c].generated_otsu.mean() for c in res.classes]
    assert gen[0] < gen[1] < gen[2]                                              # the fraction follows the class
    for c in res.classes.values():
        # the demo's own bar: every class's fiber fraction within 1 point of the training data's
        assert len(c.generated_otsu) == 16 and abs(c.generated_otsu.mean() - c.train_otsu.mean()) < 0.01
    text = res.report_path.read_text()                                          # the report shows those numbers
    for c in res.classes.values():
        assert f"| {c.name} | {c.target:.2f} | {c.train_true:.3f} |" in text
        assert f"{c.generated_otsu.mean():.3f} ± {c.generated_otsu.std():.3f}" in text
    if res.html_path.exists():                                                  # its report carries the floor
        page = res.html_path.read_text()
        assert 'id="verdicts"' in page and "data-heldout" in page
    with pytest.raises(OutputExistsError, match="pass overwrite=True to replace it"):
        run_demo(tmp_path / "demo", num=1, show_progress=False)
