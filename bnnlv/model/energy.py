"""The black-box α energy of BNN+LV, and the Gaussian algebra it rests on.

Everything here is a pure function of tensors; the model code only produces its inputs.
Spec: ``shared/docs/method.md`` §2 (Hernández-Lobato et al. 2016; Depeweg et al. 2017).
The energies take any leading axes before the sample axis (the replica axis R of model.replicas:
log_lik [R, K, S] gives one energy per replica, [R]); without them they are one model's.
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


def check_sample_terms(
    log_lik: Tensor, log_ratio_w: Tensor, log_ratio_z: Tensor
) -> tuple[int, int]:
    """(K, S) of the energy's sample-dependent inputs, log_lik [..., K, S], log_ratio_w [..., K]
    and log_ratio_z [..., K, S]; ValueError naming the first that does not fit."""
    if log_lik.dim() < 2:
        raise ValueError(f"log_lik must be [..., K, S], got shape {tuple(log_lik.shape)}")
    n_samples, batch = log_lik.shape[-2:]
    if log_ratio_w.shape != log_lik.shape[:-1]:
        raise ValueError(
            f"log_ratio_w must be [..., K]={tuple(log_lik.shape[:-1])}, got "
            f"{tuple(log_ratio_w.shape)}"
        )
    if log_ratio_z.shape != log_lik.shape:
        raise ValueError(
            f"log_ratio_z must match log_lik {tuple(log_lik.shape)}, got {tuple(log_ratio_z.shape)}"
        )
    return n_samples, batch


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
    r"""Minibatch estimate of the black-box α energy :math:`E_\alpha(q)` (NOT per point): a
    scalar, or one per replica [R] with a leading replica axis on every tensor argument.

    ================  =========  ==================================================================
    symbol            argument   shape / meaning
    ================  =========  ==================================================================
    LL_kn             log_lik    [R, K, S]  Σ_d log N(y_nd | f(x_n, z_kn; W_k), σ_d²)
    N·log f(W_k)      log_ratio_w [R, K]    Σ_i [(v_i−λ)/(2λv_i) w_ki² + (m_i/v_i) w_ki], ONE
                                            value per weight sample, at the W_k of the forward
    log f_n(z_kn)     log_ratio_z [R, K, S] Σ_l [(s_l²−γ)/(2γs_l²) z_knl² + (μ_nl/s_nl²) z_knl]
    log Z_q(W)        log_norm_q_w [R]      Σ_i [½ log(2πv_i) + m_i²/(2v_i)]
    log Z_p(W)        log_norm_p_w []       P · ½ log(2πλ)
    log Z_q(z_n)      log_norm_q_z [R, S]   Σ_l [½ log(2πs_nl²) + μ_nl²/(2s_nl²)]
    log Z_p(z)        log_norm_p_z []       L · ½ log(2πγ)
    N                 n_data             number of training points (the factor f(W) has power 1/N)
    α                 alpha              in [0, 1]
    ================  =========  ==================================================================

    .. math::

        T_n = \operatorname{lse}_k\big(α(LL_{kn} − \log f(W_k) − \log f_n(z_{kn}))\big) − \log K

        \hat E = −\frac{N}{αS}\sum_n T_n − \log Z_q(W) + \log Z_p(W)
                 − \frac{N}{S}\sum_n [\log Z_q(z_n) − \log Z_p(z)]

    The logsumexp runs over the K samples separately for every data point n. At α = 0 the
    estimator is its limit, :math:`(1/α) T_n → \operatorname{mean}_k(\cdot)`, i.e. the negative
    ELBO :math:`KL(q(W)‖p(W)) + Σ_n KL(q(z_n)‖p(z)) − Σ_n E_q \log p(y_n|\cdot)`.

    Invariance used by the layers: adding the same constant ``c`` to ``log_ratio_w`` (every k)
    and to ``log_norm_q_w`` leaves :math:`\hat E` unchanged exactly, and so does adding ``c_n``
    to ``log_ratio_z[..., n]`` and to ``log_norm_q_z[..., n]``. The layers drop the large constants
    :math:`Σ m²/(2v)` and :math:`Σ μ²/(2s²)` this way (see :func:`centred_log_ratio`), which keeps
    float32 from cancelling two numbers of order :math:`10^6`.

    Divide by ``n_data`` for the energy per point that the logs report.
    """
    alpha = check_alpha(alpha)
    n_samples, batch = check_sample_terms(log_lik, log_ratio_w, log_ratio_z)
    leading = log_lik.shape[:-2]
    if log_norm_q_z.shape != (*leading, batch):
        raise ValueError(
            f"log_norm_q_z must be [..., S]={(*leading, batch)}, got {tuple(log_norm_q_z.shape)}"
        )

    a = log_lik - log_ratio_w.unsqueeze(-1) / n_data - log_ratio_z  # [R, K, S]
    if alpha == 0.0:
        data_term = a.mean(dim=-2)  # [R, S]   limit of T_n / α
    else:
        data_term = (torch.logsumexp(alpha * a, dim=-2) - math.log(n_samples)) / alpha  # [R, S]
    scale = n_data / batch
    return (
        -scale * data_term.sum(-1)
        - log_norm_q_w
        + log_norm_p_w
        - scale * (log_norm_q_z.sum(-1) - batch * log_norm_p_z)
    )


def centred_log_ratio(
    sample: Tensor, noise: Tensor, prior_var: float | Tensor, sample_dims: int = 1
) -> Tensor:
    r"""Σ_i [w_i²/(2λ) − ε_i²/2] over all but the leading ``sample_dims`` axes: [K, ...] → [K].

    For w = m + √v ε this equals the exact log-factor
    :math:`Σ_i [(v_i−λ)/(2λv_i) w_i² + (m_i/v_i) w_i]` minus the sample-independent constant
    :math:`Σ_i m_i²/(2v_i)`; pair it with :func:`centred_log_norm` (see :func:`bb_alpha_energy`).
    ``sample_dims=2`` keeps [K, S] for per-point latents z [K, S, L].
    """
    flat_sample, flat_noise = sample.flatten(sample_dims), noise.flatten(sample_dims)
    squares = torch.linalg.vecdot(flat_sample, flat_sample) / (2.0 * prior_var)
    return squares - 0.5 * torch.linalg.vecdot(flat_noise, flat_noise)


def centred_log_norm(var: Tensor, keep_dims: int = 0) -> Tensor:
    """Σ_i ½ log(2π v_i): log Z_q of a factorised Gaussian minus Σ_i m_i²/(2v_i), summed over all
    but the leading ``keep_dims`` axes (``keep_dims=1``: one value per replica, [R, ...] → [R])."""
    log_var = var.log().flatten(keep_dims).sum(-1)
    return 0.5 * (log_var + LOG_2PI * math.prod(var.shape[keep_dims:]))


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

    with η = (m/v, 1/v); computed in the cancellation-free form of :func:`gaussian_renyi`.
    β = 1 gives KL(q‖p).
    """
    return gaussian_renyi(mean_q, var_q, mean_p, var_p, beta).sum()


