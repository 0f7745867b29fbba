"""The training recipes (issue 14): loss weightings and parameterisations against closed forms,
and every parameterisation sampling Gaussian data exactly when its network is exact."""
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from microdiff.config import RECIPES, Recipe
from microdiff.denoise.denoiser import Denoiser, DenoiserOutput, GaussianDenoiser
from microdiff.diffusion import (Diffusion, DiffusionLoss, NoiseSource, hybrid_loss, lognormal_timesteps, q_sample,
                                 respace, sample_dpmpp_2m, snr, x0_weight)

M, S = 0.3, 0.2


def _batch(d, n=64, seed=0):
    g = torch.Generator().manual_seed(seed)
    x0 = torch.rand(n, 1, 4, 4, generator=g, dtype=torch.float64) * 2 - 1
    t = torch.randint(0, d.num_timesteps, (n,), generator=g)
    noise = torch.randn(x0.shape, generator=g, dtype=torch.float64)
    return x0, t, noise, q_sample(d, x0, t, noise)


def test_weightings_equal_their_closed_forms():
    d = Diffusion.from_config("linear", 1000)
    x0, t, noise, xt = _batch(d)
    a = d.alphas_cumprod[t].view(-1, 1, 1, 1)
    alpha, sigma = a.sqrt(), (1 - a).sqrt()
    eps_hat = noise + 0.1 * torch.randn_like(noise)
    x0_hat = (xt - sigma * eps_hat) / alpha
    mse_x0 = ((x0_hat - x0) ** 2).mean((1, 2, 3))
    s = snr(d, t)
    np.testing.assert_allclose(s.numpy(), (a / (1 - a)).flatten().numpy(), rtol=1e-12)
    # epsilon MSE = SNR x x0 MSE
    np.testing.assert_allclose(((eps_hat - noise) ** 2).mean((1, 2, 3)), x0_weight("eps", s) * mse_x0, rtol=1e-9)
    # v MSE, v = alpha eps - sigma x0
    v_hat, v = alpha * eps_hat - sigma * x0_hat, alpha * noise - sigma * x0
    np.testing.assert_allclose(((v_hat - v) ** 2).mean((1, 2, 3)), x0_weight("v", s) * mse_x0, rtol=1e-9)
    # EDM: lambda(sigma) = (sigma^2 + sd^2) / (sigma sd)^2 with sigma = sigma_t / alpha_t
    sig = (sigma / alpha).flatten()
    lam = (sig ** 2 + 0.25) / (sig * 0.5) ** 2
    np.testing.assert_allclose(x0_weight("edm", s, sigma_data=0.5), lam, rtol=1e-9)
    # min-SNR-5 = min(SNR, 5) / SNR on the epsilon MSE (Hang et al.)
    np.testing.assert_allclose(x0_weight("min_snr", s, 5.0) * mse_x0,
                               torch.clamp(s, max=5.0) / s * ((eps_hat - noise) ** 2).mean((1, 2, 3)), rtol=1e-9)


def test_paper_recipe_loss_is_the_hybrid_loss_and_others_weight_x0():
    d = Diffusion.from_config("linear", 1000)
    x0, t, noise, xt = _batch(d, 8)
    den = GaussianDenoiser(d, 0.0, 0.5, variance=0.3)
    out = den(xt, t)
    ref = hybrid_loss(d, out, x0, xt, t, noise, 0.001)
    got = DiffusionLoss(RECIPES["paper"], 0.001)(d, out, x0, xt, t, noise)
    for k in ref:
        assert torch.equal(ref[k], got[k])
    ms = DiffusionLoss(RECIPES["min_snr"], 0.0)(d, out, x0, xt, t, noise)
    w = torch.clamp(snr(d, t), max=5.0)
    torch.testing.assert_close(ms["loss"], w * ((out.x0 - x0) ** 2).mean((1, 2, 3)))
    torch.testing.assert_close(ms["mse"], ref["mse"])              # the logged epsilon MSE is recipe-independent


