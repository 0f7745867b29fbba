"""Descriptors of multi-phase label maps (``metrics.phases``) against closed forms: the fractions,
the cross-correlations S2_ij (their values at 0, symmetry, sum rule, the one-phase S2 of
``volume``), interface densities of slabs, triple-phase boundaries of straight lines and the
thin-layer share; and their registry entries."""
import numpy as np
import pytest

from microdiff.metrics import phases as P
from microdiff.metrics import volume as V
from microdiff.metrics.registry import REGISTRY, get, names, register


def _random(shape, k, seed=0):
    return np.random.default_rng(seed).integers(0, k, size=shape)


# ----------------------------------------------------------------------------- fractions


def test_fractions_sum_to_one_and_count_each_phase():
    lab = _random((12, 15), 3)
    f = P.phase_fractions_all(lab)
    assert f.shape == (3,) and f.sum() == pytest.approx(1.0)
    assert np.allclose(f, [(lab == k).mean() for k in range(3)])
    assert np.allclose(P.phase_fractions_all(lab, phases=5)[3:], 0)
    assert P.phase_fractions_all(np.zeros((4, 4), int)).tolist() == [1.0, 0.0]      # at least 2 phases


def test_label_maps_are_checked():
    with pytest.raises(ValueError):
        P.phase_fractions_all(np.full((3, 3), -1))
    with pytest.raises(ValueError):
        P.phase_fractions_all(np.full((3, 3), 3), phases=3)
    with pytest.raises(ValueError):
        P.phase_fractions_all(np.full((3, 3), 0.5))
    with pytest.raises(ValueError):
        P.phase_fractions_all(np.zeros(5, int))
    assert P.phase_fractions_all(np.array([[0.0, 1.0], [1.0, 1.0]])).tolist() == [0.25, 0.75]


# ----------------------------------------------------------------------------- S2


@pytest.mark.parametrize("shape", [(16, 20), (8, 10, 12)])
def test_cross_s2_of_one_phase_is_volume_s2_exactly(shape):
    lab = _random(shape, 3, seed=1)
    for i in range(3):
        assert np.array_equal(P.cross_s2(lab, i, i), V.s2(lab == i))
        for periodic in (False, True):
            assert np.array_equal(P.cross_s2_along(lab, i, i, periodic=periodic),
                                  V.s2_along(lab == i, periodic=periodic))


@pytest.mark.parametrize("shape", [(24, 24), (10, 12, 14)])
def test_two_phases_s2_at_zero(shape):
    lab = _random(shape, 2, seed=2)
    f = P.phase_fractions_all(lab)
    rows = P.s2_all(lab)                                   # S2_00, S2_11, S2_01
    r = min(shape) // 2
    assert rows.shape == ((3, r) if len(shape) == 2 else (3, 4, r))
    assert np.allclose(rows[0][..., 0], f[0]) and np.allclose(rows[1][..., 0], f[1])
    assert np.allclose(rows[2][..., 0], 0, atol=1e-12)
    assert np.array_equal(rows[2], P.cross_s2(lab, 0, 1))
    swapped = P.cross_s2(lab, 1, 0)
    radial = (...,) if len(shape) == 2 else (3,)
    assert np.allclose(rows[2][radial], swapped[radial])     # the radial average is symmetric in i, j
    # two phases: S2_01 = f_0 - S2_00 along any offset, so the radial ones too (periodic image)
    if len(shape) == 2:
        assert np.allclose(rows[2], f[0] - rows[0])


def test_s2_all_rows_follow_phase_pairs():
    lab = _random((12, 12), 4, seed=3)
    rows = P.s2_all(lab)
    pairs = P.phase_pairs(4)
    assert pairs == [(0, 1), (0, 2), (0, 3), (1, 2), (1, 3), (2, 3)] and rows.shape == (10, 6)
    for p, (i, j) in enumerate(pairs):
        assert np.allclose(rows[4 + p], P.cross_s2(lab, i, j))


def test_periodic_cross_s2_is_symmetric_under_swap_and_reflection():
    lab = _random((10, 14), 3, seed=4)
    flip = np.roll(np.flip(P.cross_s2_map(lab, 2, 0), axis=(0, 1)), 1, axis=(0, 1))   # S2_20(-d)
    m = P.cross_s2_map(lab, 0, 2)
    assert np.array_equal(m, flip)                                                      # S2_02(d) = S2_20(-d)
    assert m[0, 0] == 0 and P.cross_s2_map(lab, 1, 1)[0, 0] == pytest.approx((lab == 1).mean())
    along = P.cross_s2_along(lab, 0, 2, periodic=True)
    assert np.allclose(along[0], m[:5, 0]) and np.allclose(along[1], m[0, :5])
    # the sum over the second phase is the fraction of the first, at every offset
    total = sum(P.cross_s2_map(lab, 1, j) for j in range(3))
    assert np.allclose(total, (lab == 1).mean())


