"""The mixture predictive and its variance decomposition (method.md §4)."""

from __future__ import annotations

import math
from statistics import NormalDist

import pytest
import torch
from torch.distributions import Normal

from bnnlv.model.predictive import (
    gaussian_log_lik,
    mixture_log_density,
    moments,
    predict_in_chunks,
)

F64 = torch.float64


def _setup(m: int, l_: int, b: int = 5, d: int = 2, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    f = torch.randn(m, l_, b, d, generator=g, dtype=F64)
    log_noise_var = torch.randn(d, generator=g, dtype=F64) - 1.0
    y = torch.randn(b, d, generator=g, dtype=F64)
    return f, log_noise_var, y


def test_one_component_is_the_gaussian_log_density() -> None:
    f, log_noise_var, y = _setup(1, 1)
    joint, marginal = mixture_log_density(f, log_noise_var, y)
    expected = Normal(f[0, 0], (0.5 * log_noise_var).exp()).log_prob(y)  # [B, D]
    torch.testing.assert_close(marginal, expected)
    torch.testing.assert_close(joint, expected.sum(-1))
    torch.testing.assert_close(gaussian_log_lik(y, f[0, 0], log_noise_var), expected.sum(-1))


def test_identical_components_equal_one_component() -> None:
    f, log_noise_var, y = _setup(1, 1)
    one = mixture_log_density(f, log_noise_var, y)
    many = mixture_log_density(f.expand(3, 4, *f.shape[2:]), log_noise_var, y)
    for a, b in zip(one, many, strict=True):
        torch.testing.assert_close(a, b)


def test_two_components_hand_case() -> None:
    """log(½ N(y; a, σ²) + ½ N(y; b, σ²)), with the components on the weight or the latent axis."""
    a, b, y, var = 0.5, -1.5, torch.tensor([[0.2]], dtype=F64), 0.3
    log_noise_var = torch.tensor([math.log(var)], dtype=F64)
    expected = math.log(
        0.5 * math.exp(-((0.2 - a) ** 2) / (2 * var)) / math.sqrt(2 * math.pi * var)
        + 0.5 * math.exp(-((0.2 - b) ** 2) / (2 * var)) / math.sqrt(2 * math.pi * var)
    )
    pair = torch.tensor([a, b], dtype=F64)
    for f in (pair.reshape(2, 1, 1, 1), pair.reshape(1, 2, 1, 1)):
        joint, marginal = mixture_log_density(f, log_noise_var, y)
        assert abs(joint.item() - expected) < 1e-12
        assert abs(marginal.item() - expected) < 1e-12


def test_joint_is_not_the_product_of_marginals_for_a_mixture() -> None:
    f, log_noise_var, y = _setup(3, 2)
    joint, marginal = mixture_log_density(f, log_noise_var, y)
    assert joint.shape == (5,) and marginal.shape == (5, 2)
    assert not torch.allclose(joint, marginal.sum(-1))


def test_epistemic_is_zero_when_weight_samples_agree() -> None:
    f, log_noise_var, _ = _setup(1, 6)
    out = moments(f.expand(4, *f.shape[1:]), log_noise_var)
    torch.testing.assert_close(out.epistemic_var, torch.zeros(5, 2, dtype=F64))
    expected_aleatoric = f[0].var(0, unbiased=False) + log_noise_var.exp()
    torch.testing.assert_close(out.aleatoric_var, expected_aleatoric)


def test_aleatoric_is_the_noise_when_latent_draws_agree() -> None:
    f, log_noise_var, _ = _setup(6, 1)
    out = moments(f.expand(-1, 4, -1, -1), log_noise_var)
    torch.testing.assert_close(out.aleatoric_var, log_noise_var.exp().expand(5, 2))
    torch.testing.assert_close(out.epistemic_var, f[:, 0].var(0, unbiased=False))


def test_total_variance_is_the_law_of_total_variance() -> None:
    f, log_noise_var, _ = _setup(7, 3)
    out = moments(f, log_noise_var)
    torch.testing.assert_close(out.mean, f.mean((0, 1)))
    total = (f**2).mean((0, 1)) - f.mean((0, 1)) ** 2 + log_noise_var.exp()
    torch.testing.assert_close(out.total_var, total)
    assert (out.epistemic_var > 0).all() and (out.aleatoric_var > log_noise_var.exp()).all()


def _per_component(m: int, l_: int, b: int = 5, d: int = 2, seed: int = 1):
    """Component means and one noise log-variance per component, [M, L, B, D] each."""
    g = torch.Generator().manual_seed(seed)
    f = torch.randn(m, l_, b, d, generator=g, dtype=F64)
    log_noise_var = torch.randn(m, l_, b, d, generator=g, dtype=F64) - 1.0
    return f, log_noise_var, torch.randn(b, d, generator=g, dtype=F64)


def test_two_components_with_their_own_noise_hand_case() -> None:
    """log(½ N(y; a, s²) + ½ N(y; b, t²)): a noise head gives each component its own σ²."""
    a, b, s2, t2, y = 0.5, -1.5, 0.3, 2.0, 0.2
    expected = math.log(
        0.5 * math.exp(-((y - a) ** 2) / (2 * s2)) / math.sqrt(2 * math.pi * s2)
        + 0.5 * math.exp(-((y - b) ** 2) / (2 * t2)) / math.sqrt(2 * math.pi * t2)
    )
    means = torch.tensor([a, b], dtype=F64)
    log_vars = torch.tensor([s2, t2], dtype=F64).log()
    for shape in ((2, 1, 1, 1), (1, 2, 1, 1)):
        joint, marginal = mixture_log_density(
            means.reshape(shape), log_vars.reshape(shape), torch.tensor([[y]], dtype=F64)
        )
        assert abs(joint.item() - expected) < 1e-12 and abs(marginal.item() - expected) < 1e-12


def test_per_component_noise_keeps_the_law_of_total_variance() -> None:
    """total = E[f² + σ²] − (E f)² = epistemic + aleatoric, aleatoric = E_m[Var_l f + E_l σ²]."""
    f, log_noise_var, _ = _per_component(7, 3)
    out = moments(f, log_noise_var)
    noise_var = log_noise_var.exp()
    total = (f**2 + noise_var).mean((0, 1)) - f.mean((0, 1)) ** 2
    torch.testing.assert_close(out.total_var, total)
    aleatoric = (f.var(1, unbiased=False) + noise_var.mean(1)).mean(0)
    torch.testing.assert_close(out.aleatoric_var, aleatoric)
    torch.testing.assert_close(out.epistemic_var, f.mean(1).var(0, unbiased=False))


def test_noise_of_one_per_output_equals_it_broadcast_to_every_component() -> None:
    f, log_noise_var, y = _setup(4, 3)
    full = log_noise_var.expand_as(f)
    for a, b in zip(moments(f, log_noise_var), moments(f, full), strict=True):
        torch.testing.assert_close(a, b)
    for a, b in zip(
        mixture_log_density(f, log_noise_var, y), mixture_log_density(f, full, y), strict=True
    ):
        torch.testing.assert_close(a, b)


def test_mixture_and_moments_reject_a_noise_shape_that_fits_neither_form() -> None:
    f, _, y = _setup(2, 3)
    for fn in (lambda v: moments(f, v), lambda v: mixture_log_density(f, v, y)):
        with pytest.raises(ValueError, match=r"^log_noise_var must be \[D\]=2 or"):
            fn(torch.zeros(3, 5, 2, dtype=F64))


def test_chunked_prediction_carries_the_mixture_quantiles() -> None:
    """Quantiles come from the same components as the moments, chunk by chunk; with one
    component per point, its noise from a noise head, they are the Gaussian's mean ± z·σ."""
    x = torch.linspace(-1, 1, 7, dtype=F64)[:, None]  # [B, 1]
    noise_var = 0.25 * (1.0 + x.square())  # [B, 1]

    def one_component(rows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """rows [G=1, b, 1] → the one run's one component: [1, M=1, L=1, b, 1] each."""
        return (3.0 * rows)[:, None, None], (0.25 * (1.0 + rows.square())).log()[:, None, None]

    (pred,) = predict_in_chunks(one_component, x[None], None, rows=3, quantile_probs=[0.05, 0.95])
    assert pred.quantiles is not None and pred.quantiles.shape == (2, 7, 1)
    half = NormalDist().inv_cdf(0.95) * noise_var.sqrt()
    torch.testing.assert_close(pred.quantiles[0], 3.0 * x - half, rtol=0, atol=1e-10)
    torch.testing.assert_close(pred.quantiles[1], 3.0 * x + half, rtol=0, atol=1e-10)
    assert predict_in_chunks(one_component, x[None], None, rows=3)[0].quantiles is None