def gaussian_renyi(
    mean_q: Tensor, var_q: Tensor, mean_p: Tensor | float, var_p: Tensor | float, beta: float
) -> Tensor:
    r"""Elementwise :math:`D_β(N(m_q, v_q) ‖ N(m_p, v_p))` for β ∈ [0, 1], stable as β → 1.

    .. math::
        D_β = ½\log\frac{v_p}{v_q} + \frac{\log(1 + t(v_q − v_p)/v_p)}{2t}
              + \frac{β (m_q − m_p)^2}{2 v_β}, \qquad t = 1 − β,\; v_β = v_p + t(v_q − v_p)

    (Gil, Alajaji & Linder 2013), equal to the natural-parameter form of
    :func:`renyi_divergence`, which in float32 loses everything to cancellation at β = 1 − α/N
    with v_q ~ 1e-6: its log Z terms are ~m²/(2v) ~ 1e5 and the difference is divided by α/N.
    Limits: t → 0 is KL(q‖p) (taken exactly at β = 1), β = 0 gives 0.
    """
    if not 0.0 <= beta <= 1.0:
        raise ValueError(f"Rényi order beta must be in [0, 1], got {beta!r}")
    t = 1.0 - beta
    if t == 0.0:
        return 0.5 * ((var_q + (mean_q - mean_p) ** 2) / var_p - 1.0 - torch.log(var_q / var_p))
    var_mix = var_p + t * (var_q - var_p)
    return (
        0.5 * torch.log(var_p / var_q)
        + torch.log1p(t * (var_q - var_p) / var_p) / (2.0 * t)
        + beta * (mean_q - mean_p) ** 2 / (2.0 * var_mix)
    )


