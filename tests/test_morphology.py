"""Morphological and transport descriptors of a phase (``metrics.morphology``, ``metrics.transport``)
against closed forms: chords of slabs, balls and i.i.d. voxels, the local thickness of slabs and
balls (and a plain porespy-style sweep), Euler characteristics of balls, tori, shells, disks and
annuli, and the tortuosity of straight channels, layers and a one-voxel serpentine (a resistor
chain: tau = (N / L)^2 exactly)."""
import math
import sys

import numpy as np
import pytest
from scipy import ndimage

from microdiff.core.errors import UsageError
from microdiff.metrics import morphology as M


def ball(shape, centre, radius):
    g = np.ogrid[tuple(slice(0, n) for n in shape)]
    return sum((c - x0) ** 2 for c, x0 in zip(g, centre)) <= radius ** 2


def smooth_random(shape, seed=0, sigma=2.0, quantile=0.5):
    g = ndimage.gaussian_filter(np.random.default_rng(seed).standard_normal(shape), sigma)
    return g > np.quantile(g, quantile)


# ----------------------------------------------------------------------------- chords


def test_chords_of_a_slab_are_its_thickness_and_cut_chords_are_dropped():
    a = np.zeros((20, 16, 24), bool)
    a[:, :, 5:12] = True                                 # a slab 7 thick, normal to x
    h = M.chord_length_distribution(a)
    assert h.shape == (3, 24)
    assert h[2, 6] == 1 and h[2].sum() == 1              # along x: every chord is 7 long
    assert not h[0].any() and not h[1].any()            # along z and y every chord touches the faces
    mean = M.mean_chord_length(a)
    assert mean[2] == 7 and np.isnan(mean[:2]).all()
    kept = M.chord_length_distribution(a, drop_boundary=False)
    assert kept[0, 19] == 1 and kept[1, 15] == 1 and kept[2, 6] == 1
    assert np.allclose(M.mean_chord_length(a, drop_boundary=False), [20, 16, 7])
    assert np.array_equal(M.chord_lengths(a, 2), np.full(20 * 16, 7))


def test_chords_of_a_ball_have_mean_4r_over_3():
    r = 12
    a = ball((31, 31, 31), (15, 15, 15), r)
    mean = M.mean_chord_length(a)
    # over axis-parallel lines, each once: the ball's volume over its cross-section, 4R/3 (16)
    assert np.allclose(mean, a.sum() / a.any(axis=0).sum())
    assert np.allclose(mean, 4 * r / 3, rtol=0.03)
    h = M.chord_length_distribution(a)
    assert np.allclose(h.sum(1), 1) and h[:, 2 * r].all() and not h[:, 2 * r + 1:].any()   # longest: the diameter, 25 voxels
    assert np.allclose(h @ np.arange(1, 32), mean)


def test_chords_of_iid_voxels_are_geometric():
    p = 0.3
    a = np.random.default_rng(0).random((48, 64, 80)) < p
    # interior runs of an i.i.d. line of n voxels: (n - l - 1) (1 - p)^2 p^l of length l per line
    # (geometric, P(l) = (1 - p) p^(l - 1), mean 1 / (1 - p), on an infinite line; dropping the
    # cut chords on a finite one shortens the mean by O(1 / n))
    for axis, n in enumerate(a.shape):
        length = np.arange(1, n - 1)
        expected = (n - length - 1) * p ** length
        expected = expected / expected.sum()
        count = len(M.chord_lengths(a, axis))             # within 4 standard errors
        se = np.sqrt(expected * (1 - expected) / count)
        assert np.all(np.abs(M.chord_length_distribution(a)[axis, :n - 2] - expected) < 4 * se + 1e-9)
        sd = np.sqrt(expected @ length ** 2 - (expected @ length) ** 2)
        assert abs(M.mean_chord_length(a)[axis] - expected @ length) < 4 * sd / np.sqrt(count)
        assert expected @ length == pytest.approx(1 / (1 - p), rel=0.02)
        # length-weighted: the fraction of chord voxels in chords of length l, l P(l) / mean
        w = M.chord_length_distribution(a, weight="length")[axis, :n - 2]
        assert w.sum() == pytest.approx(1) and np.allclose(w, expected * length / (expected @ length), atol=0.01)


def test_chords_in_2d():
    a = np.zeros((10, 12), bool)
    a[3:6, 2:9] = True
    assert np.array_equal(M.mean_chord_length(a), [3, 7])
    assert M.chord_length_distribution(a).shape == (2, 12)


# ----------------------------------------------------------------------------- local thickness