class ExactNet(torch.nn.Module):
    """A 'network' that outputs the exact target of Gaussian data for a parameterisation."""

    def __init__(self, d, prediction, sigma_data=0.5):
        super().__init__()
        self.gauss, self.prediction, self.sd = GaussianDenoiser(d, M, S), prediction, sigma_data
        self.d = d
        self.net_input = None

    def forward(self, xin, tau, class_labels=None):
        t = torch.round(tau.double() * self.d.num_timesteps / 1000).long()
        a = self.d.alphas_cumprod[t].view(-1, 1, 1, 1).to(xin.dtype)
        alpha, sigma = a.sqrt(), (1 - a).sqrt()
        if self.prediction == "edm":                            # recover x_t from the preconditioned input
            s = sigma / alpha
            xt = xin * alpha * torch.sqrt(s ** 2 + self.sd ** 2)
        else:
            xt = xin
        out = self.gauss(xt, t)
        if self.prediction == "eps":
            target = out.eps
        elif self.prediction == "v":
            target = alpha * out.eps - sigma * out.x0
        else:
            s = sigma / alpha
            c_skip, c_out = self.sd ** 2 / (s ** 2 + self.sd ** 2), s * self.sd / torch.sqrt(s ** 2 + self.sd ** 2)
            target = (out.x0 - c_skip * xt / alpha) / c_out
        return SimpleNamespace(sample=target)


@pytest.mark.parametrize("prediction", ["eps", "v", "edm"])
def test_parameterisations_reproduce_the_exact_denoiser_and_sample_gaussian_data(prediction):
    base = Diffusion.from_config("linear", 1000)
    den = Denoiser(ExactNet(base, prediction), base, prediction=prediction, sigma_data=0.5)
    gauss = GaussianDenoiser(base, M, S)
    x = torch.randn(6, 1, 4, 4, dtype=torch.float64)
    t = torch.tensor([0, 3, 100, 500, 900, 999])
    out, ref = den(x, t, torch.zeros(6, dtype=torch.long)), gauss(x, t)
    assert isinstance(out, DenoiserOutput)
    torch.testing.assert_close(out.x0, ref.x0, rtol=1e-9, atol=1e-9)
    torch.testing.assert_close(out.eps, ref.eps, rtol=1e-7, atol=1e-7)
    n = 256
    noise = NoiseSource(range(n))
    xT = noise.randn((1, 8, 8), dtype=torch.float64)
    y = torch.zeros(n, dtype=torch.long)
    sample = sample_dpmpp_2m(lambda x, t: den(x, t, y), xT, respace(base, 25, "logsnr"), noise, clip_denoised=False)
    assert float(sample.mean()) == pytest.approx(M, abs=0.01)
    assert float(sample.std()) == pytest.approx(S, rel=0.025)


