"""The black-box α energy against closed forms, limits and quadrature (method.md §2), float64."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest
import torch
from torch.distributions import Normal, kl_divergence

from bnnlv.model.energy import (
    bb_alpha_energy,
    centred_log_norm,
    centred_log_ratio,
    check_alpha,
    exact_log_norm,
    exact_log_ratio,
    gaussian_kl,
    gaussian_log_partition,
    renyi_divergence,
)

F64 = torch.float64
LOG_2PI = math.log(2 * math.pi)


def _rng(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _posterior(n: int, prior_var: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """A factorised Gaussian q with means ~ N(0, 1) and variances in (0.05, 0.95)·prior_var."""
    g = _rng(seed)
    mean = torch.randn(n, generator=g, dtype=F64)
    var = prior_var * (0.05 + 0.9 * torch.rand(n, generator=g, dtype=F64))
    return mean, var


def _log_factor(w: torch.Tensor, mean: torch.Tensor, var: torch.Tensor, prior_var: float):
    """N·log f(W) written out from method.md §2, summed over the last axis."""
    return ((var - prior_var) / (2 * prior_var * var) * w**2 + mean / var * w).sum(-1)


def _log_norm(mean: torch.Tensor, var: torch.Tensor) -> torch.Tensor:
    """log Z_q = Σ [½ log(2π v) + m²/(2v)] over the last axis."""
    return (0.5 * (LOG_2PI + var.log()) + mean**2 / (2 * var)).sum(-1)


def _prior(var: float) -> Normal:
    """N(0, var) in float64 (python-float arguments would build a float32 distribution)."""
    return Normal(torch.zeros((), dtype=F64), torch.tensor(var, dtype=F64).sqrt())


def _zeros(k: int, s: int) -> dict[str, torch.Tensor | float]:
    """Energy arguments with no weight and no latent part (only log_lik matters)."""
    return dict(
        log_ratio_w=torch.zeros(k, dtype=F64),
        log_ratio_z=torch.zeros(k, s, dtype=F64),
        log_norm_q_w=torch.zeros((), dtype=F64),
        log_norm_p_w=0.0,
        log_norm_q_z=torch.zeros(s, dtype=F64),
        log_norm_p_z=0.0,
    )


# ---------------------------------------------------------------------------------------------
# α → 0: the negative ELBO


def test_alpha_zero_is_negative_elbo_in_expectation() -> None:
    """K = 1 with every sample term replaced by its expectation under q gives the ELBO exactly."""
    lam, gamma, n_points, latent_dim = 1.7, 2.0, 6, 2
    m, v = _posterior(5, lam, seed=0)
    mu, s2 = (t.reshape(n_points, latent_dim) for t in _posterior(12, gamma, seed=1))
    expected_ll = torch.randn(n_points, generator=_rng(2), dtype=F64) - 3.0
    # E_q[a w² + b w] = a (m² + v) + b m
    e_ratio_w = ((v - lam) / (2 * lam * v) * (m**2 + v) + m / v * m).sum()
    e_ratio_z = ((s2 - gamma) / (2 * gamma * s2) * (mu**2 + s2) + mu / s2 * mu).sum(-1)
    energy = bb_alpha_energy(
        expected_ll[None],
        e_ratio_w[None],
        e_ratio_z[None],
        _log_norm(m, v),
        m.numel() * 0.5 * (LOG_2PI + math.log(lam)),
        _log_norm(mu, s2),
        latent_dim * 0.5 * (LOG_2PI + math.log(gamma)),
        n_points,
        alpha=0.0,
    )
    kl_w = kl_divergence(Normal(m, v.sqrt()), _prior(lam)).sum()
    kl_z = kl_divergence(Normal(mu, s2.sqrt()), _prior(gamma)).sum()
    assert energy.item() == pytest.approx((kl_w + kl_z - expected_ll.sum()).item(), rel=1e-12)


def _mc_problem(n_samples: int, n_points: int, batch: int, seed: int = 3):
    """Sampled W_k and z_kn with exact factor terms, plus the log q − log p of the same draws."""
    lam, gamma, latent_dim = 1.3, 1.5, 2
    g = _rng(seed)
    m, v = _posterior(7, lam, seed=seed + 1)
    mu, s2 = (t.reshape(batch, latent_dim) for t in _posterior(batch * latent_dim, gamma, seed))
    w = m + v.sqrt() * torch.randn(n_samples, 7, generator=g, dtype=F64)  # [K, P]
    z = mu + s2.sqrt() * torch.randn(n_samples, batch, latent_dim, generator=g, dtype=F64)
    log_lik = torch.randn(n_samples, batch, generator=g, dtype=F64) - 2.0  # [K, S]
    args = dict(
        log_lik=log_lik,
        log_ratio_w=_log_factor(w, m, v, lam),
        log_ratio_z=_log_factor(z, mu, s2, gamma),
        log_norm_q_w=_log_norm(m, v),
        log_norm_p_w=7 * 0.5 * (LOG_2PI + math.log(lam)),
        log_norm_q_z=_log_norm(mu, s2),
        log_norm_p_z=latent_dim * 0.5 * (LOG_2PI + math.log(gamma)),
        n_data=n_points,
    )
    log_q_over_p_w = (Normal(m, v.sqrt()).log_prob(w) - _prior(lam).log_prob(w)).sum(-1)
    log_q_over_p_z = (Normal(mu, s2.sqrt()).log_prob(z) - _prior(gamma).log_prob(z)).sum(-1)
    return args, log_q_over_p_w, log_q_over_p_z  # [K], [K, S]


@pytest.mark.parametrize(("n_points", "batch"), [(8, 8), (40, 8)])
def test_alpha_zero_matches_independent_negative_elbo_estimate(n_points: int, batch: int) -> None:
    """At α = 0: mean_k[log q/p(W_k)] + (N/S) Σ_n mean_k[log q/p(z_kn) − LL_kn], same draws."""
    args, lqp_w, lqp_z = _mc_problem(n_samples=5, n_points=n_points, batch=batch)
    energy = bb_alpha_energy(**args, alpha=0.0)
    expected = lqp_w.mean() + n_points / batch * (lqp_z - args["log_lik"]).mean(0).sum()
    assert torch.isfinite(energy)
    assert energy.item() == pytest.approx(expected.item(), rel=1e-12)


def test_alpha_zero_estimate_converges_to_closed_form_kl() -> None:
    """With many weight samples the α = 0 weight part approaches KL(q(W)‖p(W))."""
    lam, n_samples = 1.0, 200_000
    m, v = _posterior(3, lam, seed=4)
    g = _rng(5)
    w = m + v.sqrt() * torch.randn(n_samples, 3, generator=g, dtype=F64)
    args = _zeros(n_samples, 1)
    args.update(
        log_ratio_w=_log_factor(w, m, v, lam),
        log_norm_q_w=_log_norm(m, v),
        log_norm_p_w=3 * 0.5 * (LOG_2PI + math.log(lam)),
    )
    energy = bb_alpha_energy(torch.zeros(n_samples, 1, dtype=F64), **args, n_data=10, alpha=0.0)
    kl = kl_divergence(Normal(m, v.sqrt()), _prior(1.0)).sum()
    # the estimator's std error is below 0.01 here; 0.05 is > 5 of them
    assert energy.item() == pytest.approx(kl.item(), abs=0.05)


def test_small_alpha_is_close_to_alpha_zero() -> None:
    args, _, _ = _mc_problem(n_samples=5, n_points=40, batch=8)
    at_zero = bb_alpha_energy(**args, alpha=0.0)
    at_tiny = bb_alpha_energy(**args, alpha=1e-6)
    assert at_tiny.item() == pytest.approx(at_zero.item(), rel=1e-5)
    # and a visibly different objective at α = 1, so the comparison above can fail
    assert abs(bb_alpha_energy(**args, alpha=1.0).item() - at_zero.item()) > 1e-2


def test_alpha_zero_gradient_is_finite() -> None:
    log_lik = torch.randn(4, 3, dtype=F64, requires_grad=True)
    bb_alpha_energy(log_lik, **_zeros(4, 3), n_data=3, alpha=0.0).backward()
    assert log_lik.grad is not None
    torch.testing.assert_close(log_lik.grad, torch.full((4, 3), -0.25, dtype=F64))


# ---------------------------------------------------------------------------------------------
# The deterministic part and the cavity form: Rényi divergences


def _log_mgf(a: torch.Tensor, b: torch.Tensor, mean: torch.Tensor, var: torch.Tensor):
    """log E[exp(a X² + b X)] for X ~ N(mean, var), 1 − 2 a var > 0, elementwise."""
    c = 1 - 2 * a * var
    return -0.5 * c.log() + (a * mean**2 + b * mean + b**2 * var / 2) / c


@pytest.mark.parametrize("alpha", [0.05, 0.5, 1.0])
@pytest.mark.parametrize("n_data", [1, 7, 1000])
def test_deterministic_part_equals_renyi_closed_form(alpha: float, n_data: int) -> None:
    """log Z_p − log Z_q − (N/α) log E_q[f(W)^−α] = D_{1−α/N}(q‖p), both in closed form."""
    lam = 2.0
    m, v = _posterior(6, lam, seed=6)
    a = (v - lam) / (2 * lam * v) / n_data  # log f(w) = a w² + b w per element
    b = m / v / n_data
    log_e_f = _log_mgf(-alpha * a, -alpha * b, m, v).sum()
    det = 6 * 0.5 * (LOG_2PI + math.log(lam)) - _log_norm(m, v) - n_data / alpha * log_e_f
    zero, prior_var = torch.zeros(6, dtype=F64), torch.full((6,), lam, dtype=F64)
    renyi = renyi_divergence(m, v, zero, prior_var, 1 - alpha / n_data)
    assert det.item() == pytest.approx(renyi.item(), rel=1e-10, abs=1e-12)


def _hermite(n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Gauss–Hermite nodes and log-weights for E[g(ε)], ε ~ N(0, 1)."""
    nodes, weights = np.polynomial.hermite_e.hermegauss(n)
    weights = weights / math.sqrt(2 * math.pi)
    return torch.as_tensor(nodes), torch.as_tensor(np.log(weights))


