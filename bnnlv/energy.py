"""The black-box α energy of BNN+LV, and the Gaussian algebra it rests on.

Everything here is a pure function of tensors; the model code only produces its inputs.
Spec: ``shared/docs/method.md`` §2 (Hernández-Lobato et al. 2016; Depeweg et al. 2017).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

LOG_2PI = math.log(2.0 * math.pi)


def check_alpha(alpha: float) -> float:
    """Return ``alpha`` as a float, or raise ``ValueError`` unless it is a number in [0, 1]."""
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float)):
        raise ValueError(f"alpha must be a number in [0, 1], got {alpha!r}")
    if not 0.0 <= float(alpha) <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], got {alpha!r}")
    return float(alpha)


def bb_alpha_energy(
    log_lik: Tensor,
    log_ratio_w: Tensor,
    log_ratio_z: Tensor,
    log_norm_q_w: Tensor,
    log_norm_p_w: Tensor | float,
    log_norm_q_z: Tensor,
    log_norm_p_z: Tensor | float,
    n_data: int,
    alpha: float,
) -> Tensor:
    r"""Minibatch estimate of the black-box α energy :math:`E_\alpha(q)` (a scalar, NOT per point).

    ================  =========  ==================================================================
    symbol            argument   shape / meaning
    ================  =========  ==================================================================
    LL_kn             log_lik    [K, S]  Σ_d log N(y_nd | f(x_n, z_kn; W_k), σ_d²)
    N·log f(W_k)      log_ratio_w [K]    Σ_i [(v_i−λ)/(2λv_i) w_ki² + (m_i/v_i) w_ki], ONE value
                                         per weight sample, at the W_k used in the forward pass
    log f_n(z_kn)     log_ratio_z [K, S] Σ_l [(s_l²−γ)/(2γs_l²) z_knl² + (μ_nl/s_nl²) z_knl]
    log Z_q(W)        log_norm_q_w []    Σ_i [½ log(2πv_i) + m_i²/(2v_i)]
    log Z_p(W)        log_norm_p_w []    P · ½ log(2πλ)
    log Z_q(z_n)      log_norm_q_z [S]   Σ_l [½ log(2πs_nl²) + μ_nl²/(2s_nl²)]
    log Z_p(z)        log_norm_p_z []    L · ½ log(2πγ)
    N                 n_data             number of training points (the factor f(W) has power 1/N)
    α                 alpha              in [0, 1]
    ================  =========  ==================================================================

    .. math::

        T_n = \operatorname{logsumexp}_k\big(α(LL_{kn} − \log f(W_k) − \log f_n(z_{kn}))\big) − \log K

        \hat E = −\frac{N}{αS}\sum_n T_n − \log Z_q(W) + \log Z_p(W)
                 − \frac{N}{S}\sum_n [\log Z_q(z_n) − \log Z_p(z)]

    The logsumexp runs over the K samples separately for every data point n. At α = 0 the
    estimator is its limit, :math:`(1/α) T_n → \operatorname{mean}_k(\cdot)`, i.e. the negative
    ELBO :math:`KL(q(W)‖p(W)) + Σ_n KL(q(z_n)‖p(z)) − Σ_n E_q \log p(y_n|\cdot)`.

    Invariance used by the layers: adding the same constant ``c`` to ``log_ratio_w`` (every k)
    and to ``log_norm_q_w`` leaves :math:`\hat E` unchanged exactly, and so does adding ``c_n``
    to ``log_ratio_z[:, n]`` and to ``log_norm_q_z[n]``. The layers drop the large constants
    :math:`Σ m²/(2v)` and :math:`Σ μ²/(2s²)` this way (see :func:`centred_log_ratio`), which keeps
    float32 from cancelling two numbers of order :math:`10^6`.

    Divide by ``n_data`` for the energy per point that the logs report.
    """
    alpha = check_alpha(alpha)
    if log_lik.dim() != 2:
        raise ValueError(f"log_lik must be [K, S], got shape {tuple(log_lik.shape)}")
    n_samples, batch = log_lik.shape
    if log_ratio_w.shape != (n_samples,):
        raise ValueError(f"log_ratio_w must be [K]={n_samples}, got {tuple(log_ratio_w.shape)}")
    if log_ratio_z.shape != log_lik.shape:
        raise ValueError(
            f"log_ratio_z must match log_lik {tuple(log_lik.shape)}, got {tuple(log_ratio_z.shape)}"
        )
    if log_norm_q_z.shape != (batch,):
        raise ValueError(f"log_norm_q_z must be [S]={batch}, got {tuple(log_norm_q_z.shape)}")

    a = log_lik - log_ratio_w[:, None] / n_data - log_ratio_z  # [K, S]
    if alpha == 0.0:
        data_term = a.mean(dim=0)  # [S]   limit of T_n / α
    else:
        data_term = (torch.logsumexp(alpha * a, dim=0) - math.log(n_samples)) / alpha  # [S]
    scale = n_data / batch
    return (
        -scale * data_term.sum()
        - log_norm_q_w
        + log_norm_p_w
        - scale * (log_norm_q_z.sum() - batch * log_norm_p_z)
    )


def centred_log_ratio(sample: Tensor, noise: Tensor, prior_var: float | Tensor) -> Tensor:
    r"""Σ_i [w_i²/(2λ) − ε_i²/2] over all but the leading sample axis: [K, ...] → [K].

    For w = m + √v ε this equals the exact log-factor
    :math:`Σ_i [(v_i−λ)/(2λv_i) w_i² + (m_i/v_i) w_i]` minus the sample-independent constant
    :math:`Σ_i m_i²/(2v_i)`; pair it with :func:`centred_log_norm` (see :func:`bb_alpha_energy`).
    """
    per_element = sample.square() / (2.0 * prior_var) - 0.5 * noise.square()
    return per_element.flatten(start_dim=1).sum(dim=1)


def centred_log_norm(var: Tensor) -> Tensor:
    """Σ_i ½ log(2π v_i): log Z_q of a factorised Gaussian minus Σ_i m_i²/(2v_i)."""
    return 0.5 * (LOG_2PI + var.log()).sum()


def exact_log_ratio(sample: Tensor, mean: Tensor, var: Tensor, prior_var: float) -> Tensor:
    """Σ_i [(v_i−λ)/(2λv_i) w_i² + (m_i/v_i) w_i] over all but the leading axis: [K, ...] → [K].

    The textbook form of N·log f(W); kept as the reference the centred form is tested against.
    """
    per_element = (var - prior_var) / (2.0 * prior_var * var) * sample.square()
    per_element = per_element + mean / var * sample
    return per_element.flatten(start_dim=1).sum(dim=1)


def exact_log_norm(mean: Tensor, var: Tensor) -> Tensor:
    """log Z_q = Σ_i [½ log(2π v_i) + m_i²/(2 v_i)] of a factorised Gaussian."""
    return (0.5 * (LOG_2PI + var.log()) + mean.square() / (2.0 * var)).sum()


def gaussian_log_partition(eta1: Tensor, eta2: Tensor) -> Tensor:
    """log Z(η) = ½ log(2π/η₂) + η₁²/(2η₂) for natural parameters η = (m/v, 1/v), elementwise."""
    return 0.5 * (LOG_2PI - eta2.log()) + eta1.square() / (2.0 * eta2)


def renyi_divergence(
    mean_q: Tensor, var_q: Tensor, mean_p: Tensor, var_p: Tensor, beta: float
) -> Tensor:
    r"""Rényi divergence :math:`D_β(q‖p)` of factorised Gaussians, summed over elements.

    .. math::
        D_β(q‖p) = \frac{\log Z(βη_q + (1−β)η_p) − β\log Z(η_q) − (1−β)\log Z(η_p)}{β − 1}

    with η = (m/v, 1/v). β → 1 gives KL(q‖p) (use :func:`gaussian_kl` there).
    """
    if beta == 1.0:
        return gaussian_kl(mean_q, var_q, mean_p, var_p)
    eta_q = (mean_q / var_q, 1.0 / var_q)
    eta_p = (mean_p / var_p, 1.0 / var_p)
    mixed = gaussian_log_partition(
        beta * eta_q[0] + (1 - beta) * eta_p[0], beta * eta_q[1] + (1 - beta) * eta_p[1]
    )
    log_z_q = gaussian_log_partition(*eta_q)
    log_z_p = gaussian_log_partition(*eta_p)
    return ((mixed - beta * log_z_q - (1 - beta) * log_z_p) / (beta - 1.0)).sum()


def gaussian_kl(mean_q: Tensor, var_q: Tensor, mean_p: Tensor, var_p: Tensor) -> Tensor:
    """KL(q‖p) of factorised Gaussians, summed over elements."""
    kl = 0.5 * ((var_q + (mean_q - mean_p).square()) / var_p - 1.0 + var_p.log() - var_q.log())
    return kl.sum()