def gaussian_kl(mean_q: Tensor, var_q: Tensor, mean_p: Tensor, var_p: Tensor) -> Tensor:
    """KL(q‖p) of factorised Gaussians, summed over elements."""
    return gaussian_renyi(mean_q, var_q, mean_p, var_p, 1.0).sum()


def cavity_gaussian(
    mean_q: Tensor, var_q: Tensor, prior_var: float, power: float
) -> tuple[Tensor, Tensor]:
    r"""(mean, var) of :math:`q̃ ∝ q^{1−a} p^{a}` for q = N(m, v), p = N(0, λ), a = ``power``.

    Natural parameters mix linearly: :math:`1/ṽ = (1−a)/v + a/λ`, :math:`m̃/ṽ = (1−a) m/v`.
    a = 0 gives q, a = 1 the prior. Used with a = α/N for the weights, a = α for the latents.
    """
    if not 0.0 <= power <= 1.0:
        raise ValueError(f"cavity power must be in [0, 1], got {power!r}")
    precision = (1.0 - power) / var_q + power / prior_var
    var = 1.0 / precision
    return (1.0 - power) * mean_q / var_q * var, var


def bb_alpha_energy_cavity(
    log_lik: Tensor, renyi_w: Tensor, renyi_z: Tensor, n_data: int, alpha: float
) -> Tensor:
    r"""Minibatch estimate of :math:`E_α(q)` in the cavity form (NOT per point): a scalar, or one
    per replica [R] with a leading replica axis on every tensor argument.

    ================  ==========  ================================================================
    symbol            argument    shape / meaning
    ================  ==========  ================================================================
    LL_kn             log_lik     [R, K, S]  Σ_d log N(y_nd | f(x_n, z_kn; W_kn), σ_d²) with
                                          W ~ q̃(W) ∝ q(W)^{1−α/N} p(W)^{α/N} and
                                          z_kn ~ q̃_n(z) ∝ q(z_n)^{1−α} p(z)^α, both from
                                          :func:`cavity_gaussian`; W may differ per example
    D_W               renyi_w     [R]     D_{1−α/N}(q(W) ‖ p(W)), closed form
    D_zn              renyi_z     [R, S]  D_{1−α}(q(z_n) ‖ p(z)), closed form (0 without latents)
    N                 n_data      number of training points
    α                 alpha       in [0, 1]
    ================  ==========  ================================================================

    .. math::

        E_α = D^{Rényi}_{1−α/N}(q(W)‖p(W)) + \sum_n D^{Rényi}_{1−α}(q(z_n)‖p(z_n))
              − \frac1α \sum_n \log E_{W∼q̃,\, z∼q̃_n}\big[p(y_n | x_n, z, W)^α\big]

        \hat E = D_W + \frac NS \sum_n D_{z_n}
                 − \frac{N}{αS} \sum_n \big[\operatorname{logsumexp}_k(α LL_{kn}) − \log K\big]

    Exactly equal to the factor form :func:`bb_alpha_energy` in expectation over the inner
    E[·] (method.md §2: E_q[(p_n/f(W))^α] = (Z(η̃)/Z_q) E_q̃[p_n^α]); the two Monte Carlo
    estimators differ, and only this one is valid when W is never materialised as one sample
    per k (flipout, local reparameterisation). At α = 0: q̃ = q, the orders become 1 (KL) and
    the data term is its limit mean_k LL, so :math:`\hat E` is the negative ELBO. At α = 1
    q̃_n is the prior and q(z_n) drops out. Divide by ``n_data`` for the energy per point.
    """
    alpha = check_alpha(alpha)
    if log_lik.dim() < 2:
        raise ValueError(f"log_lik must be [..., K, S], got shape {tuple(log_lik.shape)}")
    n_samples, batch = log_lik.shape[-2:]
    leading = log_lik.shape[:-2]
    if renyi_w.shape != leading:
        raise ValueError(f"renyi_w must be [...]={tuple(leading)}, got {tuple(renyi_w.shape)}")
    if renyi_z.shape != (*leading, batch):
        raise ValueError(
            f"renyi_z must be [..., S]={(*leading, batch)}, got {tuple(renyi_z.shape)}"
        )
    if alpha == 0.0:
        data_term = log_lik.mean(dim=-2)  # [R, S]
    else:
        data_term = (torch.logsumexp(alpha * log_lik, dim=-2) - math.log(n_samples)) / alpha
    scale = n_data / batch
    return renyi_w + scale * renyi_z.sum(-1) - scale * data_term.sum(-1)
