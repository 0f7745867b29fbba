"""The built-in synthetic fiber data: exact fiber content, no overlaps, determinism."""
import hashlib

import numpy as np
import pytest

from microdiff.data.dataset import read_manifest
from microdiff.data.synth import synth_fiber
from microdiff.core.errors import OutputExistsError
from microdiff.data.fiber import FiberSettings, fiber_fraction, fiber_image, pack
from microdiff.metrics.descriptors import otsu_threshold


@pytest.mark.parametrize("fvc", [0.4, 0.5, 0.6])
def test_fiber_fraction_within_one_point(fvc):
    for i in range(8):
        img, measured, n = fiber_image(np.random.SeedSequence([5, i]), fvc)
        assert abs(measured - fvc) <= 0.01
        assert img.dtype == np.float32 and img.shape == (64, 64) and 0 <= img.min() and img.max() <= 1
        # the bright phase found by Otsu follows the class (blur and noise move it a little)
        assert abs(fiber_fraction(img) - fvc) < 0.06


def test_packing_has_no_overlaps_at_60_percent():
    rng = np.random.default_rng(0)
    r = 4.4 * (1 + 0.08 * rng.standard_normal(40))
    pos = pack(rng, r, 64.0, gap=0.4)
    d = pos[:, None] - pos[None]
    d -= 64 * np.rint(d / 64)
    dist = np.sqrt((d ** 2).sum(-1)) + np.eye(len(r)) * 1e9
    assert (dist >= r[:, None] + r[None] + 0.4 - 1e-3).all()
    assert np.pi * (r ** 2).sum() / 64 ** 2 > 0.58


def test_otsu_on_two_level_image():
    img = np.full((50, 50), 0.2)
    img[:, :15] = 0.8                                   # 30 % bright
    t = float(otsu_threshold(img)[0])
    assert 0.2 < t < 0.8 and fiber_fraction(img) == pytest.approx(0.3)


def test_synth_dataset_manifest_and_determinism(tmp_path):
    a = synth_fiber(tmp_path / "a", size=32, per_class=3, seed=4, show_progress=False)
    b = synth_fiber(tmp_path / "b", size=32, per_class=3, seed=4, show_progress=False)
    rows = read_manifest(a)
    assert len(rows) == 9 and {r["class"] for r in rows} == {"FVC40", "FVC50", "FVC60"}
    for r in rows:
        assert abs(float(r["measured_fvc"]) - float(r["target_fvc"])) <= 0.01
    h = lambda root: sorted(hashlib.sha256(p.read_bytes()).hexdigest() for p in root.rglob("*.png"))  # noqa: E731
    assert h(a) == h(b)
    with pytest.raises(OutputExistsError, match="pass overwrite=True to replace it"):
        synth_fiber(tmp_path / "a", size=32, per_class=1, show_progress=False)


def test_bad_fvc_is_refused():
    with pytest.raises(ValueError, match="outside"):
        fiber_image(0, 0.9, FiberSettings())
