"""Issue 10: 3D volumes from a 2D model. Closed forms for the 3D descriptors, the known truth of
the synthetic 3D kinds, the plane-by-plane sampler on the exact denoiser of Gaussian data, and
the output contract of ``sample3d`` on tiny volumes (files read back by independent readers)."""
import json
import math

import numpy as np
import pytest
import torch

from microdiff.cli import main
from microdiff.denoise.denoiser import GaussianDenoiser, bind_labels
from microdiff.diffusion import Diffusion, NoiseSource, respace, sample_ancestral, sample_dpmpp_2m
from microdiff.denoise import PlanarVolumeDenoiser
from microdiff.metrics import volume as V
from microdiff.targets import VolumeFraction

from helpers import tiny_config

# ----------------------------------------------------------------------------- descriptors


def test_s2_along_axes_of_layers_and_brute_force():
    z = np.arange(24)
    layers = np.broadcast_to(((z // 3) % 2 == 0)[:, None, None], (24, 10, 12))   # period 6 along z, vf 1/2
    s2 = V.s2_along(layers, max_radius=7)
    # along z: triangle wave of period 6 (exact for the non-periodic estimator only up to edge
    # effects, so compare with the periodic one); across the layers: the volume fraction
    assert np.allclose(V.s2_along(layers, 7, periodic=True)[0], [0.5 * (1 - min(r % 6, 6 - r % 6) / 3) for r in range(7)])
    assert np.allclose(s2[1], 0.5) and np.allclose(s2[2], 0.5)
    rng = np.random.default_rng(0)
    a = rng.random((9, 8, 7)) < 0.3
    brute = [[np.mean([a[i, j, k] & a[i + r, j, k] for i in range(9 - r) for j in range(8) for k in range(7)])
              for r in range(4)]]
    assert np.allclose(V.s2_along(a, 4)[0], brute[0])


def test_s2_radial_iid_sphere_and_2d_agreement():
    rng = np.random.default_rng(1)
    a = rng.random((32, 32, 32)) < 0.3
    s2 = V.s2_radial(a, 8)
    assert s2[0] == pytest.approx(a.mean())
    assert np.allclose(s2[1:], a.mean() ** 2, atol=0.004)         # uncorrelated voxels
    # the periodic 2D radial S2 against a brute-force average over the offsets of each bin
    b = rng.random((20, 20)) < 0.4
    dy, dx = np.meshgrid(np.arange(20), np.arange(20), indexing="ij")
    dist = np.rint(np.hypot(np.minimum(dy, 20 - dy), np.minimum(dx, 20 - dx))).astype(int)
    brute = [np.mean([np.mean(b & np.roll(b, (-i, -j), (0, 1))) for i, j in zip(*np.nonzero(dist == r))])
             for r in range(8)]
    assert np.allclose(V.s2_radial(b, 8, periodic=True), brute)


def _ball(n, radius, centre=None):
    c = (n - 1) / 2 if centre is None else centre
    z, y, x = np.ogrid[:n, :n, :n]
    return (z - c) ** 2 + (y - c) ** 2 + (x - c) ** 2 <= radius ** 2


def test_specific_surface_of_a_ball_and_clusters():
    n, r = 48, 14.0
    ball = _ball(n, r)
    assert V.specific_surface(ball) == pytest.approx(4 * math.pi * r ** 2 / n ** 3, rel=0.03)
    two = _ball(40, 6, 10) | _ball(40, 9, 27)                     # two separate balls
    small, big = _ball(40, 6, 10).sum(), _ball(40, 9, 27).sum()
    assert V.largest_cluster_fraction(two) == pytest.approx(big / (small + big))
    column = np.zeros((20, 20, 20), bool)
    column[:, 8:11, 8:11] = True
    assert V.percolates(column) == [True, False, False]
    assert V.percolates(np.ones((5, 5, 5), bool)) == [True, True, True]
    d = V.describe(column)                                   # every registered phase descriptor, by name
    assert d["vf"] == pytest.approx(9 / 400) and d["cluster"] == 1.0 and d["axes"] == ["z", "y", "x"]
    assert json.loads(json.dumps(d))["percolation"] == [1.0, 0.0, 0.0]


# ----------------------------------------------------------------------------- synthetic truth

def test_grf_volumes_isotropic_with_the_asked_fraction():
    from microdiff.data.synth3d import grf_volume
    vols = [grf_volume(np.random.default_rng(s), 48, 0.4).labels for s in range(6)]
    assert np.mean([v.mean() for v in vols]) == pytest.approx(0.4, abs=0.03)
    s2 = np.mean([V.s2_along(v, 10, periodic=True) for v in vols], axis=0)
    assert np.abs(s2 - s2.mean(0)).max() < 0.01                   # the same along z, y and x
    assert s2[:, 9].mean() < 0.4 * 0.4 + 0.03                     # decorrelated by 10 voxels


def test_fiber_volume_continuous_along_z_and_exact_content():
    from microdiff.data.synth3d import fiber_volume
    vol = fiber_volume(np.random.default_rng(0), 48, 0.5)
    lab = vol.labels
    assert vol.coverage.mean() == pytest.approx(0.5, abs=0.01)
    s2 = V.s2_along(lab, 20)
    assert np.allclose(s2[0], lab.mean())                          # fibers run through the whole length
    assert s2[1, 5] < 0.8 * lab.mean() and s2[2, 5] < 0.8 * lab.mean()
    assert V.percolates(lab)[0]


def test_synth_3d_cli_writes_sections_and_truth(tmp_path):
    out = tmp_path / "f"
    assert main(["synth", "fiber3d", "--out", str(out), "--size", "32", "--per-class", "6", "--volumes", "2"]) == 0
    from microdiff.data.io import list_class_images
    classes = list_class_images(out / "slices")
    assert {k: len(v) for k, v in classes.items()} == {"cross": 6, "longitudinal": 6}
    lab = np.load(out / "volumes" / "0001_labels.npy")
    assert lab.shape == (32, 32, 32) and lab.dtype == np.uint8
    import csv
    rows = list(csv.DictReader(open(out / "slices" / "manifest.csv")))
    assert {r["normal"] for r in rows if r["class"] == "cross"} == {"z"}
    assert {r["normal"] for r in rows if r["class"] == "longitudinal"} <= {"x", "y"}
    again = tmp_path / "g"
    main(["synth", "fiber3d", "--out", str(again), "--size", "32", "--per-class", "6", "--volumes", "2"])
    assert np.array_equal(np.load(again / "volumes" / "0001_labels.npy"), lab)
    # the fibres' sections keep their orientation (bands along z): training takes no quarter turns
    from microdiff.config import apply_overrides, get_preset
    from microdiff.train.runs import adopt_orientation
    assert json.loads((out / "slices" / "dataset.json").read_text())["orientation"] == "fixed"
    cfg, note = adopt_orientation(get_preset("cpu"), out / "slices")
    assert cfg.train.augment == "flips" and "flips" in note
    kept = apply_overrides(get_preset("cpu"), ["train.augment=none"])
    assert adopt_orientation(kept, out / "slices") == (kept, None)              # a choice of no augmentation stays


def test_flips_keep_an_images_rows_as_rows():
    """train.augment = flips: the elements drawn are the identity, the half turn and the two
    mirrors, under which bands along the rows stay along the rows (a quarter turn lays them across)."""
    from microdiff.config.settings import AUGMENTS
    from microdiff.data.transforms import AUGMENT_ELEMENTS, dihedral
    from microdiff.train.steps import step_randomness
    assert tuple(AUGMENT_ELEMENTS) == AUGMENTS
    bands = np.zeros((8, 8))
    bands[:, ::3] = 1                                                          # bands down the columns
    drawn = step_randomness(0, 5, 4096, (1, 2, 2), 10, 0.0, "flips")["dihedral"]
    assert set(drawn.tolist()) == {0, 2, 4, 6}
    for k in range(8):
        along = dihedral(bands, k).std(0).sum() == 0 and dihedral(bands, k).std(1).sum() > 0
        assert along == (k in AUGMENT_ELEMENTS["flips"])
    every = step_randomness(0, 5, 4096, (1, 2, 2), 10, 0.0, "dihedral")["dihedral"]
    assert set(every.tolist()) == set(range(8))
    assert set(step_randomness(0, 5, 64, (1, 2, 2), 10, 0.0, "none")["dihedral"].tolist()) == {0}


# ----------------------------------------------------------------------------- the sampler, analytic

M, S = 0.3, 0.2


def _planes(den):
    from microdiff.denoise import ChunkedDenoiser
    return [ChunkedDenoiser(den, 7) for _ in range(3)]


@pytest.mark.parametrize("mode", ["alternate", "fuse", "product"])
def test_plane_denoiser_reproduces_gaussian_data(mode):
    """For i.i.d. voxels every mode is the exact denoiser (product: with that prior divided out)."""
    base = Diffusion.from_config("linear", 1000)
    v = torch.linspace(M - 8 * S, M + 8 * S, 3201, dtype=torch.float64)
    gauss = (v, torch.exp(-(v - M) ** 2 / (2 * S ** 2)))                  # the data's marginal, discretised
    vol = PlanarVolumeDenoiser(_planes(GaussianDenoiser(base, M, S)), mode, prior=gauss)
    n = 3
    noise = NoiseSource(range(n))
    x = noise.randn((1, 20, 18, 16), dtype=torch.float64)
    y = torch.zeros(n, 3, dtype=torch.long)
    out = sample_dpmpp_2m(bind_labels(vol, y), x, respace(base, 25, "logsnr"), noise, clip_denoised=False)
    assert out.shape == (n, 1, 20, 18, 16)
    assert float(out.mean()) == pytest.approx(M, abs=0.01)
    assert float(out.std()) == pytest.approx(S, rel=0.03)


def test_product_with_rank_mapped_levels_reproduces_gaussian_data():
    """The product's x0 rank-mapped at every step onto the x0 that 2D samples of the same
    "model" had at that step (``VoxelPrior.levels``, as ``voxel_marginal`` records them): for
    i.i.d. voxels still the data's mean and spread."""
    from microdiff.denoise import VoxelPrior
    base = Diffusion.from_config("linear", 1000)
    den = GaussianDenoiser(base, M, S)
    walk = respace(base, 25, "logsnr")
    levels = {}

    def record(i, x_t, x0):
        levels[int(walk.timesteps_at(i, x0)[0])] = x0.flatten().sort().values
    noise2d = NoiseSource(range(100, 108))
    sample_dpmpp_2m(bind_labels(den, torch.zeros(8, dtype=torch.long)), noise2d.randn((1, 32, 32), dtype=torch.float64),
                    walk, noise2d, clip_denoised=False, callback=record)
    assert len(levels) == 25
    v = torch.linspace(M - 8 * S, M + 8 * S, 801, dtype=torch.float64)
    prior = VoxelPrior(v, torch.exp(-(v - M) ** 2 / (2 * S ** 2)), levels)
    vol = PlanarVolumeDenoiser(_planes(den), "product", prior=prior)
    noise = NoiseSource(range(3))
    out = sample_dpmpp_2m(bind_labels(vol, torch.zeros(3, 3, dtype=torch.long)),
                          noise.randn((1, 20, 18, 16), dtype=torch.float64), walk, noise, clip_denoised=False)
    assert float(out.mean()) == pytest.approx(M, abs=0.01)
    assert float(out.std()) == pytest.approx(S, rel=0.03)


def test_product_refuses_levels_of_another_schedule_and_old_folders_are_not_resumed(tiny, tmp_path):
    from microdiff.denoise import VoxelPrior
    from microdiff.core.errors import UsageError
    base = Diffusion.from_config("linear", 1000)
    v = torch.linspace(-1, 1, 11, dtype=torch.float64)
    vol = PlanarVolumeDenoiser(_planes(GaussianDenoiser(base, M, S)), "product",
                               prior=VoxelPrior(v, torch.ones(11), {5: v}))
    x = torch.zeros(1, 1, 4, 4, 4, dtype=torch.float64)
    with pytest.raises(ValueError, match="other timesteps"):
        vol(x, torch.full((1,), 7), torch.zeros(1, 3, dtype=torch.long))
    out = tmp_path / "v"
    assert _sample3d(tiny, out, "--class", "a") == 0
    run = json.loads((out / "sample3d.json").read_text())
    assert run["method"].startswith("evidence 1")
    del run["method"]                                                     # a folder of an earlier version
    (out / "sample3d.json").write_text(json.dumps(run))
    with pytest.raises(UsageError, match="earlier version of the product of planes"):
        from microdiff.generate.pipeline import load_pipeline
        from microdiff.generate import sample3d_to_folder
        sample3d_to_folder(load_pipeline(tiny), out, class_name="a", steps=3, sampler="dpmpp", guidance=1.5,
                           resume=True, show_progress=False)


def test_smooth_along_is_a_normalised_gaussian_along_one_axis():
    """A unit impulse becomes the sampled Gaussian of that std along the axis only (the others
    untouched); a constant stays constant (ends replicated); periodic ends wrap the kernel round."""
    from microdiff.denoise.volume import smooth_along
    x = torch.zeros(1, 1, 15, 5, 5, dtype=torch.float64)
    x[0, 0, 7, 2, 2] = 1
    for std, r in ((0.7, 3), (1.0, 3), (2.0, 6)):                  # the kernel's radius: ceil(3 std)
        out = smooth_along(x, 0, std)
        k = torch.exp(-torch.arange(-7, 8, dtype=torch.float64) ** 2 / (2 * std * std))
        k[torch.arange(-7, 8).abs() > r] = 0
        assert torch.allclose(out[0, 0, :, 2, 2], k / k.sum(), atol=1e-12)
        assert float(out.sum()) == pytest.approx(1) and float(out[0, 0, :, 2].abs().sum() - out[0, 0, :, 2, 2].sum()) == 0
        assert torch.allclose(smooth_along(torch.full((2, 1, 4, 3, 6), 0.3), 2, std), torch.full((2, 1, 4, 3, 6), 0.3))
    edge = torch.zeros(1, 1, 3, 8, 3)
    edge[0, 0, :, 0] = 1
    wrapped = smooth_along(edge, 1, 1.0, periodic=True)[0, 0, 1, :, 1]
    assert float(wrapped[7]) == pytest.approx(float(wrapped[1])) and float(wrapped.sum()) == pytest.approx(1)
    assert torch.equal(smooth_along(edge, 1, 0.0), edge)


def test_the_normal_width_fades_with_the_noise_level():
    """fade f: the width times max(floor, s^2 / (s^2 + f^2)), s = sigma / alpha; 0: the width at
    every step. Gray volumes fade by NORMAL_FADE down to NORMAL_FLOOR, phase volumes by PHASE_NORMAL_FADE."""
    import microdiff.denoise.volume as V
    vol = V.PlanarVolumeDenoiser([None] * 3, "product", normal_std=1.5)
    alpha, sigma = torch.tensor([0.6]), torch.tensor([0.8])                     # s = 4/3
    assert vol.width(alpha, sigma, 0.0) == 1.5
    assert vol.width(alpha, sigma, 2.0) == pytest.approx(1.5 * (16 / 9) / (16 / 9 + 4))
    assert vol.width(torch.tensor([1.0]), torch.tensor([1e-4]), 1.0) == pytest.approx(1.5e-8, rel=1e-6)
    assert vol.width(torch.tensor([1e-3]), torch.tensor([1.0]), 1.0) == pytest.approx(1.5, rel=1e-5)
    assert vol.width(torch.tensor([1.0]), torch.tensor([1e-4]), 1.0, 0.3) == pytest.approx(1.5 * 0.3)   # the floor
    assert vol.width(alpha, sigma, 2.0, 0.3) == pytest.approx(1.5 * (16 / 9) / (16 / 9 + 4))         # above it
    assert vol.width(alpha, sigma, 0.0, 0.3) == 1.5
    assert (V.NORMAL_FADE, V.PHASE_NORMAL_FADE, V.NORMAL_FLOOR) == (1.0, 0.05, 0.0)



def test_a_floor_under_the_width_is_recorded_so_resume_refuses_other_volumes(monkeypatch):
    """product_method: the text is the fade's alone at the default floor 0 (folders made before the
    setting existed resume), and names the floor when a screen sets one; phase volumes never take it."""
    import microdiff.denoise.volume as DV
    from microdiff.generate.volumes import product_method
    base, phase = product_method(), product_method(phases=True)
    assert "times s^2 / (s^2 + 1^2))" in base and "max(" not in base
    monkeypatch.setattr(DV, "NORMAL_FLOOR", 0.8)
    assert "times max(0.8, s^2 / (s^2 + 1^2)))" in product_method() and product_method(phases=True) == phase


def test_gray_volumes_fade_the_width_and_phase_volumes_only_at_the_end(monkeypatch):
    """The product passes the faded width to the gray rule's smoothing and the barely faded one
    to the phase rule's, at the step's own s = sigma / alpha."""
    import microdiff.denoise.volume as DV
    widths = {}

    def smooth_spy(x, axis, std, periodic=False):
        widths["gray"] = std
        return x

    def phase_spy(x0s, fractions, normal_std, periodic):
        widths["phase"] = normal_std
        return x0s[0]
    monkeypatch.setattr(DV, "smooth_along", smooth_spy)
    monkeypatch.setattr(DV, "phase_product", phase_spy)
    base = Diffusion.from_config("linear", 1000)
    t = torch.full((1,), 400)
    x = torch.zeros(1, 1, 4, 4, 4, dtype=torch.float64)
    v = torch.linspace(-1, 1, 11, dtype=torch.float64)
    gray = PlanarVolumeDenoiser(_planes(GaussianDenoiser(base, M, S)), "product", prior=(v, torch.ones(11)))
    alpha, sigma = gray.coefficients(t, x)
    s2 = float(sigma / alpha) ** 2
    gray.product_x0(x, t, [x] * 3)
    phase = PlanarVolumeDenoiser(_planes(GaussianDenoiser(base, M, S)), "product",
                                 prior=DV.PhasePrior(torch.tensor([0.5, 0.5])))
    phase.product_x0(x.repeat(1, 2, 1, 1, 1), t, [x.repeat(1, 2, 1, 1, 1)] * 3)
    assert widths["gray"] == pytest.approx(DV.NORMAL_STD * max(DV.NORMAL_FLOOR, s2 / (s2 + DV.NORMAL_FADE ** 2)))
    assert 0 < s2 < 10
    assert widths["phase"] == pytest.approx(DV.NORMAL_STD * s2 / (s2 + DV.PHASE_NORMAL_FADE ** 2))
    assert widths["phase"] > 0.99 * DV.NORMAL_STD                                # nearly full at this noise

def test_normal_smoothing_brings_the_planes_sum_towards_the_3d_filter():
    """The product's rationale in the high-noise limit, where the posterior mean of a Gaussian
    field is its covariance C applied to x_t: each plane applies C within its plane only, and the
    three planes' evidence (self divided out twice) add to C on three orthogonal planes, which
    passes sheet modes. Smoothed along each normal with NORMAL_STD, the sum's shape (cosine
    against C) comes close to C's for a correlation length of 1.5 voxels."""
    from microdiff.denoise.volume import NORMAL_STD, smooth_along
    n, c, ell = 25, 12, 1.5
    z, y, x = torch.meshgrid(*[torch.arange(n, dtype=torch.float64) - c] * 3, indexing="ij")
    cov = torch.exp(-(x * x + y * y + z * z) / (2 * ell * ell))[None, None]

    def planes_sum(std):
        total = cov.new_zeros(cov.shape)
        total[..., c, c, c] = cov[..., c, c, c]
        for a in range(3):
            ev = cov.new_zeros(cov.shape)
            idx = [slice(None)] * 5
            idx[2 + a] = c
            ev[tuple(idx)] = cov[tuple(idx)]
            ev[..., c, c, c] = 0
            total = total + smooth_along(ev, a, std)
        return total

    def cosine(f):
        return float((f * cov).sum() / (f.norm() * cov.norm()))
    assert cosine(planes_sum(0.0)) < 0.85 and cosine(planes_sum(NORMAL_STD)) > 0.98


def test_rank_map_keeps_the_order_and_takes_the_levels():
    from microdiff.denoise import rank_map
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 1, 6, 5, 4, generator=g)
    levels = torch.rand(1000, generator=g).sort().values
    out = rank_map(x, levels)
    for b in range(2):
        assert torch.equal(out[b].flatten().argsort(), x[b].flatten().argsort())      # same spatial order
        want = levels[torch.linspace(0, 999, 120).round().long()]
        assert torch.equal(out[b].flatten().sort().values, want)                     # the levels' distribution


def test_marginal_denoiser_is_the_posterior_mean_of_its_prior():
    """Closed forms: a Gaussian marginal gives the Wiener estimate; two atoms give a tanh."""
    from microdiff.denoise import marginal_denoiser
    x = torch.linspace(-2, 2, 41, dtype=torch.float64).view(1, 41)
    a, s = torch.tensor([0.8]), torch.tensor([0.6])
    v = torch.linspace(M - 8 * S, M + 8 * S, 4001, dtype=torch.float64)
    got = marginal_denoiser(x, a, s, v, torch.exp(-(v - M) ** 2 / (2 * S ** 2)), chunk=7)
    wiener = M + 0.8 * S ** 2 / (0.64 * S ** 2 + 0.36) * (x - 0.8 * M)
    assert torch.allclose(got, wiener, atol=1e-6)
    two = marginal_denoiser(x, a, s, torch.tensor([-0.5, 0.5]), torch.tensor([0.5, 0.5]))
    assert torch.allclose(two, 0.5 * torch.tanh(0.8 * 0.5 * x / 0.36), atol=1e-12)


def test_marginal_denoiser_on_its_grid_is_the_exact_one():
    """A volume's worth of voxels takes the posterior mean on a grid over its range, linearly
    interpolated: within 1e-4 of the voxel-by-voxel softmax at every noise level, for a bimodal
    marginal (steepest at low noise, where the mean jumps between the two phases)."""
    from microdiff.denoise import marginal_denoiser
    g = torch.Generator().manual_seed(0)
    v = torch.linspace(-1, 1, 128, dtype=torch.float64)
    w = torch.rand(128, generator=g, dtype=torch.float64) ** 8
    w[0], w[-1] = w[0] + 5, w[-1] + 30
    for s in (0.01, 0.03, 0.1, 0.3, 0.6, 0.9, 0.999):
        a = (1 - s * s) ** 0.5
        x0 = torch.where(torch.rand(2, 1, 40, 40, 40, generator=g) < 0.8, 1.0, -1.0)
        x = a * x0 + s * torch.randn(x0.shape, generator=g)
        alpha, sigma = torch.tensor([a, a]), torch.tensor([s, s])
        got = marginal_denoiser(x, alpha, sigma, v, w, grid=4097)
        assert torch.allclose(got, marginal_denoiser(x, alpha, sigma, v, w, grid=0), atol=1e-4, rtol=0)


def test_plane_denoiser_learned_variance_and_ancestral():
    """The variance channels go through the planes too: with the elementwise exact denoiser, the
    ancestral sampler on a volume equals it applied to the volume directly."""
    base = Diffusion.from_config("linear", 200)
    den = GaussianDenoiser(base, M, S, variance=-0.5)
    runs = []
    for model in (PlanarVolumeDenoiser(_planes(den), "fuse"), den):
        noise = NoiseSource(range(2))
        x = noise.randn((1, 12, 10, 8), dtype=torch.float64)
        runs.append(sample_ancestral(bind_labels(model, torch.zeros(2, 3, dtype=torch.long)), x, base, noise,
                                     clip_denoised=False))
    assert torch.allclose(runs[0], runs[1], atol=1e-9)


def test_sections_see_their_axis_class_and_come_back_in_place():
    """Each axis's sections carry that axis's class; the output is the per-voxel result put back
    where it came from (class means differ, so a misplaced section would show)."""
    base = Diffusion.from_config("linear", 100)
    seen = []

    class Spy:
        diffusion, channels, null_label = base, 1, None

        def __init__(self):
            self.inner = GaussianDenoiser(base, [0.1, 0.5, 0.9], S)

        def __call__(self, x, t, y):
            seen.append((tuple(x.shape), y.unique().tolist()))
            return self.inner(x, t, y)
    vol = PlanarVolumeDenoiser([Spy(), Spy(), Spy()], "alternate")
    x = torch.randn(2, 1, 5, 6, 7, dtype=torch.float64)
    t = torch.tensor([40, 60])
    y = torch.tensor([[0, 1, 2], [0, 1, 2]])
    for axis in range(3):
        out = vol(x, t, y)
        ref = GaussianDenoiser(base, [0.1, 0.5, 0.9], S)(x, t, y[:, axis])
        assert torch.allclose(out.eps, ref.eps)
    assert seen == [((10, 1, 6, 7), [0]), ((12, 1, 5, 7), [1]), ((14, 1, 5, 6), [2])]


# ----------------------------------------------------------------------------- sample3d on a tiny model

@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    from microdiff.generate.pipeline import pipeline_class
    torch.manual_seed(0)
    pipe = pipeline_class().create(tiny_config(), ["a", "b"])
    path = tmp_path_factory.mktemp("m") / "model"
    pipe.save_pretrained(path)
    return path


def test_voxel_marginal_levels_are_the_samplers_x0_at_each_step():
    """``voxel_marginal``: per timestep the sorted x0 of its 2D samples, each class weighted by the
    axes that use it, gathered over batches (3 per batch here); the last step's are the finished
    samples, whose histogram is the marginal."""
    from microdiff.generate.pipeline import pipeline_class
    from microdiff.core.seeding import STREAM_MARGINAL, derive_seed
    from microdiff.generate import generate, sampling_settings
    from microdiff.generate.volumes import MARGINAL_SAMPLES, voxel_marginal
    torch.manual_seed(0)
    pipe = pipeline_class().create(tiny_config("sample.batch_size=3"), ["a", "b"])
    sampling = sampling_settings(pipe.microdiff_config, 3, "dpmpp", 1.5)
    prior = voxel_marginal(pipe, (1, 1, 0), 5, sampling)
    assert len(prior.levels) == 3 and all((lv[1:] >= lv[:-1]).all() for lv in prior.levels.values())
    finished = [generate(pipe, [c] * MARGINAL_SAMPLES, [derive_seed(5, STREAM_MARGINAL, c, i)
                                                        for i in range(MARGINAL_SAMPLES)], sampling)[:, 0] * 2 - 1
                for c in (0, 1)]
    want = torch.cat([finished[0].flatten(), finished[1].flatten().repeat(2)]).sort().values
    torch.testing.assert_close(prior.levels[min(prior.levels)], want, rtol=0, atol=1e-5)
    hist = torch.histc(finished[0].double(), 128, -1, 1) + 2 * torch.histc(finished[1].double(), 128, -1, 1)
    torch.testing.assert_close(prior.weights, hist / hist.sum())


def _sample3d(tiny, out, *extra):
    return main(["sample3d", "--model", str(tiny), "--out", str(out), "--steps", "3", "--sampler", "dpmpp",
                 "--guidance", "1.5", *extra])


def test_sample3d_files_shapes_and_independent_readers(tiny, tmp_path):
    out = tmp_path / "v"
    assert _sample3d(tiny, out, "--class", "a", "--size", "24x16x20", "--num", "2", "--segment", "otsu") == 0
    folder = out / "0001"
    vol = np.load(folder / "volume.npy")
    assert vol.shape == (20, 16, 24) and vol.dtype == np.float32 and 0 <= vol.min() and vol.max() <= 1
    lab = np.load(folder / "labels.npy")
    assert lab.dtype == np.uint8 and set(np.unique(lab)) <= {0, 1}
    rec = json.loads((folder / "volume.json").read_text())
    assert rec["shape_zyx"] == [20, 16, 24] and rec["axes"] == {"x": "a", "y": "a", "z": "a"}
    assert rec["phase_fractions"][1] == pytest.approx(lab.mean(), abs=1e-6)
    # the TIFF stack through PIL, page by page; the .vti through VTK's own reader
    from PIL import Image, ImageSequence
    with Image.open(folder / "volume.tif") as im:
        pages = np.stack([np.asarray(p, dtype=np.float32) for p in ImageSequence.Iterator(im)])
    assert np.array_equal(pages, vol)
    vtk = pytest.importorskip("vtkmodules.vtkIOXML")
    from vtkmodules.util.numpy_support import vtk_to_numpy
    for name, ref, field in (("volume.vti", vol, "gray"), ("labels.vti", lab, "phase")):
        reader = vtk.vtkXMLImageDataReader()
        reader.SetFileName(str(folder / name))
        reader.Update()
        data = reader.GetOutput()
        assert data.GetDimensions() == (25, 17, 21)                   # points: cells + 1, x first
        back = vtk_to_numpy(data.GetCellData().GetArray(field)).reshape(ref.shape)
        assert back.dtype == ref.dtype and np.array_equal(back, ref)
    from PIL import Image as I
    assert I.open(folder / "slices.png").size[0] > 3 * 24


def test_sample3d_seeds_independent_of_count_and_resume(tiny, tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    _sample3d(tiny, a, "--axes", "a,b,a", "--num", "2", "--periodic")
    _sample3d(tiny, b, "--axes", "a,b,a", "--num", "1", "--periodic")
    assert np.array_equal(np.load(a / "0000" / "volume.npy"), np.load(b / "0000" / "volume.npy"))
    assert not np.array_equal(np.load(a / "0000" / "volume.npy"), np.load(a / "0001" / "volume.npy"))
    first = np.load(a / "0001" / "volume.npy")
    (a / "0001" / "volume.json").unlink()                      # an interrupted second volume
    assert _sample3d(tiny, a, "--axes", "a,b,a", "--num", "2", "--periodic", "--resume") == 0
    assert np.array_equal(np.load(a / "0001" / "volume.npy"), first)
    rec = json.loads((a / "0000" / "volume.json").read_text())
    assert rec["axes"] == {"x": "a", "y": "b", "z": "a"} and rec["periodic"] is True
    p, q = tmp_path / "p", tmp_path / "q"                       # the product of planes: its marginal too
    _sample3d(tiny, p, "--axes", "a,b,a", "--num", "2", "--planes", "product")
    _sample3d(tiny, q, "--axes", "a,b,a", "--num", "1", "--planes", "product")
    assert np.array_equal(np.load(p / "0000" / "volume.npy"), np.load(q / "0000" / "volume.npy"))
    rec = json.loads((p / "0001" / "volume.json").read_text())
    assert rec["planes"] == "product" and rec["voxel_marginal"]["bins"] > 0


@pytest.mark.parametrize("extra,needle", [
    (["--class", "a", "--size", "12"], "--size"),
    (["--class", "a", "--size", "16x16"], "--size"),
    (["--axes", "a,b"], "--axes"),
    (["--axes", "a,b,zz"], "zz"),
    (["--class", "nope"], "nope"),
    (["--class", "a", "--axes", "a,a,a"], "--axes"),
    (["--class", "a", "--size", "4000"], "GB"),
    (["--class", "a", "--target-strength", "2"], "--target-vf"),
])
def test_sample3d_bad_input_is_one_line(tiny, tmp_path, capsys, extra, needle):
    assert _sample3d(tiny, tmp_path / "x", *extra) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and needle in err


def test_characterize_volumes(tmp_path, capsys):
    from microdiff.data.synth3d import fiber_volume
    lab = fiber_volume(np.random.default_rng(2), 32, 0.5).labels
    np.save(tmp_path / "v_labels.npy", lab)
    assert main(["characterize", str(tmp_path / "v_labels.npy"), "--descriptor", "s2", "--out",
                 str(tmp_path / "s2.npy")]) == 0
    s2 = np.load(tmp_path / "s2.npy")
    assert s2.shape == (1, 4, 16) and np.allclose(s2[0, 0], lab.mean())
    assert main(["characterize", str(tmp_path / "v_labels.npy"), "--descriptor", "all", "--out",
                 str(tmp_path / "d.json")]) == 0
    d = json.loads((tmp_path / "d.json").read_text())[0]
    assert d["percolation"][0] == 1.0 and d["vf"] == pytest.approx(lab.mean(), abs=1e-6)
    assert main(["characterize", str(tmp_path / "v_labels.npy"), "--descriptor", "gram", "--out",
                 str(tmp_path / "g.npy")]) == 2


def test_sample3d_volume_fraction_target(tiny, tmp_path):
    """--target-vf steers the whole volume; strength 0 is unguided bit for bit, and the record
    holds what each volume achieved. A vf target sets the fraction, so the unguided run to match
    keeps every volume at the class's (representative), not a drawn one."""
    plain, zero, steered = tmp_path / "p", tmp_path / "z", tmp_path / "s"
    _sample3d(tiny, plain, "--class", "b", "--fractions", "representative")
    _sample3d(tiny, zero, "--class", "b", "--target-vf", "0.7", "--target-strength", "0")
    assert np.array_equal(np.load(plain / "0000" / "volume.npy"), np.load(zero / "0000" / "volume.npy"))
    assert _sample3d(tiny, steered, "--class", "b", "--target-vf", "0.7", "--target-strength", "5") == 0
    rec = json.loads((steered / "0000" / "volume.json").read_text())
    (t,) = rec["targets"]
    assert t["kind"] == "vf" and t["value"] == 0.7 and "achieved" in t
    unguided = VolumeFraction(value=0.7).measure(np.load(plain / "0000" / "volume.npy"))["achieved"]
    assert abs(t["achieved"] - 0.7) < abs(unguided - 0.7)                # moved towards the target


@pytest.mark.parametrize("argv,needle", [
    (["synth", "grf3d", "--radius", "3"], "--radius"),
    (["synth", "fiber", "--volumes", "2"], "--volumes"),
    (["synth", "fiber3d", "--fraction", "0.9"], "--fraction"),
    (["synth", "grf3d", "--size", "1024"], "--size"),
    (["synth", "grf3d", "--per-class", "0"], "nothing to write"),
])
def test_synth_3d_bad_input_is_one_line(tmp_path, capsys, argv, needle):
    assert main(argv + ["--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and needle in err


def test_abaqus_voxel_mesh_reads_back_with_the_phase_of_every_element(tmp_path):
    """labels.inp: one brick per voxel (x fastest), element set PHASE<k> per phase, read back by meshio."""
    meshio = pytest.importorskip("meshio")
    from microdiff.generate.writers import save_abaqus
    lab = (np.random.default_rng(0).random((3, 4, 5)) * 3).astype(np.uint8)
    save_abaqus(tmp_path / "labels.inp", lab)
    mesh = meshio.read(tmp_path / "labels.inp")
    (block,) = mesh.cells
    assert block.type == "hexahedron" and block.data.shape == (60, 8) and mesh.points.shape == (6 * 5 * 4, 3)
    phase = np.full(60, -1)
    for name, (ids,) in mesh.cell_sets.items():
        phase[ids] = int(name.upper().replace("PHASE", ""))
    assert np.array_equal(phase, lab.ravel())
    centre = mesh.points[block.data].mean(1)                     # each brick sits on its voxel (x, y, z) + 1/2
    z, y, x = np.unravel_index(np.arange(60), lab.shape)
    assert np.allclose(centre, np.stack([x, y, z], 1) + 0.5)
    vol = np.abs(np.linalg.det(np.stack([mesh.points[block.data[:, k]] - mesh.points[block.data[:, 0]]
                                         for k in (1, 3, 4)], 1)))
    assert np.allclose(vol, 1.0)                                  # unit bricks, corners in meshio's order


def test_fraction_scatter_against_closed_forms():
    """denoise.volume.fraction_std: i.i.d. voxels give p(1 - p) / N; a covariance constant over
    every offset the window has gives that constant. warped_ranks moves the top phase to the
    target share and is even_ranks itself when the target is the levels' own."""
    from microdiff.denoise.volume import even_ranks, fraction_std, warped_ranks
    p, shape = 0.3, (10, 12, 14)
    iid = torch.tensor([p] + [p * p] * 15, dtype=torch.float64)
    assert fraction_std(iid, p, shape) == pytest.approx(math.sqrt(p * (1 - p) / np.prod(shape)), rel=1e-12)
    low = iid.clone()
    low[1:] -= 1e-3                      # a plateau just below p^2 (finite images): not a negative variance
    assert fraction_std(low, p, shape) == fraction_std(iid, p, shape)
    bump = torch.tensor([p, p * p + 0.02, p * p + 0.01, p * p - 0.001, p * p + 0.005], dtype=torch.float64)
    cut = bump.clone()
    cut[3:] = p * p                                       # C from its first zero on is noise: taken as 0
    assert fraction_std(bump, p, (20, 20, 20)) == fraction_std(cut, p, (20, 20, 20)) > 0
    flat = torch.full((40,), p * p + 0.01, dtype=torch.float64)              # C = 0.01 at every offset
    assert fraction_std(flat, p, (8, 8, 8)) == pytest.approx(0.1, rel=1e-12)
    levels = torch.sort(torch.cat([torch.rand(700) * 0.4 - 1, torch.rand(300) * 0.5 + 0.3])).values   # top 30 %
    for target in (0.2, 0.3, 0.45):
        q = warped_ranks(levels, 5000, 0.3, target)
        assert float((q > 0.0).double().mean()) == pytest.approx(target, abs=1e-3)
        assert (q[1:] >= q[:-1]).all()
    assert torch.equal(warped_ranks(levels, 5000, 0.3, 0.3), even_ranks(levels, 5000))


def test_sample3d_scatters_the_fraction_or_keeps_it_representative(tiny, tmp_path):
    """--fractions scatter (the default with product): each volume's bright phase takes the share
    drawn for it; representative: every volume the class's."""
    s, r = tmp_path / "s", tmp_path / "r"
    assert _sample3d(tiny, s, "--class", "a", "--num", "2", "--segment", "otsu") == 0
    assert _sample3d(tiny, r, "--class", "a", "--num", "2", "--segment", "otsu", "--fractions", "representative") == 0
    recs = [json.loads((s / f"{i:04d}" / "volume.json").read_text()) for i in range(2)]
    drawn = [rec["fraction"]["drawn"] for rec in recs]
    assert drawn[0] != drawn[1] and recs[0]["fraction"]["predicted_std"] > 0
    for rec, d in zip(recs, drawn):                              # the volume's share above the levels' cut
        vol = np.load(s / f"{rec['index']:04d}" / "volume.npy")
        assert abs(float(np.mean(vol > rec["fraction"]["cut"])) - d) < 0.01
    from microdiff.generate.volumes import scatter_normal
    std = recs[0]["fraction"]["predicted_std"]
    for rec in recs:                                             # the class's share plus the volume's normal number
        want = rec["fraction"]["drawn"] - std * scatter_normal(0, rec["index"])
        assert abs(want - (recs[0]["fraction"]["drawn"] - std * scatter_normal(0, 0))) < 1e-5
    rep = [json.loads((r / f"{i:04d}" / "volume.json").read_text()) for i in range(2)]
    assert all("fraction" not in rec for rec in rep)
    assert json.loads((r / "sample3d.json").read_text())["fractions"] == "representative"


def test_volumes_are_centred_on_the_training_datas_fraction(tiny, tmp_path):
    """A model that keeps its training data's gray-level counts: volumes take the data's bright
    share above the 2D samples' cut (here 30 % at level 255, 70 % at 0: any cut gives 0.3), not the
    samples' own; representative volumes sit at it, drawn ones scatter around it."""
    import shutil

    from microdiff.data.channels import share_above
    model = tmp_path / "model"
    shutil.copytree(tiny, model)
    meta = json.loads((model / "microdiff.json").read_text())
    counts = [0] * 256
    counts[0], counts[255] = 7000, 3000
    meta["data_statistics"] = {"kind": "gray", "counts": {"a": counts, "b": [1] * 256}}
    (model / "microdiff.json").write_text(json.dumps(meta))
    assert share_above(meta["data_statistics"], ["a"], 0.4) == pytest.approx(0.3)
    assert share_above(meta["data_statistics"], ["b", "a"], 0.5) == pytest.approx((0.3 + 128 / 256) / 2)
    r, s = tmp_path / "r", tmp_path / "s"
    assert _sample3d(model, r, "--class", "a", "--num", "1", "--fractions", "representative") == 0
    assert _sample3d(model, s, "--class", "a", "--num", "2") == 0
    rec = json.loads((r / "0000" / "volume.json").read_text())
    assert rec["class_fraction"] == {"value": 0.3, "from": "training data"}
    assert rec["voxel_marginal"]["bright_fraction"] != 0.3                       # the samples' own share differs
    cut = json.loads((s / "0000" / "volume.json").read_text())["fraction"]["cut"]     # the same prior: seed 0
    assert abs(float(np.mean(np.load(r / "0000" / "volume.npy") > cut)) - 0.3) < 0.01
    from microdiff.generate.volumes import scatter_normal
    for i in range(2):
        f = json.loads((s / f"{i:04d}" / "volume.json").read_text())["fraction"]
        assert f["drawn"] == pytest.approx(0.3 + f["predicted_std"] * scatter_normal(0, i), abs=2e-6)
    assert "data_statistics" not in json.loads((tiny / "microdiff.json").read_text())   # the samples' share
    assert _sample3d(tiny, tmp_path / "o", "--class", "a", "--num", "1", "--fractions", "representative") == 0
    assert json.loads((tmp_path / "o" / "0000" / "volume.json").read_text())["class_fraction"]["from"] == "2D samples"


def test_scatter_normal_covers_the_normal_evenly_from_the_first_volumes():
    """Volume i's normal number (its drawn fraction's): quasi-random, so that a few volumes already
    scatter as predicted; fixed by the run's seed and the index alone."""
    from statistics import NormalDist

    from microdiff.generate.volumes import GOLDEN, scatter_normal
    sd = np.array([np.std([scatter_normal(seed, i) for i in range(8)], ddof=1) for seed in range(200)])
    lo, hi = np.percentile(sd, [5, 95])                      # 8 independent normals: 0.57 and 1.45
    assert 0.9 < lo and hi < 1.3
    z = np.array([scatter_normal(3, i) for i in range(1000)])
    assert abs(z.mean()) < 0.02 and abs(z.std() - 1) < 0.02
    u = np.array([NormalDist().cdf(v) for v in z])                   # consecutive volumes one golden step apart
    np.testing.assert_allclose((u[1:] - u[:-1]) % 1, GOLDEN, atol=1e-6)
    assert scatter_normal(3, 5) == scatter_normal(3, 5) != scatter_normal(4, 5)