def test_energy_function_weight_part_is_renyi_by_quadrature() -> None:
    """bb_alpha_energy with Gauss–Hermite nodes as 'samples' (their weights carried in log_lik)
    reproduces D_{1−α/N}(q(w)‖p(w)) for a scalar weight and no data term."""
    lam, m, v, n_data, alpha, n_nodes = 1.0, 0.8, 0.3, 5, 0.7, 80
    nodes, log_weights = _hermite(n_nodes)
    w = (m + math.sqrt(v) * nodes)[:, None]  # [K, 1]
    m_t, v_t = torch.tensor([m], dtype=F64), torch.tensor([v], dtype=F64)
    energy = bb_alpha_energy(
        ((log_weights + math.log(n_nodes)) / alpha)[:, None],  # [K, S=1]
        exact_log_ratio(w, m_t, v_t, lam),
        torch.zeros(n_nodes, 1, dtype=F64),
        exact_log_norm(m_t, v_t),
        0.5 * (LOG_2PI + math.log(lam)),
        torch.zeros(1, dtype=F64),
        0.0,
        n_data,
        alpha,
    )
    target = renyi_divergence(
        m_t, v_t, torch.zeros(1, dtype=F64), torch.tensor([lam], dtype=F64), 1 - alpha / n_data
    )
    assert energy.item() == pytest.approx(target.item(), rel=1e-9)


