"""The diffusion math against independent float64 re-derivations and closed forms."""
import math

import numpy as np
import pytest
import torch
from scipy import stats

from microdiff.denoise.denoiser import ClassifierFreeGuidance, DenoiserOutput, GaussianDenoiser, bind_labels
from microdiff.diffusion import (Diffusion, NoiseSource, get_sampler, discretized_gaussian_log_likelihood, hybrid_loss,
                                 learned_log_variance, linear_betas, normal_kl, predict_x0_from_eps, q_posterior,
                                 q_sample, respace, sample_ancestral, sample_ddim, sample_dpmpp_2m, sample_dpmpp_2m_sde,
                                 space_timesteps, vb_terms_bpd)


def test_linear_betas_scaled_by_1000_over_T():
    b = linear_betas(4000).numpy()
    assert b.dtype == np.float64 and b.shape == (4000,)
    assert b[0] == pytest.approx(2.5e-5, rel=1e-12) and b[-1] == pytest.approx(5e-3, rel=1e-12)
    np.testing.assert_allclose(np.diff(b), (5e-3 - 2.5e-5) / 3999, rtol=1e-9)
    b1 = linear_betas(1000).numpy()
    assert b1[0] == pytest.approx(1e-4) and b1[-1] == pytest.approx(0.02)


def test_alphas_cumprod_and_posterior_match_float64_derivation():
    d = Diffusion.from_config("linear", 4000)
    b = np.linspace(2.5e-5, 5e-3, 4000)
    acp = np.cumprod(1 - b)
    np.testing.assert_allclose(d.alphas_cumprod.numpy(), acp, rtol=1e-12)
    # eq. 7
    acp_prev = np.concatenate([[1.0], acp[:-1]])
    np.testing.assert_allclose(d.posterior_variance.numpy(), b * (1 - acp_prev) / (1 - acp), rtol=1e-12)
    # q(x_{t-1} | x_t, x_0) by Gaussian conditioning (Bayes), independent of the coefficient form
    rng = np.random.default_rng(0)
    t = np.array([1, 17, 999, 3999])
    x0 = rng.uniform(-1, 1, 4)
    xt = rng.normal(size=4)
    prec = 1 / (1 - acp_prev[t]) + (1 - b[t]) / b[t]
    var = 1 / prec
    mean = var * (np.sqrt(acp_prev[t]) * x0 / (1 - acp_prev[t]) + np.sqrt(1 - b[t]) * xt / b[t])
    m, v, logv = q_posterior(d, torch.tensor(x0).view(4, 1), torch.tensor(xt).view(4, 1), torch.tensor(t))
    np.testing.assert_allclose(m.numpy().ravel(), mean, rtol=1e-9)
    np.testing.assert_allclose(v.numpy().ravel(), var, rtol=1e-9)
    np.testing.assert_allclose(logv.numpy().ravel(), np.log(var), rtol=1e-9)


def test_q_sample_moments():
    d = Diffusion.from_config("linear", 1000)
    x0 = torch.full((200_000, 1), 0.5, dtype=torch.float64)
    t = torch.full((200_000,), 300)
    xt = q_sample(d, x0, t, torch.randn_like(x0))
    a = float(d.alphas_cumprod[300])
    assert float(xt.mean()) == pytest.approx(math.sqrt(a) * 0.5, abs=5e-3)
    assert float(xt.var()) == pytest.approx(1 - a, rel=1e-2)


def test_learned_variance_interpolates_between_beta_tilde_and_beta():
    d = Diffusion.from_config("linear", 1000)
    t = torch.tensor([5, 500])
    lo = learned_log_variance(d, -torch.ones(2, 1), t).ravel()
    hi = learned_log_variance(d, torch.ones(2, 1), t).ravel()
    mid = learned_log_variance(d, torch.zeros(2, 1), t).ravel()
    torch.testing.assert_close(lo, d.posterior_log_variance_clipped[t].float())
    torch.testing.assert_close(hi, torch.log(d.betas[t]).float())
    torch.testing.assert_close(mid, ((lo + hi) / 2))