def test_bounded_cross_s2_map_counts_the_pairs_inside():
    lab = _random((6, 7, 5), 3, seed=5)
    m = P.cross_s2_map(lab, 1, 2)
    assert m.shape == (12, 14, 10)
    for d in [(1, 0, 0), (0, -2, 3), (-5, 6, -4), (2, 3, 1)]:
        lo = lab[tuple(slice(max(0, -x), n - max(0, x)) for x, n in zip(d, lab.shape))]
        hi = lab[tuple(slice(max(0, x), n - max(0, -x)) for x, n in zip(d, lab.shape))]
        assert m[d] == pytest.approx(np.mean((lo == 1) & (hi == 2)))
    assert np.isnan(m[-6, 0, 0])                         # an offset no pair has


def test_radial_cross_s2_of_an_image_by_brute_force():
    lab = _random((8, 10), 3, seed=6)
    mi, mj = lab == 0, lab == 2
    r = 4
    num, den = np.zeros(r), np.zeros(r)
    for dy in range(8):
        for dx in range(10):
            b = int(np.round(np.hypot(min(dy, 8 - dy), min(dx, 10 - dx))))
            if b < r:
                num[b] += np.mean(mi & np.roll(mj, (-dy, -dx), axis=(0, 1)))
                den[b] += 1
    assert np.allclose(P.cross_s2(lab, 0, 2), num / den)
    assert np.allclose(P.cross_s2(lab, 2, 0), num / den)


def test_radial_cross_s2_of_a_volume_pools_the_pairs():
    lab = _random((6, 8, 7), 3, seed=7)
    m = P.cross_s2_map(lab, 1, 2)
    n = np.array(lab.shape)
    d = [np.where(np.arange(2 * k) < k, np.arange(2 * k), np.arange(2 * k) - 2 * k) for k in n]
    dz, dy, dx = np.meshgrid(*d, indexing="ij")
    pairs = np.prod([np.maximum(k - np.abs(x), 0) for k, x in zip(n, (dz, dy, dx))], axis=0)
    bins = np.round(np.sqrt(dz ** 2 + dy ** 2 + dx ** 2)).astype(int)
    keep = pairs > 0
    r = 3
    expect = [np.sum((m * pairs)[keep & (bins == b)]) / np.sum(pairs[keep & (bins == b)]) for b in range(r)]
    got = P.cross_s2(lab, 1, 2)
    assert got.shape == (4, r) and np.allclose(got[3], expect)
    assert np.allclose(got[:3], P.cross_s2_along(lab, 1, 2, periodic=False))


# ----------------------------------------------------------------------------- interfaces


def test_interfaces_of_two_phases_are_specific_surface():
    vol = _random((8, 9, 10), 2, seed=8)
    assert P.interface_density(vol)[0, 1] == V.specific_surface(vol == 1)
    img = _random((20, 24), 2, seed=9)
    assert P.interface_density(img, periodic=False)[0, 1] == V.specific_surface(img == 1)


def test_interfaces_of_slabs_in_closed_form():
    z, y, x = 4, 5, 12
    vol = np.zeros((z, y, x), int)
    vol[..., 4:8], vol[..., 8:] = 1, 2                    # 0 | 1 | 2 along x
    s = P.interface_density(vol)
    per = 2 * (1 / (x - 1)) / 3                           # one face per line of x - 1 pairs, 1 axis of 3
    assert np.allclose(s, [[0, per, 0], [per, 0, per], [0, per, 0]])
    assert np.allclose(s.sum(1), [V.specific_surface(vol == k) for k in range(3)])
    img = np.zeros((6, 10), int)
    img[:, 5:] = 1                                        # periodic: two interfaces per row of 10 pairs
    assert P.interface_density(img)[0, 1] == pytest.approx(2 * np.mean([0, 2 / 10]))
    assert P.interface_density(img, periodic=False)[0, 1] == pytest.approx(2 * np.mean([0, 1 / 9]))