def test_energy_function_latent_part_is_renyi_of_order_one_minus_alpha() -> None:
    """Per-point latents give Σ_n D_{1−α}(q(z_n)‖p(z)) (order 1 − α, not 1 − α/N)."""
    gamma, alpha, n_nodes = 1.5, 0.5, 80
    mu = torch.tensor([0.3, -1.1, 0.0], dtype=F64)
    s2 = torch.tensor([0.2, 0.9, 1.4], dtype=F64)
    nodes, log_weights = _hermite(n_nodes)
    z = mu + s2.sqrt() * nodes[:, None]  # [K, S]
    log_ratio_z = (s2 - gamma) / (2 * gamma * s2) * z**2 + mu / s2 * z
    log_norm_q_z = 0.5 * (LOG_2PI + s2.log()) + mu**2 / (2 * s2)
    energy = bb_alpha_energy(
        ((log_weights + math.log(n_nodes)) / alpha)[:, None].expand(n_nodes, 3),
        torch.zeros(n_nodes, dtype=F64),
        log_ratio_z,
        torch.zeros((), dtype=F64),
        0.0,
        log_norm_q_z,
        0.5 * (LOG_2PI + math.log(gamma)),
        n_data=3,
        alpha=alpha,
    )
    prior_var = torch.full((1,), gamma, dtype=F64)
    zero = torch.zeros(1, dtype=F64)
    target = sum(
        renyi_divergence(mu[n : n + 1], s2[n : n + 1], zero, prior_var, 1 - alpha) for n in range(3)
    )
    assert energy.item() == pytest.approx(float(target), rel=1e-9)
    wrong = sum(
        renyi_divergence(mu[n : n + 1], s2[n : n + 1], zero, prior_var, 1 - alpha / 3)
        for n in range(3)
    )
    assert abs(energy.item() - float(wrong)) > 1e-3