def test_normal_kl_matches_closed_form():
    rng = np.random.default_rng(1)
    m1, m2 = rng.normal(size=5), rng.normal(size=5)
    lv1, lv2 = rng.normal(size=5), rng.normal(size=5)
    s1, s2 = np.exp(lv1 / 2), np.exp(lv2 / 2)
    ref = np.log(s2 / s1) + (s1 ** 2 + (m1 - m2) ** 2) / (2 * s2 ** 2) - 0.5
    got = normal_kl(*(torch.tensor(a) for a in (m1, lv1, m2, lv2))).numpy()
    np.testing.assert_allclose(got, ref, rtol=1e-12)


def test_discretized_gaussian_nll_matches_direct_cdf_integral():
    x = np.array([-1.0, -1 + 2 / 255, -0.2, 0.0, 0.5, 1 - 2 / 255, 1.0])
    mean = np.array([-0.95, -0.9, -0.21, 0.1, 0.52, 0.99, 0.9])
    log_scale = np.array([-3.0, -2.0, -4.0, -1.0, -5.0, -3.5, -2.5])
    sd = np.exp(log_scale)
    up = stats.norm.cdf(x + 1 / 255, mean, sd)
    lo = stats.norm.cdf(x - 1 / 255, mean, sd)
    ref = np.where(x < -0.999, np.log(up), np.where(x > 0.999, np.log1p(-lo), np.log(up - lo)))
    got = discretized_gaussian_log_likelihood(*(torch.tensor(a) for a in (x, mean, log_scale))).numpy()
    np.testing.assert_allclose(got, ref, rtol=1e-7)
    # the 256 bins form a probability distribution
    grid = torch.linspace(-1, 1, 256, dtype=torch.float64)
    p = discretized_gaussian_log_likelihood(grid, torch.full_like(grid, 0.3), torch.full_like(grid, -2.0)).exp()
    assert float(p.sum()) == pytest.approx(1.0, abs=1e-9)


def test_respacing_table_T4000_K25():
    steps = space_timesteps(4000, 25)
    assert len(steps) == 25 and steps[0] == 0 and steps[-1] == 3999
    assert steps[-2] == 3832 and steps[1] == 167
    assert steps == [round(i * 3999 / 24) for i in range(25)]
    base = Diffusion.from_config("linear", 4000)
    sp = respace(base, 25)
    assert sp.timestep_map.tolist() == steps
    torch.testing.assert_close(sp.alphas_cumprod, base.alphas_cumprod[steps], rtol=1e-12, atol=0)
    assert respace(base, 4000).timestep_map.tolist() == list(range(4000))
    with pytest.raises(ValueError):
        space_timesteps(4000, 0)


def test_vlb_term_sends_no_gradient_into_epsilon():
    d = Diffusion.from_config("linear", 1000)
    x0 = torch.rand(3, 1, 4, 4) * 2 - 1
    t = torch.tensor([0, 10, 900])
    noise = torch.randn_like(x0)
    xt = q_sample(d, x0, t, noise)
    eps = torch.randn(3, 1, 4, 4, requires_grad=True)
    v = torch.randn(3, 1, 4, 4, requires_grad=True)
    out = DenoiserOutput(eps, predict_x0_from_eps(d, xt, t, eps), v)
    terms = hybrid_loss(d, out, x0, xt, t, noise, lambda_vlb=0.001)
    g_eps, g_v = torch.autograd.grad(terms["vb"].sum(), [eps, v], allow_unused=True)
    assert g_eps is None or torch.all(g_eps == 0)
    assert torch.all(g_v.abs().sum((1, 2, 3)) > 0)
    # the vlb term is lambda * T times L_t in bits per dim (improved-diffusion's convention)
    ref = vb_terms_bpd(d, out.x0.detach(), v.detach(), x0, xt, t) * (0.001 * 1000)
    torch.testing.assert_close(terms["vb"].detach(), ref)
    torch.testing.assert_close(terms["mse"], ((eps - noise) ** 2).mean((1, 2, 3)))


