"""Issue 9, analytic part: windows on a larger or periodic canvas, and masks, with the exact
denoiser of Gaussian data as the model (as the sampler tests do)."""
import pytest
import torch

from microdiff.denoise.denoiser import GaussianDenoiser, bind_labels
from microdiff.diffusion import Diffusion, NoiseSource, respace, sample_ddim, sample_dpmpp_2m
from microdiff.denoise.canvas import WindowedDenoiser, window_starts, windows_per_axis
from microdiff.denoise.mask import MaskedDenoiser

M, S = 0.3, 0.2


def _sample(den, shape, n, sampler=sample_dpmpp_2m, steps=25):
    base = den.diffusion
    noise = NoiseSource(range(n))
    x = noise.randn(shape, dtype=torch.float64)
    y = torch.zeros(n, dtype=torch.long)
    return sampler(bind_labels(den, y), x, respace(base, steps, "logsnr"), noise, clip_denoised=False)


def _window_edges(starts, window):
    return sorted({int(s) for s in starts} | {int(s) + window - 1 for s in starts})


@pytest.mark.parametrize("periodic", [False, True])
@pytest.mark.parametrize("height,width", [(256, 256), (96, 160), (64, 64)])
def test_canvas_reproduces_gaussian_data_everywhere(periodic, height, width):
    base = Diffusion.from_config("linear", 1000)
    n = 4 if height * width > 30000 else 16
    den = WindowedDenoiser(GaussianDenoiser(base, M, S), 64, list(range(n)), overlap=0.2, periodic=periodic)
    out = _sample(den, (1, height, width), n)
    assert out.shape == (n, 1, height, width)
    assert float(out.mean()) == pytest.approx(M, abs=0.01)
    assert float(out.std()) == pytest.approx(S, rel=0.025)
    # on the window borders of the first step's grid, and in columns near the canvas edges
    nh = windows_per_axis(width, 64, 0.2, periodic)
    u = WindowedDenoiser(GaussianDenoiser(base), 64, list(range(n)), periodic=periodic).shifts.uniform(2)[:, 1]
    edges = {c % width for s in window_starts(u, width, 64, nh, periodic) for c in _window_edges(s, 64)}
    border = out[..., sorted(edges)]
    assert float(border.mean()) == pytest.approx(M, abs=0.02)
    assert float(border.std()) == pytest.approx(S, rel=0.05)
    for cols in (slice(0, 2), slice(width - 2, width)):
        assert float(out[..., cols].std()) == pytest.approx(S, rel=0.1)


def test_windows_cover_every_pixel_and_move_every_step():
    torch.manual_seed(0)
    for length, periodic in ((256, False), (256, True), (64, True), (100, False), (337, True)):
        n = windows_per_axis(length, 64, 0.2, periodic)
        for _ in range(50):
            u = torch.rand(3, dtype=torch.float64)
            starts = window_starts(u, length, 64, n, periodic)
            for s in starts:
                cov = torch.zeros(length)
                for a in s.tolist():
                    idx = torch.arange(a, a + 64)
                    cov[idx % length if periodic else idx] += 1
                assert cov.min() >= 1 and (periodic or max(s) + 64 <= length)
    # the 256 canvas needs 5 windows per axis (25 in all, 1.56 x the 16 non-overlapping ones)
    assert windows_per_axis(256, 64, 0.2, True) == windows_per_axis(256, 64, 0.2, False) == 5
    a = window_starts(torch.tensor([0.1, 0.7], dtype=torch.float64), 256, 64, 5, True)
    assert not torch.equal(a[0], a[1])


def test_windows_depend_on_the_sample_seed_only():
    base = Diffusion.from_config("linear", 100)
    # a denoiser whose prediction depends on the window position: one window's input tells it
    shift = torch.arange(96.0).view(1, 1, 1, 96) / 96

    class PositionProbe(GaussianDenoiser):
        def __call__(self, x, t, y=None):
            out = super().__call__(x, t, y)
            return self.output(x, t, out.eps + 0.01 * x.mean((1, 2, 3), keepdim=True), out.v)
    den = PositionProbe(base, M, S)
    seeds = [5, 6, 7]
    x = torch.randn(3, 1, 64, 96, dtype=torch.float64) + shift
    t = torch.full((3,), 50)
    y = torch.zeros(3, dtype=torch.long)
    all3 = WindowedDenoiser(den, 64, seeds)(x, t, y).eps
    alone = WindowedDenoiser(den, 64, [6])(x[1:2], t[:1], y[:1]).eps
    torch.testing.assert_close(all3[1:2], alone, rtol=0, atol=1e-12)