def test_cavity_identity_for_a_scalar_weight_by_quadrature() -> None:
    """E_q[(p_n/f)^α] = (Z(η̃)/Z_q)·E_q̃[p_n^α], η̃ = (1−α/N)η_q + (α/N)η_p, p_n = N(y | wx, σ²)."""
    m, v, lam, n_data, alpha = 0.4, 0.25, 1.0, 3, 0.6
    x, y, noise_var = 1.7, 0.2, 0.5
    grid = np.linspace(-15.0, 15.0, 200_001)

    def normal_pdf(t: np.ndarray, mean: float, var: float) -> np.ndarray:
        return np.exp(-((t - mean) ** 2) / (2 * var)) / math.sqrt(2 * math.pi * var)

    lik = normal_pdf(y, grid * x, noise_var)  # p_n(w)
    log_f = ((v - lam) / (2 * lam * v) * grid**2 + m / v * grid) / n_data
    lhs = np.trapezoid(normal_pdf(grid, m, v) * (lik * np.exp(-log_f)) ** alpha, grid)

    beta = 1 - alpha / n_data
    eta1, eta2 = beta * m / v, beta / v + (1 - beta) / lam
    log_z_tilde = gaussian_log_partition(
        torch.tensor(eta1, dtype=F64), torch.tensor(eta2, dtype=F64)
    ).item()
    log_z_q = gaussian_log_partition(
        torch.tensor(m / v, dtype=F64), torch.tensor(1 / v, dtype=F64)
    ).item()
    e_tilde = np.trapezoid(normal_pdf(grid, eta1 / eta2, 1 / eta2) * lik**alpha, grid)
    rhs = math.exp(log_z_tilde - log_z_q) * e_tilde
    assert lhs == pytest.approx(rhs, rel=1e-9)


# ---------------------------------------------------------------------------------------------
# Structure of the estimator


def test_logsumexp_over_samples_is_per_data_point() -> None:
    a = torch.tensor([[0.0, -3.0], [-2.0, 1.0], [1.0, 0.5]], dtype=F64)  # [K=3, S=2]
    alpha, n_data = 1.0, 10
    energy = bb_alpha_energy(a, **_zeros(3, 2), n_data=n_data, alpha=alpha)
    a_np = a.numpy()
    per_point = np.log(np.exp(alpha * a_np).mean(axis=0))  # T_n, by hand
    expected = -n_data / (alpha * 2) * per_point.sum()
    summed_first = -n_data / (alpha * 2) * np.log(np.exp(alpha * a_np.sum(axis=1)).mean())
    assert energy.item() == pytest.approx(expected, rel=1e-12)
    assert abs(expected - summed_first) > 0.5