def test_local_thickness_of_a_slab_is_half_its_thickness():
    a = np.zeros((12, 10, 20), bool)
    a[:, :, 6:14] = True                                 # 8 thick: the array's other faces are not walls
    lt = M.local_thickness(a)
    assert np.all(lt[a] == 4) and np.all(lt[~a] == 0)
    psd = M.pore_size_distribution(a)
    assert psd.shape == (10,) and psd[3] == 1 and psd.sum() == 1
    assert M.mean_local_thickness(a) == 4


def test_local_thickness_of_balls_is_their_radius():
    a = ball((31, 31, 31), (15, 15, 15), 12)
    lt = M.local_thickness(a)
    assert np.mean(lt[a] == 12) > 0.99                   # the grid's tips (poles) read less
    assert M.mean_local_thickness(a) == pytest.approx(12, rel=0.01)
    two = ball((40, 40, 40), (12, 12, 12), 8) | ball((40, 40, 40), (30, 30, 30), 4)
    lt = M.local_thickness(two)
    assert np.mean(lt[ball((40, 40, 40), (12, 12, 12), 8)] == 8) > 0.98
    assert np.mean(lt[ball((40, 40, 40), (30, 30, 30), 4)] == 4) > 0.9
    assert M.local_thickness(np.ones((6, 8, 5), bool)).max() == 4        # a full array: r_max
    assert np.isnan(M.mean_local_thickness(np.zeros((6, 6), bool)))
    assert not M.pore_size_distribution(np.zeros((6, 6), bool)).any()


def _porespy_sweep(a):
    """porespy's local_thickness (mode 'dt', sizes r_max ... 1), plainly."""
    out = np.zeros(a.shape)
    dt = ndimage.distance_transform_edt(a)
    for r in range(int(min(dt.max(), M._max_radius(a.shape))), 0, -1):
        covered = ndimage.distance_transform_edt(dt < r) < r
        out[covered & (out == 0) & a] = r
    return out


@pytest.mark.parametrize("shape,sigma,quantile", [((24, 28, 20), 2.0, 0.5), ((24, 24, 24), 3.0, 0.3), ((48, 40), 3.0, 0.6)])
def test_local_thickness_is_porespy_sweep(shape, sigma, quantile):
    a = smooth_random(shape, 1, sigma, quantile)
    assert np.array_equal(M.local_thickness(a), _porespy_sweep(a))


# ----------------------------------------------------------------------------- Euler characteristic


def torus(shape, major, minor):
    z, y, x = np.ogrid[tuple(slice(0, n) for n in shape)]
    c = [(n - 1) / 2 for n in shape]
    rho = np.sqrt((y - c[1]) ** 2 + (x - c[2]) ** 2)
    return (rho - major) ** 2 + (z - c[0]) ** 2 <= minor ** 2


def test_euler_characteristic_of_balls_tori_shells_disks_annuli():
    solid = ball((30, 30, 30), (14.5, 14.5, 14.5), 10)
    assert M.euler_number(solid) == 1
    assert M.euler_number(torus((16, 34, 34), 11, 4)) == 0
    assert M.euler_number(solid & ~ball((30, 30, 30), (14.5, 14.5, 14.5), 6)) == 2
    assert M.euler_number(ball((30, 30, 30), (8, 8, 8), 5) | ball((30, 30, 30), (21, 21, 21), 5)) == 2
    disk = ball((40, 40), (19.5, 19.5), 14)
    assert M.euler_number(disk) == 1 and M.euler_number(disk & ~ball((40, 40), (19.5, 19.5), 7)) == 0
    assert M.euler_density(solid) == 1 / solid.size
    assert M.euler_density(torus((16, 34, 34), 11, 4)) == 0
    # the convention: the phase 26-connected (8 in 2D), its complement 6 (4)
    corner = np.zeros((4, 4, 4), bool)
    corner[1, 1, 1] = corner[2, 2, 2] = True
    assert M.euler_number(corner) == 1 and M.euler_number(corner, connectivity=1) == 2
    diag = np.eye(4, dtype=bool)
    assert M.euler_number(diag) == 1 and M.euler_number(diag, connectivity=1) == 4
    with pytest.raises(ValueError):
        M.euler_number(corner, connectivity=2)


def test_fixed_shapes_for_a_fixed_input_shape():
    for seed in range(3):
        a = np.random.default_rng(seed).random((10, 14, 12)) < 0.2 * (seed + 1)
        assert M.chord_length_distribution(a).shape == (3, 14)
        assert M.mean_chord_length(a).shape == (3,)
        assert M.pore_size_distribution(a).shape == (7,)
        assert isinstance(M.mean_local_thickness(a), float) and isinstance(M.euler_density(a), float)


