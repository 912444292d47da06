"""The latent's share of the fused step: its draws, closed-form gradients, shape rejections.
(Every parameter's gradient against autograd, inside the whole step, is in test_fused.py.)"""

from __future__ import annotations

import pytest
import torch

from bnnlv.model.fused_latent import (
    inference_grads,
    latent_forward,
    posterior_grad,
    set_latent_grads,
)
from bnnlv.model.latent import AmortisedLatent, PerPointLatent, draw_posterior

F64 = torch.float64


def _amortised(hidden: tuple[int, ...] = (5,)) -> AmortisedLatent:
    torch.manual_seed(0)
    latent = AmortisedLatent(2, 1, latent_dim=2, prior_var=1.5, hidden=hidden).to(F64)
    with torch.no_grad():  # the head starts at zero; move it
        for p in latent.parameters():
            p.add_(0.5 * torch.randn_like(p))
    return latent


@pytest.mark.parametrize("kind", ["per_point", "amortised"])
def test_forward_draws_what_the_module_draws(kind: str) -> None:
    latent = _amortised() if kind == "amortised" else PerPointLatent(9, 2, 1.5).to(F64)
    x, y = torch.randn(1, 4, 2, dtype=F64), torch.randn(1, 4, 1, dtype=F64)
    index = torch.arange(4)[None]
    torch.manual_seed(1)
    ref = latent(index, x, y, 3)
    torch.manual_seed(1)
    got = latent_forward(latent, index, x, y, 3)
    for name, tensor in ref._asdict().items():
        torch.testing.assert_close(getattr(got.draw, name), tensor, rtol=1e-14, atol=0, msg=name)
    assert len(got.layer_inputs) == (2 if kind == "amortised" else 0)


def test_posterior_grad_without_a_data_term_is_the_log_normaliser_alone() -> None:
    """With ∂E'/∂z = 0 and ∂E/∂log f = 0 only −(1/S)·log Z_q(z_n) = −(1/S) Σ ½ log(2πs²) is left:
    ∂/∂μ = 0 and ∂/∂ρ = −(1/(2S))(1 − s²/γ)."""
    mean = torch.zeros(1, 4, 2, dtype=F64)
    var = torch.tensor([[0.3, 0.6]], dtype=F64).expand(1, 4, 2)
    draw = draw_posterior(mean, var, 3, prior_var=1.5)
    grad = posterior_grad(
        draw, torch.zeros(1, 3, 4, 2, dtype=F64), torch.zeros(1, 3, 4, dtype=F64), 1.5, 20
    )
    torch.testing.assert_close(grad[..., :2], torch.zeros(1, 4, 2, dtype=F64))
    torch.testing.assert_close(grad[..., 2:], -(1 - var / 1.5) / 8)


def test_inference_grads_of_a_single_affine_layer_are_the_outer_product() -> None:
    """No hidden layer: u = h₀W + b, so ∂W = h₀ᵀδ and ∂b = Σ_n δ_n exactly."""
    latent = _amortised(hidden=())
    h0, delta = torch.randn(1, 6, 3, dtype=F64), torch.randn(1, 6, 4, dtype=F64)
    ((grad_w, grad_b),) = inference_grads(latent, [h0], delta)
    torch.testing.assert_close(grad_w[0], h0[0].T @ delta[0])
    torch.testing.assert_close(grad_b[0], delta[0].sum(0))


def test_inference_grads_match_autograd_through_the_network() -> None:
    latent = _amortised(hidden=(5, 3))
    x, y = torch.randn(1, 6, 2, dtype=F64), torch.randn(1, 6, 1, dtype=F64)
    delta = torch.randn(1, 6, 4, dtype=F64)
    mean, var = latent.posterior(torch.arange(6)[None], x, y)
    rho = torch.logit(var / latent.prior_var)  # the head's output: (μ, ρ)
    (torch.cat([mean, rho], dim=-1) * delta).sum().backward()
    with torch.no_grad():
        layer_inputs = latent_forward(latent, torch.arange(6)[None], x, y, 2).layer_inputs
        grads = inference_grads(latent, layer_inputs, delta)
    for (weight, bias), (grad_w, grad_b) in zip(latent.linears, grads, strict=True):
        torch.testing.assert_close(grad_w, weight.grad)
        torch.testing.assert_close(grad_b, bias.grad)


def test_set_latent_grads_writes_each_layer_of_the_network() -> None:
    latent = _amortised()
    grads = [(torch.full_like(weight, j), torch.full_like(bias, -j))
             for j, (weight, bias) in enumerate(latent.linears)]  # fmt: skip
    set_latent_grads(latent, torch.arange(3)[None], torch.zeros(1, 3, 4, dtype=F64), grads)
    for (weight, bias), (grad_w, grad_b) in zip(latent.linears, grads, strict=True):
        assert weight.grad is grad_w and bias.grad is grad_b


def test_posterior_grad_rejects_mismatched_shapes() -> None:
    draw = draw_posterior(torch.zeros(1, 4, 2), torch.ones(1, 4, 2), 3, prior_var=1.5)
    with pytest.raises(ValueError, match=r"^grad_z \(1, 3, 4, 1\) and grad_log_ratio \(1, 3, 4\)"):
        posterior_grad(draw, torch.zeros(1, 3, 4, 1), torch.zeros(1, 3, 4), 1.5, 20)
    with pytest.raises(ValueError, match=r"for z \(1, 3, 4, 2\)$"):
        posterior_grad(draw, torch.zeros(1, 3, 4, 2), torch.zeros(1, 4, 3), 1.5, 20)


def test_inference_grads_rejects_a_wrong_number_of_layer_inputs() -> None:
    with pytest.raises(ValueError, match=r"^need 2 layer inputs, got 1$"):
        inference_grads(_amortised(), [torch.zeros(1, 6, 3)], torch.zeros(1, 6, 4))
