"""The noise models: what the network's output means for σ², against closed forms."""

from __future__ import annotations

import math

import pytest
import torch
from torch.nn import functional

from bnnlv.model.likelihood import (
    NOISE_VAR_FLOOR,
    HeteroscedasticNoise,
    HomoscedasticNoise,
    check_components,
    make_noise,
)
from bnnlv.model.predictive import gaussian_log_lik


def test_homoscedastic_noise_is_one_learned_variance_per_output() -> None:
    noise = HomoscedasticNoise(3, 0.2, replicas=2)
    out = torch.randn(2, 4, 5, 3)  # [R, K, B, D]
    mean, log_var = noise.split(out)
    assert noise.head_width == 0 and mean is out
    assert noise.log_var.shape == (2, 3) and log_var.shape == (2, 1, 1, 3)
    torch.testing.assert_close(log_var.exp(), torch.full((2, 1, 1, 3), 0.04))


def test_heteroscedastic_noise_is_a_softplus_of_the_second_head_plus_the_floor() -> None:
    noise = HeteroscedasticNoise(2, 0.3)
    assert noise.head_width == 2 and not list(noise.parameters())
    head = torch.tensor([[0.0, 0.0], [-40.0, 25.0], [1.5, -2.0]], dtype=torch.float64)
    out = torch.cat([torch.randn(3, 2, dtype=torch.float64), head], dim=-1)  # [B, 2D]
    mean, log_var = noise.split(out)
    torch.testing.assert_close(mean, out[:, :2])
    expected = functional.softplus(head + noise.offset) + NOISE_VAR_FLOOR
    torch.testing.assert_close(log_var, expected.log())
    var = log_var.exp()
    assert var[0].tolist() == pytest.approx([0.09, 0.09], rel=1e-12)  # h = 0: σ = noise_std_init
    assert var[1, 0].item() == pytest.approx(NOISE_VAR_FLOOR, rel=1e-6)  # the floor
    assert var[1, 1].item() == pytest.approx(25.0 + noise.offset + NOISE_VAR_FLOOR, rel=1e-9)


def test_heteroscedastic_offset_is_the_inverse_softplus_for_any_start() -> None:
    for std in (0.002, 0.05, 1.0, 30.0):
        noise = HeteroscedasticNoise(1, std)
        var = functional.softplus(torch.tensor(noise.offset, dtype=torch.float64)) + 1e-6
        assert var.item() == pytest.approx(std**2, rel=1e-9)


def test_noise_rejects_bad_settings() -> None:
    with pytest.raises(ValueError, match=r"^noise must be one of .* got 'gaussian'$"):
        make_noise("gaussian", 1, 0.1)
    with pytest.raises(ValueError, match=r"^noise_std_init must exceed 0.001 .* got 0.0005$"):
        make_noise("heteroscedastic", 1, 0.0005)
    assert isinstance(make_noise("homoscedastic", 1, 0.0005), HomoscedasticNoise)


@pytest.mark.parametrize(
    ("f_shape", "var_shape", "match"),
    [
        ((2, 3, 4), (4,), r"^f must be \[M, L, B, D\], got shape \(2, 3, 4\)$"),
        ((2, 3, 4, 2), (1,), r"^log_noise_var must be \[D\]=2 or .* got \(1,\)$"),
        ((2, 3, 4, 2), (4, 2), r"got \(4, 2\)$"),
    ],
)
def test_check_components_rejects_shapes(
    f_shape: tuple[int, ...], var_shape: tuple[int, ...], match: str
) -> None:
    with pytest.raises(ValueError, match=match):
        check_components(torch.zeros(f_shape), torch.zeros(var_shape))
    check_components(torch.zeros(2, 3, 4, 2), torch.zeros(2, 3, 4, 2))
    check_components(torch.zeros(2, 3, 4, 2), torch.zeros(2))


def test_log_variance_has_the_gradient_of_the_closed_form() -> None:
    """d log σ²/dh = sigmoid(h + c) / σ² (float64, autograd against the closed form)."""
    noise = HeteroscedasticNoise(1, 0.5)
    head = torch.tensor([[-3.0], [0.0], [4.0]], dtype=torch.float64, requires_grad=True)
    _, log_var = noise.split(torch.cat([torch.zeros_like(head), head], dim=-1))
    log_var.sum().backward()
    var = functional.softplus(head.detach() + noise.offset) + NOISE_VAR_FLOOR
    assert head.grad is not None
    torch.testing.assert_close(head.grad, torch.sigmoid(head.detach() + noise.offset) / var)
    assert math.isfinite(noise.offset)


@pytest.mark.parametrize("kind", ["homoscedastic", "heteroscedastic"])
def test_likelihood_terms_are_the_log_likelihood_and_its_gradient(kind: str) -> None:
    """LL, ∂LL/∂(output) and ∂LL/∂log σ² of the fused step against autograd, float64, R = 2."""
    noise = make_noise(kind, 2, 0.3, replicas=2).double()
    g = torch.Generator().manual_seed(4)
    out = torch.randn(2, 3, 5, 2 + noise.head_width, generator=g, dtype=torch.float64)
    out.requires_grad_(True)
    y = torch.randn(2, 5, 2, generator=g, dtype=torch.float64)
    terms = noise.terms(out, y)
    mean, log_var = noise.split(out)
    log_lik = gaussian_log_lik(y.unsqueeze(1), mean, log_var)  # [R, K, S]
    torch.testing.assert_close(terms.log_lik, log_lik)
    torch.testing.assert_close(terms.residual, y.unsqueeze(1) - mean)
    closed = 0.5 * ((y.unsqueeze(1) - mean) ** 2 * torch.exp(-log_var) - 1.0)
    torch.testing.assert_close(terms.grad_log_var, closed)
    weights = torch.randn(2, 3, 5, generator=g, dtype=torch.float64)
    params = [out, *noise.parameters()]
    grads = torch.autograd.grad((weights * log_lik).sum(), params)
    torch.testing.assert_close(terms.grad_out * weights[..., None], grads[0])
    if kind == "homoscedastic":  # ∂/∂log σ²_rd = Σ_{k,s} w ∂LL/∂log σ²
        torch.testing.assert_close((weights[..., None] * terms.grad_log_var).sum((1, 2)), grads[1])