def test_vlb_at_true_posterior_is_zero_for_t_positive():
    d = Diffusion.from_config("linear", 1000)
    x0 = torch.rand(2, 1, 4, 4, dtype=torch.float64) * 2 - 1
    t = torch.tensor([10, 700])
    noise = torch.randn_like(x0)
    xt = q_sample(d, x0, t, noise)
    # with the true noise the predicted x0 is exact; with v = -1 Sigma is beta-tilde: KL = 0
    vb = vb_terms_bpd(d, predict_x0_from_eps(d, xt, t, noise), -torch.ones_like(x0), x0, xt, t)
    assert float(vb.abs().max()) < 1e-10


# ---------- samplers on an analytic data distribution ----------

M, S = 0.3, 0.2          # data: every pixel i.i.d. N(M, S^2)


@pytest.mark.parametrize("sampler,steps,spacing,tol", [
    (sample_ancestral, 1000, "uniform", 0.04),
    ("ancestral_beta", 1000, "uniform", 0.04),
    (sample_dpmpp_2m, 25, "logsnr", 0.025),
    (sample_dpmpp_2m, 10, "logsnr", 0.04),
    (sample_ddim, 250, "logsnr", 0.04),
    (sample_dpmpp_2m_sde, 25, "logsnr", 0.03),
    (sample_dpmpp_2m_sde, 10, "logsnr", 0.04),
    ("dpmpp_sde:eta=2,smin=0.1,smax=3", 25, "logsnr", 0.03),
])
def test_sampler_reproduces_gaussian_data(sampler, steps, spacing, tol):
    base = Diffusion.from_config("linear", 1000)
    diff = base if steps == 1000 else respace(base, steps, spacing)
    n = 256
    noise = NoiseSource(range(n))
    x = noise.randn((1, 8, 8), dtype=torch.float64)
    variance = None
    if sampler == "ancestral_beta":           # learned-variance channel saying "Sigma = beta_t" (v = 1)
        sampler, variance = sample_ancestral, 1.0
    elif isinstance(sampler, str):            # a sampler setting with options (config.SamplerSpec)
        sampler = get_sampler(sampler)
    model = GaussianDenoiser(base, M, S, variance=variance)
    out = sampler(model, x, diff, noise, clip_denoised=False)
    # 16384 samples: s.e. of the mean 0.0016, of the std ~0.6 %
    assert float(out.mean()) == pytest.approx(M, abs=0.01)
    assert float(out.std()) == pytest.approx(S, rel=tol)


def _dpmpp_2m_reference(model, x, diff):
    """DPM-Solver++(2M) as Lu et al. 2022 write Alg. 2, in float64: D = (1 + 1/(2r)) x0 - x0_prev / (2r)."""
    acp = diff.alphas_cumprod.double()
    a, s = acp.sqrt(), (1 - acp).sqrt()
    lam = torch.log(a / s)
    prev, prev_h = None, None
    for i in reversed(range(diff.num_timesteps)):
        x0 = model(x, diff.timesteps_at(i, x)).x0
        if i == 0:
            return x0
        h = float(lam[i - 1] - lam[i])
        if prev is None:
            d = x0
        else:
            r = prev_h / h
            d = (1 + 1 / (2 * r)) * x0 - prev / (2 * r)
        x = float(s[i - 1] / s[i]) * x - float(a[i - 1]) * math.expm1(-h) * d
        prev, prev_h = x0, h


