"""The three-phase synthetic truth ``electrode`` (pore 0, binder 1, particle 2): deterministic,
the asked particle fraction, every pair of phases in contact, and a data set of label maps."""
import json

import numpy as np
import pytest

from microdiff.data.synth3d import electrode_volume, section_classes, synth_3d

K = 3


def fractions(labels: np.ndarray) -> np.ndarray:
    return np.bincount(labels.ravel(), minlength=K) / labels.size


def faces(labels: np.ndarray, i: int, j: int, axis: int) -> int:
    """Faces between a voxel of phase i and its neighbour of phase j along ``axis`` (either order)."""
    x = np.moveaxis(labels, axis, 0)
    p, q = x[:-1], x[1:]
    return int(np.count_nonzero(((p == i) & (q == j)) | ((p == j) & (q == i))))


@pytest.fixture(scope="module")
def vol64():
    return electrode_volume(np.random.default_rng(7), 64, 0.4).labels


def test_the_same_seed_gives_the_same_volume():
    a = electrode_volume(np.random.default_rng(3), 32, 0.4).labels
    b = electrode_volume(np.random.default_rng(3), 32, 0.4).labels
    c = electrode_volume(np.random.default_rng(4), 32, 0.4).labels
    assert a.dtype == np.uint8 and a.shape == (32, 32, 32)
    assert np.array_equal(a, b) and not np.array_equal(a, c)


def test_phase_fractions_near_the_asked_ones(vol64):
    pore, binder, particle = fractions(vol64)
    assert set(np.unique(vol64)) == {0, 1, 2}
    assert particle == pytest.approx(0.4, abs=0.03)
    assert 0.05 < binder < 0.25 and pore > 0.2
    lo = fractions(electrode_volume(np.random.default_rng(1), 64, 0.25).labels)
    assert lo[2] == pytest.approx(0.25, abs=0.03)


def test_every_pair_of_phases_touches_along_every_axis(vol64):
    for axis in range(3):
        for i, j in ((0, 1), (1, 2), (0, 2)):
            assert faces(vol64, i, j, axis) > 0, (i, j, axis)
    # the binder coats only part of the particle surface: pore | particle faces are a real share
    surface = sum(faces(vol64, i, 2, a) for i in (0, 1) for a in range(3))
    bare = sum(faces(vol64, 0, 2, a) for a in range(3))
    assert 0.2 < bare / surface < 0.8


def test_one_isotropic_class():
    assert section_classes("electrode") == {"electrode": (0, 1, 2)}


def test_the_data_set_holds_label_maps_and_the_volumes_labels(tmp_path):
    from PIL import Image
    out = synth_3d(tmp_path / "e", "electrode", 32, per_class=4, volumes=2, seed=5, sections_per_volume=2,
                   show_progress=False)
    slices = out / "slices"
    meta = json.loads((slices / "dataset.json").read_text())
    assert meta["phases"] == 3 and meta["phase_names"] == ["pore", "binder", "particle"]
    assert meta["classes"] == ["electrode"] and meta["counts"] == {"electrode": 4}
    pngs = sorted((slices / "electrode").glob("*.png"))
    assert len(pngs) == 4 and all(p.name.endswith("_labels.png") for p in pngs)
    manifest = (slices / "manifest.csv").read_text()
    assert all(f"electrode/{p.name}" in manifest for p in pngs)
    seen = set()
    for p in pngs:
        gray = np.asarray(Image.open(p))
        assert gray.shape == (32, 32) and gray.dtype == np.uint8
        assert set(np.unique(gray)) <= {int(np.round(255 * k / (K - 1))) for k in range(K)}   # 0, 128, 255
        ids = np.round(gray / 255 * (K - 1)).astype(int)
        seen |= set(np.unique(ids).tolist())
    assert seen == {0, 1, 2}
    vols = sorted((out / "volumes").glob("*_labels.npy"))
    assert len(vols) == 2
    for v in vols:
        lab = np.load(v)
        assert lab.shape == (32, 32, 32) and set(np.unique(lab).tolist()) == {0, 1, 2}
    assert json.loads((out / "synth3d.json").read_text())["phases"] == 3