# ----------------------------------------------------------------------------- transport


def test_missing_taufactor_is_a_usage_error(monkeypatch):
    from microdiff.metrics import transport as T
    monkeypatch.setitem(sys.modules, "taufactor", None)          # import taufactor raises ImportError
    with pytest.raises(UsageError, match=r"pip install 'microdiff\[transport\]'"):
        T.tortuosity(np.ones((4, 5, 6), bool) ^ (np.arange(6) == 2))


def test_tortuosity_of_straight_channels_and_layers():
    pytest.importorskip("taufactor")
    from microdiff.metrics import transport as T
    z, y, x = np.ogrid[:16, :16, :20]
    channels = np.broadcast_to((z % 4 < 2) & (y % 4 < 2), (16, 16, 20))         # 2 x 2 channels along x
    assert np.allclose(T.tortuosity(channels), [np.inf, np.inf, 1], rtol=1e-3)
    assert np.allclose(T.effective_diffusivity(channels), [0, 0, 0.25], rtol=1e-3)
    layers = np.broadcast_to(x % 5 < 3, (16, 16, 20))                           # layers normal to x, vf 0.6
    assert np.allclose(T.tortuosity(layers), [1, 1, np.inf], rtol=1e-3)
    assert np.allclose(T.effective_diffusivity(layers), [0.6, 0.6, 0], rtol=1e-3)
    assert np.array_equal(T.tortuosity(np.ones((6, 7, 8), bool)), [1, 1, 1])
    assert np.array_equal(T.tortuosity(np.zeros((6, 7, 8), bool)), [np.inf] * 3)
    assert np.array_equal(T.effective_diffusivity(np.zeros((6, 7, 8), bool)), [0, 0, 0])
    # 2D: channels along y
    stripes = np.broadcast_to(np.arange(12) % 3 == 0, (10, 12))
    assert np.allclose(T.tortuosity(stripes), [1, np.inf], rtol=1e-3)


def test_tortuosity_of_a_serpentine_is_its_squared_path_length_ratio():
    pytest.importorskip("taufactor")
    from microdiff.metrics import transport as T
    # a one-voxel-wide path across x: single voxels at even x, runs of 5 along y at odd x; a chain
    # of N voxels conducts 1/N between the faces (N - 1 bonds and two half bonds to the faces),
    # so D_eff / D = L / (N A) and tau = vf / (D_eff / D) = (N / L)^2, L = 7, A = 3 * 7
    a = np.zeros((3, 7, 7), bool)
    for x in range(7):
        if x % 2 == 0:
            a[1, 1 if x % 4 == 0 else 5, x] = True
        else:
            a[1, 1:6, x] = True
    n = a.sum()
    assert n == 19
    assert T.tortuosity(a)[2] == pytest.approx((n / 7) ** 2, rel=1e-3)
    assert T.effective_diffusivity(a)[2] == pytest.approx(7 / (n * 21), rel=1e-3)
    assert np.array_equal(T.tortuosity(a)[:2], [np.inf, np.inf])
    # the same path with isolated specks and a dead end: unchanged D_eff, tau over the whole vf
    b = a.copy()
    b[0, 3, 0] = b[0, 0, 6] = True                     # specks: one on a face, one in a corner
    b[2, 3, 3] = True                                  # a dead end off the path
    assert T.effective_diffusivity(b)[2] == pytest.approx(7 / (n * 21), rel=1e-3)
    assert T.tortuosity(b)[2] == pytest.approx(b.mean() / (7 / (n * 21)), rel=1e-3)


def test_tortuosity_agrees_with_taufactor_on_a_random_structure():
    taufactor = pytest.importorskip("taufactor")
    import contextlib
    import io
    from microdiff.metrics import transport as T
    a = smooth_random((24, 20, 22), 2, 2.0, 0.45)
    tau = T.tortuosity(a)
    assert np.all(np.isfinite(tau)) and np.all(tau > 1)
    for axis in range(3):
        s = taufactor.Solver(np.ascontiguousarray(np.moveaxis(a, axis, 0), dtype=np.uint8), device="cpu")
        with contextlib.redirect_stdout(io.StringIO()):
            s.solve(verbose=False)
        assert tau[axis] == pytest.approx(float(s.tau[0]), rel=5e-3)
    assert np.allclose(T.effective_diffusivity(a), a.mean() / tau)
    assert math.isclose(T.tortuosity(a, conv_crit=1e-3)[0], tau[0], rel_tol=5e-3)


def test_missing_scikit_image_is_a_usage_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "skimage.measure", None)
    with pytest.raises(UsageError, match="pip install scikit-image"):
        M.euler_density(np.ones((4, 4), bool))
