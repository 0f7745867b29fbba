"""The paper's Section 2.2 as pure tensor functions: ``schedule`` (betas, the forward process,
posterior and learned Sigma, eqs. 1-7, respacing), ``losses`` (the hybrid loss, eq. 3 and the
recipes' weightings) and ``samplers`` (ancestral, DDIM, DPM-Solver++ 2M and its SDE form, one
signature)."""
from .losses import (DiffusionLoss, discretized_gaussian_log_likelihood, hybrid_loss, lognormal_timesteps, normal_kl,
                     snr, vb_terms_bpd, x0_weight)
from .samplers import (DEFAULT_SPACING, SAMPLERS, NoiseSource, get_sampler, sample_ancestral, sample_ddim,
                       sample_dpmpp_2m, sample_dpmpp_2m_sde)
from .schedule import (Diffusion, extract, learned_log_variance, linear_betas, logsnr_timesteps, make_betas,
                       p_mean_variance, predict_eps_from_x0, predict_x0_from_eps, q_posterior, q_sample, respace,
                       space_timesteps, split_output)

__all__ = [n for n in dir() if not n.startswith("_")]