def test_mask_keeps_known_pixels_and_fills_the_rest_with_the_data_distribution():
    base = Diffusion.from_config("linear", 1000)
    n, h = 8, 64
    known = torch.full((1, 1, h, h), -0.5, dtype=torch.float64)        # far from the data mean
    mask = torch.zeros(1, 1, h, h, dtype=torch.float64)
    mask[..., 16:48, :] = 1                                            # generate a band
    den = MaskedDenoiser(GaussianDenoiser(base, M, S), known, mask)
    for sampler, steps in ((sample_dpmpp_2m, 25), (sample_ddim, 250)):     # DDIM needs many steps (test_diffusion)
        out = _sample(den, (1, h, h), n, sampler, steps)
        keep = (mask == 0).expand(n, -1, -1, -1)
        assert float((out - known).abs()[keep].max()) < 1e-6
        band = out[..., 16:48, :]
        assert float(band.mean()) == pytest.approx(M, abs=0.01)
        assert float(band.std()) == pytest.approx(S, rel=0.04)


# ----------------------------------------------------------------------------- the stack's order

def _chain(den) -> list[str]:
    """The layers of a stack, outermost first (a volume: its z-plane's stack after it)."""
    out = []
    while den is not None:
        out.append(type(den).__name__)
        den = den.planes[0] if hasattr(den, "planes") else den.__dict__.get("inner")
    return out


def test_build_denoiser_composes_the_layers_in_the_documented_order():
    """denoise.stack: CFG, class mixture, canvas, the targets' guidance on the whole canvas, the
    known pixels outermost, then the tick; a volume's targets steer inside each plane, per
    network call (pooled), under its chunks and windows."""
    from microdiff.denoise import Canvas, KnownImage, Planes, build_denoiser
    from microdiff.targets import Targets, TwoPoint, VolumeFraction
    den = GaussianDenoiser(Diffusion.from_config("linear", 1000), [M, M, M, 0.0], S)
    mix = Targets((VolumeFraction(value=0.5, mix=("all",)), TwoPoint(curve=(0.5,) * 12)), 3.0, ("a", "b", "c"))
    known = KnownImage(torch.zeros(24, 24), torch.ones(24, 24, dtype=torch.bool))
    image = build_denoiser(den, [1, 2], Canvas((24, 24), periodic=True), 16, 2.0, mix, mask=known, tick=lambda: None)
    assert _chain(image) == ["Ticking", "MaskedDenoiser", "GradientGuidance", "X0Guidance", "WindowedDenoiser",
                             "ClassMixture", "ClassifierFreeGuidance", "GaussianDenoiser"]
    assert _chain(build_denoiser(den, [1], Canvas((16, 16)), 16, 1.5)) == ["ClassifierFreeGuidance", "GaussianDenoiser"]
    vf = Targets((VolumeFraction(value=0.5),), 3.0)
    volume = build_denoiser(den, [1], Canvas((16, 20, 16)), 16, 2.0, vf, planes=Planes("fuse", chunk=5))
    steered = ["ChunkedDenoiser", "GradientGuidance", "ClassifierFreeGuidance", "GaussianDenoiser"]
    assert _chain(volume) == ["PlanarVolumeDenoiser", "WindowedDenoiser", *steered]     # z: 20 x 16 sections
    assert _chain(volume.planes[1]) == steered                                         # y: 16 x 16, one window
    assert volume.planes[1].chunk == 5 and volume.mode == "fuse" and not volume.periodic
    torus = build_denoiser(den, [1], Canvas((16, 16, 16), periodic=True), 16, planes=Planes("product"))
    assert torus.periodic and torus.normal_std > 0          # the smoothing along the normals wraps round