# ----------------------------------------------------------------------------- triple-phase boundary


def _split(z=6, y=8, x=10):
    """0 for x < X/2; the rest 1 for y < Y/2, else 2: TPB a straight line along z of length Z."""
    vol = np.zeros((z, y, x), int)
    vol[:, : y // 2, x // 2:] = 1
    vol[:, y // 2:, x // 2:] = 2
    return vol


def test_tpb_of_a_straight_line():
    vol = _split()
    assert P.triple_phase_boundary_density(vol) == pytest.approx(6 / (6 * 8 * 10))
    assert P.triple_phase_boundary_density(vol, 2, 0, 1) == pytest.approx(6 / (6 * 8 * 10))
    assert P.triple_phase_boundary_density(vol, stereological=True) == pytest.approx(2 / 3 * 6 / (6 * 8 * 10))
    slabs = np.zeros((4, 4, 9), int)
    slabs[..., 3:6], slabs[..., 6:] = 1, 2
    assert P.triple_phase_boundary_density(slabs) == 0.0
    with pytest.raises(ValueError):
        P.triple_phase_boundary_density(vol, 0, 1, 1)


def test_tpb_of_a_bent_line():
    """Phase 1 only where also z < Z/2: the TPB runs along z for z < Z/2, then along y for
    y < Y/2 at z = Z/2: length Z/2 + Y/2."""
    z, y, x = 6, 8, 10
    vol = _split(z, y, x)
    vol[z // 2:, : y // 2, x // 2:] = 2
    assert P.triple_phase_boundary_density(vol) == pytest.approx((z // 2 + y // 2) / (z * y * x))


def test_triple_points_of_an_image():
    img = _split(1, 8, 10)[0]
    # periodic: the junction, its images across the x wrap and the y wrap, and across both
    assert P.triple_phase_boundary_density(img) == pytest.approx(4 / 80)
    assert P.triple_phase_boundary_density(img, periodic=False) == pytest.approx(1 / 80)


# ----------------------------------------------------------------------------- between


def _sheet(thick, z=4, y=5):
    """0 | ``thick`` voxels of 1 | 2 along x, 6 voxels of 0 and of 2."""
    return np.concatenate([np.zeros((z, y, 6), int), np.ones((z, y, thick), int), np.full((z, y, 6), 2)], axis=2)


def test_between_fraction_of_sheets():
    assert P.between_fraction(_sheet(1)) == 1.0
    assert P.between_fraction(_sheet(2)) == 1.0
    assert P.between_fraction(_sheet(3)) == 0.0
    assert P.between_fraction(_sheet(3), max_run=3) == 1.0
    assert P.between_fraction(_sheet(10)) == 0.0
    both = np.concatenate([_sheet(1), _sheet(10)], axis=2)    # 1 voxel of 11 per line is between
    assert P.between_fraction(both) == pytest.approx(1 / 11)
    same = _sheet(1)
    same[same == 2] = 0                                        # 0 | 1 | 0: no second phase
    assert P.between_fraction(same) == 0.0
    assert np.isnan(P.between_fraction(np.zeros((3, 3, 3), int)))
    with pytest.raises(ValueError):
        P.between_fraction(_sheet(1), middle=0)


def test_between_fraction_of_an_image_wraps():
    row = np.array([0, 0, 0, 0, 1, 2, 2, 2, 2, 1])            # the last 1 sits between 2 and 0 across the wrap
    img = np.tile(row, (6, 1))
    assert P.between_fraction(img) == 1.0
    assert P.between_fraction(img, periodic=False) == 0.5
    assert P.between_fraction(img.T) == 1.0                   # along the other axis


# ----------------------------------------------------------------------------- registry


def test_registered_label_descriptors():
    assert names(reads="labels") == ("fractions", "s2_phases", "interfaces", "tpb", "between")
    assert not set(names(reads="labels")) & set(V.describe(np.ones((4, 4), bool)))
    for lab in (_random((12, 12), 3, seed=10), _random((6, 8, 8), 3, seed=11)):
        for name in names(reads="labels"):
            value = np.asarray(get(name, lab.ndim).hard_form()(lab), dtype=np.float64)
            assert np.all(np.isfinite(value)), name
    assert REGISTRY["interfaces"].hard_form() is P.interface_density
    with pytest.raises(ValueError):
        register("test_phases_bad_kind", (2,), "voxels", "phases:phase_fractions_all")
    assert "test_phases_bad_kind" not in REGISTRY