def test_centred_and_exact_factor_terms_give_the_same_energy() -> None:
    """Dropping Σ m²/(2v) from both log f(W_k) and log Z_q (and μ²/(2s²) per point) is exact."""
    g = _rng(7)
    lam, gamma, n_samples, batch = 1.0, 2.0, 6, 5
    m = 30.0 * torch.randn(4, 3, generator=g, dtype=F64)  # large constants Σ m²/(2v)
    v = lam * torch.sigmoid(torch.randn(4, 3, generator=g, dtype=F64) - 6)
    eps = torch.randn(n_samples, 4, 3, generator=g, dtype=F64)
    w = m + v.sqrt() * eps
    mu = torch.randn(batch, 1, generator=g, dtype=F64)
    s2 = gamma * torch.sigmoid(torch.randn(batch, 1, generator=g, dtype=F64))
    eps_z = torch.randn(n_samples, batch, 1, generator=g, dtype=F64)
    z = mu + s2.sqrt() * eps_z
    log_lik = torch.randn(n_samples, batch, generator=g, dtype=F64)
    log_norm_p_w = 12 * 0.5 * (LOG_2PI + math.log(lam))
    log_norm_p_z = 0.5 * (LOG_2PI + math.log(gamma))
    for alpha in (0.0, 0.5, 1.0):
        exact = bb_alpha_energy(
            log_lik,
            exact_log_ratio(w, m, v, lam),
            _log_factor(z, mu, s2, gamma),
            exact_log_norm(m, v),
            log_norm_p_w,
            _log_norm(mu, s2),
            log_norm_p_z,
            n_data=50,
            alpha=alpha,
        )
        centred = bb_alpha_energy(
            log_lik,
            centred_log_ratio(w, eps, lam),
            (z**2 / (2 * gamma) - eps_z**2 / 2).sum(-1),
            centred_log_norm(v),
            log_norm_p_w,
            (0.5 * (LOG_2PI + s2.log())).sum(-1),
            log_norm_p_z,
            n_data=50,
            alpha=alpha,
        )
        assert centred.item() == pytest.approx(exact.item(), rel=1e-10)


@pytest.mark.parametrize(
    ("field", "bad"),
    [
        ("log_lik", torch.zeros(4, dtype=F64)),
        ("log_ratio_w", torch.zeros(4, 1, dtype=F64)),
        ("log_ratio_w", torch.zeros(3, dtype=F64)),
        ("log_ratio_z", torch.zeros(4, 2, dtype=F64)),
        ("log_norm_q_z", torch.zeros(4, dtype=F64)),
    ],
)
def test_shape_mismatch_is_rejected(field: str, bad: torch.Tensor) -> None:
    args = dict(log_lik=torch.zeros(4, 3, dtype=F64), **_zeros(4, 3))
    args[field] = bad
    with pytest.raises(ValueError, match=field):
        bb_alpha_energy(**args, n_data=10, alpha=0.5)


@pytest.mark.parametrize("alpha", [0.0, 0.5, 1.0])
def test_replicas_on_a_leading_axis_each_get_their_own_energy(alpha: float) -> None:
    """[R, K, S] inputs give [R] energies, replica r's that of its [K, S] slice alone."""
    g = _rng(11)
    terms = {
        "log_lik": torch.randn(3, 5, 4, generator=g, dtype=F64),
        "log_ratio_w": torch.randn(3, 5, generator=g, dtype=F64),
        "log_ratio_z": torch.randn(3, 5, 4, generator=g, dtype=F64),
        "log_norm_q_w": torch.randn(3, generator=g, dtype=F64),
        "log_norm_q_z": torch.randn(3, 4, generator=g, dtype=F64),
    }
    energy = bb_alpha_energy(**terms, log_norm_p_w=1.5, log_norm_p_z=0.3, n_data=20, alpha=alpha)
    assert energy.shape == (3,)
    for r in range(3):
        alone = bb_alpha_energy(
            **{name: t[r] for name, t in terms.items()}, log_norm_p_w=1.5, log_norm_p_z=0.3,
            n_data=20, alpha=alpha,
        )  # fmt: skip
        torch.testing.assert_close(energy[r], alone, rtol=1e-14, atol=0)


def test_replica_shapes_must_agree() -> None:
    args = dict(log_lik=torch.zeros(2, 4, 3, dtype=F64), **_zeros(4, 3))
    with pytest.raises(
        ValueError, match=r"^log_ratio_w must be \[\.\.\., K\]=\(2, 4\), got \(4,\)$"
    ):
        bb_alpha_energy(**args, n_data=10, alpha=0.5)