def test_lognormal_timesteps_follow_edms_noise_distribution():
    d = Diffusion.from_config("linear", 1000)
    normal = torch.randn(200_000, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    t = lognormal_timesteps(d, normal, -1.2, 1.2)
    acp = d.alphas_cumprod
    log_sigma = 0.5 * torch.log((1 - acp) / acp)[t]
    # the linear schedule's ln sigma spans [-4.6, 5.1]: N(-1.2, 1.2) lies inside up to 2.8 std
    assert float(log_sigma.mean()) == pytest.approx(-1.2, abs=0.02)
    assert float(log_sigma.std()) == pytest.approx(1.2, rel=0.02)
    # each draw lands on the timestep of nearest ln sigma
    target = -1.2 + 1.2 * normal[:1000]
    ls = 0.5 * torch.log((1 - acp) / acp)
    nearest = (ls[None, :] - target[:, None]).abs().argmin(1)
    assert torch.equal(t[:1000], nearest)


def test_noise_shift_moves_the_lognormal_draw_and_only_that():
    """``diffusion.noise_shift`` adds to the recipe's mean of ln sigma; the draw's mean moves by it,
    its spread stays; a uniform-t recipe refuses it in one line."""
    from microdiff.config import Config
    from microdiff.core.errors import ConfigError
    base = Config.from_dict({"diffusion": {"recipe": "edm"}}).diffusion.recipe_spec
    moved = Config.from_dict({"diffusion": {"recipe": "edm", "noise_shift": 0.8}}).diffusion.recipe_spec
    assert moved.lognormal_mean == pytest.approx(base.lognormal_mean + 0.8)
    assert (moved.lognormal_std, moved.prediction, moved.weighting) == (base.lognormal_std, base.prediction,
                                                                        base.weighting)
    assert base == RECIPES["edm"]
    d = Diffusion.from_config("linear", 1000)
    normal = torch.randn(100_000, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    acp = d.alphas_cumprod
    ls = 0.5 * torch.log((1 - acp) / acp)
    t = lognormal_timesteps(d, normal, moved.lognormal_mean, moved.lognormal_std)
    assert float(ls[t].mean()) == pytest.approx(-0.4, abs=0.02)
    assert float(ls[t].std()) == pytest.approx(1.2, rel=0.02)
    with pytest.raises(ConfigError, match="diffusion.noise_shift"):
        Config.from_dict({"diffusion": {"recipe": "paper", "noise_shift": 0.8}})


def test_presets_are_data_and_round_trip():
    """Every preset is a checked Config naming a known recipe, and survives its JSON form
    (run.json, microdiff.json) exactly; the paper recipe is the one with every default."""
    import json
    from microdiff.config import PRESETS, Config
    assert RECIPES["paper"] == Recipe() and len(set(RECIPES.values())) == len(RECIPES)
    for name, cfg in PRESETS.items():
        assert cfg.diffusion.recipe in RECIPES, name
        assert Config.from_dict(json.loads(cfg.to_json())) == cfg, name
        assert DiffusionLoss(cfg.diffusion.recipe_spec, cfg.diffusion.lambda_vlb).recipe == RECIPES[cfg.diffusion.recipe]


def test_presets_of_the_chosen_recipe():
    """`paper` stays Table 2 (ancestral, learned Sigma); `paper-edm` is the same network and
    training with the EDM recipe; the shipped demo model was trained with the `cpu` preset (its
    microdiff.json records the config it was made with), and `cpu-paper` is that network with
    the paper's recipe."""
    import dataclasses
    import json
    from microdiff.config import PRESETS, Config
    from microdiff.demo import shipped_model_dir
    paper, fast = PRESETS["paper"], PRESETS["paper-edm"]
    assert paper.diffusion.recipe == "paper" and paper.model.learn_sigma and paper.sample.sampler == "ancestral"
    assert fast.diffusion.recipe == "edm" and not fast.model.learn_sigma and fast.sample.sampler == "dpmpp"
    assert dataclasses.replace(fast.model, learn_sigma=True) == paper.model and fast.train == paper.train
    assert dataclasses.replace(fast.diffusion, recipe="paper") == paper.diffusion
    shipped = Config.from_dict(json.loads((shipped_model_dir() / "microdiff.json").read_text())["config"])
    cpu, other = PRESETS["cpu"], PRESETS["cpu-paper"]
    assert (shipped.model, shipped.diffusion) == (cpu.model, cpu.diffusion)
    assert dataclasses.replace(other.model, learn_sigma=False, eps_skip_sigma=0.0) == cpu.model
    assert dataclasses.replace(other.diffusion, recipe="edm") == cpu.diffusion and other.train == cpu.train


def test_edm_preconditioning_gives_unit_variance_input_and_target():
    """EDM's design (Karras et al. 2022, appendix B.6): for data of variance sigma_data^2 the
    network input c_in x and its training target (x0 - c_skip x) / c_out have unit variance at
    every noise level."""
    base = Diffusion.from_config("linear", 1000)
    den = Denoiser(None, base, prediction="edm", sigma_data=0.5)
    g = torch.Generator().manual_seed(1)
    x0 = 0.5 * torch.randn(4000, 1, 1, 1, generator=g, dtype=torch.float64)
    for step in (0, 50, 300, 700, 999):
        t = torch.full((4000,), step)
        noise = torch.randn(x0.shape, generator=g, dtype=torch.float64)
        xt = q_sample(base, x0, t, noise)
        inv_alpha, c_in, c_skip, c_out = den._edm(t, xt)
        assert float((inv_alpha * c_in * xt).std()) == pytest.approx(1.0, rel=0.05)
        assert float(((x0 - c_skip * inv_alpha * xt) / c_out).std()) == pytest.approx(1.0, rel=0.05)


def test_learning_rate_schedules_follow_their_closed_forms():
    """Warm-up, then a constant rate, or a half cosine that reaches 0 at the last step."""
    from microdiff.config import TrainConfig
    from microdiff.train import lr_at
    const = TrainConfig(steps=1000, lr=1e-3, warmup_steps=100)
    cos = TrainConfig(steps=1000, lr=1e-3, warmup_steps=100, lr_decay="cosine")
    for cfg in (const, cos):
        assert lr_at(0, cfg) == pytest.approx(1e-5) and lr_at(99, cfg) == pytest.approx(1e-3)
    assert lr_at(550, const) == lr_at(999, const) == 1e-3
    assert lr_at(100, cos) == pytest.approx(1e-3)
    assert lr_at(550, cos) == pytest.approx(0.5e-3)                                   # half-way down
    assert lr_at(325, cos) == pytest.approx(1e-3 * (1 + np.cos(np.pi / 4)) / 2)
    assert lr_at(1000, cos) == pytest.approx(0.0, abs=1e-15) and lr_at(5000, cos) == lr_at(1000, cos)
    with pytest.raises(Exception, match="train.lr_decay"):
        TrainConfig(lr_decay="linear")