def test_dpmpp_sde_is_the_ode_at_eta_0_and_per_sample():
    """DPM-Solver++(2M) SDE with eta = 0 is DPM-Solver++(2M) as Alg. 2 of Lu et al. writes it (a
    float64 re-derivation); with noise, sample i depends on its own seed only, not on the batch it
    is in; and the registry and the settings name the same samplers."""
    from microdiff.config import SAMPLER_NAMES
    from microdiff.diffusion import SAMPLERS
    base = Diffusion.from_config("linear", 1000)
    diff = respace(base, 20, "logsnr")
    model = GaussianDenoiser(base, M, S)
    noise = NoiseSource(range(4))
    x = noise.randn((1, 6, 6), dtype=torch.float64)
    ode = _dpmpp_2m_reference(model, x, diff)
    sde0 = sample_dpmpp_2m_sde(model, x, diff, NoiseSource(range(4)), clip_denoised=False, eta=0.0)
    torch.testing.assert_close(sde0, ode, rtol=0, atol=1e-12)
    torch.testing.assert_close(sample_dpmpp_2m(model, x, diff, NoiseSource(range(4)), clip_denoised=False), ode,
                               rtol=0, atol=1e-12)
    four = sample_dpmpp_2m_sde(model, x, diff, NoiseSource([7, 8, 9, 10]), clip_denoised=False)
    two = sample_dpmpp_2m_sde(model, x[2:], diff, NoiseSource([9, 10]), clip_denoised=False)
    torch.testing.assert_close(four[2:], two, rtol=0, atol=0)
    assert float((four - ode).abs().max()) > 0.01            # eta = 1 adds noise
    assert set(SAMPLER_NAMES) == set(SAMPLERS)


def test_dpmpp_sde_adds_noise_only_inside_its_sigma_window():
    """Steps whose sigma_t / alpha_t lies outside [smin, smax] are the ODE's: a window that holds no
    step gives the ODE's sample exactly; one that holds the last steps only leaves x_t as the ODE's
    until the first of them, and changes the sample from there (fresh noise enters)."""
    base = Diffusion.from_config("linear", 1000)
    diff = respace(base, 20, "logsnr")
    model = GaussianDenoiser(base, M, S)
    x = NoiseSource(range(3)).randn((1, 6, 6), dtype=torch.float64)
    ode = sample_dpmpp_2m_sde(model, x, diff, NoiseSource(range(3)), clip_denoised=False, eta=0.0)
    none = get_sampler("dpmpp_sde:eta=2,smin=1e-9,smax=1e-9")(model, x, diff, NoiseSource(range(3)),
                                                                 clip_denoised=False)
    torch.testing.assert_close(none, ode, rtol=0, atol=0)
    acp = diff.alphas_cumprod.double()
    edm_sigma = ((1 - acp) / acp).sqrt()
    smax = float(edm_sigma[5]) * (1 + 1e-9)   # noise at steps i = 5 .. 1 only (i = 0 returns x0)
    walks = {}
    for name, kw in (("ode", {"eta": 0.0}), ("window", {"eta": 2.0, "smax": smax})):
        seen = []
        sample_dpmpp_2m_sde(model, x, diff, NoiseSource(range(3)), clip_denoised=False,
                            callback=lambda i, xt, x0: seen.append(xt.clone()), **kw)
        walks[name] = seen
    first_noisy = diff.num_timesteps - 1 - 5          # the callback's index of the step from i = 5
    for j in range(first_noisy):
        torch.testing.assert_close(walks["window"][j], walks["ode"][j], rtol=0, atol=0)
    assert float((walks["window"][first_noisy] - walks["ode"][first_noisy]).abs().max()) > 0.01


@pytest.mark.parametrize("text,canonical", [
    ("dpmpp", "dpmpp"),
    (" dpmpp_sde ", "dpmpp_sde"),
    ("dpmpp_sde:eta=1", "dpmpp_sde"),                         # defaults are dropped
    ("dpmpp_sde:smax=3,eta=2.0,smin=0.1", "dpmpp_sde:eta=2,smin=0.1,smax=3"),
    ("dpmpp_sde:smax=inf", "dpmpp_sde"),
])
def test_sampler_setting_reads_back_in_one_form(text, canonical):
    from microdiff.config import SampleConfig, SamplerSpec
    assert str(SamplerSpec.parse(text)) == canonical
    assert SamplerSpec.parse(canonical) == SamplerSpec.parse(text)
    assert SampleConfig(sampler=text).sampler == canonical