def test_centred_log_norm_keeps_the_replica_axis() -> None:
    var = torch.rand(3, 4, 2, generator=_rng(2), dtype=F64) + 0.1
    per_replica = centred_log_norm(var, keep_dims=1)
    torch.testing.assert_close(per_replica, torch.stack([centred_log_norm(v) for v in var]))
    assert centred_log_norm(var).item() == pytest.approx(per_replica.sum().item())


@pytest.mark.parametrize("bad", [-0.1, 1.5, float("nan"), float("inf"), "0.5", None, True])
def test_alpha_outside_unit_interval_or_not_a_number_is_rejected(bad: object) -> None:
    with pytest.raises(ValueError, match=re.escape(repr(bad))):
        check_alpha(bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="alpha"):
        bb_alpha_energy(torch.zeros(2, 1, dtype=F64), **_zeros(2, 1), n_data=1, alpha=bad)  # type: ignore[arg-type]


@pytest.mark.parametrize("alpha", [0, 0.0, 0.3, 1, 1.0])
def test_alpha_in_unit_interval_is_accepted(alpha: float) -> None:
    assert check_alpha(alpha) == float(alpha)


# ---------------------------------------------------------------------------------------------
# Gaussian helpers


def test_gaussian_kl_hand_case() -> None:
    """KL(N(1, 2) ‖ N(0, 1)) = ½(2 + 1 − 1 − log 2) = 1 − ½ log 2, summed over elements."""
    one = torch.ones(2, dtype=F64)
    kl = gaussian_kl(one, 2 * one, 0 * one, one)
    assert kl.item() == pytest.approx(2 * (1 - 0.5 * math.log(2)), rel=1e-14)
    assert gaussian_kl(one, 2 * one, one, 2 * one).item() == 0.0


def test_renyi_tends_to_kl_as_beta_tends_to_one() -> None:
    m, v = _posterior(5, 1.0, seed=8)
    mp, vp = _posterior(5, 2.0, seed=9)
    kl = gaussian_kl(m, v, mp, vp).item()
    assert renyi_divergence(m, v, mp, vp, 1.0).item() == kl
    gaps = [abs(renyi_divergence(m, v, mp, vp, 1 - d).item() - kl) for d in (1e-2, 1e-4, 1e-6)]
    assert gaps[0] > gaps[1] > gaps[2]
    assert gaps[2] < 1e-5 * max(kl, 1.0)


def test_renyi_of_equal_distributions_is_zero_and_half_order_hand_case() -> None:
    m, v = _posterior(3, 1.0, seed=10)
    assert renyi_divergence(m, v, m, v, 0.3).item() == pytest.approx(0.0, abs=1e-12)
    # D_½(N(a, 1) ‖ N(b, 1)) = (a − b)²/4
    a, b = torch.tensor([1.5], dtype=F64), torch.tensor([-0.5], dtype=F64)
    one = torch.ones(1, dtype=F64)
    assert renyi_divergence(a, one, b, one, 0.5).item() == pytest.approx(1.0, rel=1e-12)


def test_gaussian_log_partition_matches_normaliser() -> None:
    """log Z(m/v, 1/v) = ½ log(2πv) + m²/(2v) = exact_log_norm of one element."""
    m, v = _posterior(4, 1.0, seed=11)
    log_z = gaussian_log_partition(m / v, 1 / v)
    torch.testing.assert_close(log_z.sum(), exact_log_norm(m, v))


def test_centred_log_ratio_keeps_the_leading_sample_dims() -> None:
    """[K, S, L] latents with sample_dims=2: one sum over L per (k, n), the same numbers as the
    weights' [K, P] form applied row by row."""
    g = _rng(7)
    z, eps = (
        torch.randn(3, 4, 2, generator=g, dtype=F64),
        torch.randn(3, 4, 2, generator=g, dtype=F64),
    )
    per_point = centred_log_ratio(z, eps, 2.5, sample_dims=2)
    assert per_point.shape == (3, 4)
    expected = (z**2 / 5.0 - 0.5 * eps**2).sum(-1)
    torch.testing.assert_close(per_point, expected)
    torch.testing.assert_close(centred_log_ratio(z, eps, 2.5), expected.sum(-1))