@pytest.mark.parametrize("text,says", [
    ("dpmp", "choose one of"),
    ("dpmpp:eta=1", "takes no options"),
    ("dpmpp_sde:eta", "options are eta, smin, smax"),
    ("dpmpp_sde:eta=1,eta=2", "each once"),
    ("dpmpp_sde:gamma=1", "options are"),
    ("dpmpp_sde:eta=-1", "eta must be a number >= 0"),
    ("dpmpp_sde:eta=nan", "eta must be"),
    ("dpmpp_sde:smin=inf", "smin must be"),
    ("dpmpp_sde:smin=3,smax=1", "smin 3 is above smax 1"),
])
def test_bad_sampler_settings_name_the_setting_and_the_fix(text, says):
    from microdiff.config import SampleConfig, SamplerSpec
    from microdiff.core.errors import ConfigError, SettingError
    with pytest.raises(SettingError, match=says) as e:
        SamplerSpec.parse(text)
    assert e.value.setting == "sampler" and e.value.value == text
    with pytest.raises(ConfigError, match="sample.sampler"):
        SampleConfig(sampler=text)


def test_logsnr_spacing_is_distinct_and_even_in_logsnr():
    base = Diffusion.from_config("linear", 1000)
    for k in (2, 10, 25, 50, 999):
        ts = respace(base, k, "logsnr").timestep_map.tolist()
        assert len(ts) == k and ts[0] == 0 and ts[-1] == 999 and all(np.diff(ts) > 0)
    acp = base.alphas_cumprod
    lam = 0.5 * torch.log(acp / (1 - acp))
    gaps = np.diff(lam[respace(base, 10, "logsnr").timestep_map].numpy())
    np.testing.assert_allclose(gaps, gaps.mean(), rtol=0.1)


def test_classifier_free_guidance_combination_and_scale_one():
    base = Diffusion.from_config("linear", 1000)
    means = [-0.4, 0.5, 0.0]               # class 0, class 1, null (unconditional)
    den = GaussianDenoiser(base, means, S)
    labels = torch.tensor([0, 1, 1, 0])
    x = torch.randn(4, 1, 4, 4, dtype=torch.float64)
    t = torch.full((4,), 500)
    guided = ClassifierFreeGuidance(den, 3.0)(x, t, labels)
    c, u = den(x, t, labels), den(x, t, torch.full_like(labels, 2))
    torch.testing.assert_close(guided.eps, u.eps + 3.0 * (c.eps - u.eps))
    torch.testing.assert_close(guided.x0, predict_x0_from_eps(base, x, t, guided.eps))
    # scale 1 is plain conditional sampling, sample for sample
    diff = respace(base, 20)
    plain = sample_dpmpp_2m(bind_labels(den, labels), x, diff, NoiseSource(range(4)))
    cfg1 = sample_dpmpp_2m(bind_labels(ClassifierFreeGuidance(den, 1.0), labels), x, diff, NoiseSource(range(4)))
    torch.testing.assert_close(plain, cfg1, rtol=0, atol=0)
    # the variance channels come from the conditional pass
    class LabelVariance(GaussianDenoiser):
        def __call__(self, x, t, y=None):
            out = super().__call__(x, t, y)
            return DenoiserOutput(out.eps, out.x0, y.view(-1, 1, 1, 1).expand_as(x).to(x.dtype))
    g = ClassifierFreeGuidance(LabelVariance(base, means, S), 2.0)(x, t, labels)
    assert torch.equal(g.v[:, 0, 0, 0], labels.to(g.v.dtype))


def test_noise_source_is_per_sample():
    a = NoiseSource([5, 6, 7]).randn((2, 3))
    b = NoiseSource([6]).randn((2, 3))
    torch.testing.assert_close(a[1], b[0])
