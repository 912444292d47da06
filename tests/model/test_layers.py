"""Bayesian linear layers: shapes, the shared weight sample, the log-factor, layer selection.
Shapes carry the replica axis first (one replica unless a test says otherwise)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from bnnlv.model.energy import exact_log_ratio
from bnnlv.model.layers import BayesianLinear, BayesianMLP
from bnnlv.model.replicas import seeded

F64 = torch.float64


def _layer(d_in: int = 3, d_out: int = 2, prior_var: float = 1.5, **kwargs) -> BayesianLinear:
    torch.manual_seed(0)
    layer = BayesianLinear(d_in, d_out, prior_var, posterior_std_init=0.3, **kwargs).double()
    with torch.no_grad():  # a non-trivial posterior: distinct means and variances
        for p in layer.parameters():
            p.add_(0.5 * torch.randn_like(p))
    return layer


def test_output_shape_is_replica_then_sample_first() -> None:
    layer = _layer(3, 2, replicas=4)
    out = layer(torch.randn(4, 5, 7, 3, dtype=F64))
    assert layer.weight_mean.shape == (4, 3, 2) and layer.bias_mean.shape == (4, 2)
    assert out.output.shape == (4, 5, 7, 2)
    assert out.log_ratio.shape == (4, 5)


def test_one_weight_sample_is_shared_by_the_batch() -> None:
    layer = _layer(3, 2)
    row = torch.randn(3, dtype=F64)
    out = layer(row.expand(1, 4, 6, 3)).output[0]  # the same input row, 6 times, in 4 samples
    assert torch.equal(out, out[:, :1].expand_as(out))  # identical within a sample
    for k in range(1, 4):
        assert not torch.allclose(out[0, 0], out[k, 0])  # different across samples


def test_log_ratio_equals_exact_factor_minus_constant_with_the_same_noise() -> None:
    """log_ratio_k = N·log f(W_k) − Σ m²/(2v), at the W_k that produced the output."""
    layer = _layer(3, 2)
    x = torch.randn(1, 4, 5, 3, dtype=F64)
    torch.manual_seed(123)
    out = layer(x)
    torch.manual_seed(123)  # re-draw the layer's noise: weights first, then biases
    eps_w = torch.randn(4, 3, 2, dtype=F64)
    eps_b = torch.randn(4, 2, dtype=F64)
    v_w, v_b = (v[0] for v in layer.variances())
    m_w, m_b = layer.weight_mean[0], layer.bias_mean[0]
    w = m_w + v_w.sqrt() * eps_w
    b = m_b + v_b.sqrt() * eps_b
    torch.testing.assert_close(out.output[0], x[0] @ w + b[:, None, :])
    exact = exact_log_ratio(w, m_w, v_w, layer.prior_var) + exact_log_ratio(
        b, m_b, v_b, layer.prior_var
    )
    constant = (m_w**2 / (2 * v_w)).sum() + (m_b**2 / (2 * v_b)).sum()
    torch.testing.assert_close(out.log_ratio[0], exact - constant)
    assert out.log_ratio.unique().numel() == 4  # one value per weight sample


def test_replicas_draw_from_their_own_generators() -> None:
    """Replica r's initial means and weight noise are those of a one-replica layer built and
    run with its generator alone."""
    x = torch.randn(3, 2, 5, 3)
    layer = BayesianLinear(3, 2, 1.0, 0.3, generators=seeded([7, 8, 9]))
    out = layer(x, seeded([1, 2, 3]))
    for r, (seed, draw_seed) in enumerate(((7, 1), (8, 2), (9, 3))):
        alone = BayesianLinear(3, 2, 1.0, 0.3, generators=seeded([seed]))
        torch.testing.assert_close(alone.weight_mean[0], layer.weight_mean[r], rtol=0, atol=0)
        single = alone(x[r : r + 1], seeded([draw_seed]))
        torch.testing.assert_close(single.output[0], out.output[r], rtol=1e-6, atol=1e-6)
        torch.testing.assert_close(single.log_ratio[0], out.log_ratio[r])


def test_log_norms() -> None:
    layer = _layer(3, 2, prior_var=1.5)
    v_w, v_b = layer.variances()
    log_2pi = torch.log(torch.tensor(2 * torch.pi, dtype=F64))
    expected = 0.5 * (log_2pi + v_w.log()).sum() + 0.5 * (log_2pi + v_b.log()).sum()
    torch.testing.assert_close(layer.log_norm_q(), expected[None])
    assert layer.n_stochastic == 3 * 2 + 2
    assert layer.log_norm_p() == pytest.approx(
        8 * 0.5 * (log_2pi.item() + torch.log(torch.tensor(1.5)).item())
    )


def test_deterministic_layer_has_no_factor() -> None:
    layer = _layer(3, 2, stochastic=False)
    x = torch.randn(5, 3, dtype=F64).expand(1, 4, 5, 3)
    out = layer(x)
    assert torch.equal(out.log_ratio, torch.zeros(1, 4, dtype=F64))
    torch.testing.assert_close(out.output[0], x[0] @ layer.weight_mean[0] + layer.bias_mean[0])
    assert torch.equal(out.output[0, 0], out.output[0, 3])
    assert layer.n_stochastic == 0
    assert layer.log_norm_p() == 0.0
    assert layer.log_norm_q().item() == 0.0
    assert not hasattr(layer, "weight_rho")


@pytest.mark.parametrize("prior_var", [0.01, 1.0, 4.0])
@pytest.mark.parametrize("std_init", [1e-3, 0.5, 10.0])
def test_variance_never_exceeds_prior(prior_var: float, std_init: float) -> None:
    layer = BayesianLinear(4, 3, prior_var, posterior_std_init=std_init)
    assert all((v <= prior_var).all() for v in layer.variances())
    with torch.no_grad():
        layer.weight_rho.copy_(20 * torch.randn_like(layer.weight_rho))
        layer.bias_rho.fill_(60.0)
    v_w, v_b = layer.variances()
    assert (v_w <= prior_var).all() and (v_b <= prior_var).all() and (v_w > 0).any()


def test_initial_std_is_the_configured_one_when_below_the_prior() -> None:
    layer = BayesianLinear(4, 3, prior_var=1.0, posterior_std_init=1e-3)
    v_w, v_b = layer.variances()
    torch.testing.assert_close(v_w.sqrt(), torch.full_like(v_w, 1e-3))
    torch.testing.assert_close(v_b.sqrt(), torch.full_like(v_b, 1e-3))


@pytest.mark.parametrize(
    ("kwargs", "text"),
    [
        (dict(in_features=0), "0x2"),
        (dict(prior_var=-1.0), "-1.0"),
        (dict(posterior_std_init=0.0), "0.0"),
    ],
)
def test_bad_layer_arguments_are_rejected(kwargs: dict, text: str) -> None:
    args = dict(in_features=3, out_features=2, prior_var=1.0, posterior_std_init=0.1) | kwargs
    with pytest.raises(ValueError, match=text):
        BayesianLinear(**args)


# ---------------------------------------------------------------------------------------------
# Layer selection and the MLP


def test_mlp_partially_stochastic() -> None:
    torch.manual_seed(0)
    mlp = BayesianMLP(2, [4, 5], 1, prior_var=1.0, posterior_std_init=0.1, stochastic_layers=[-1])
    assert [layer.stochastic for layer in mlp.layers] == [False, False, True]
    assert mlp.n_stochastic == 5 * 1 + 1
    out = mlp(torch.randn(1, 3, 6, 2))
    assert out.output.shape == (1, 3, 6, 1)
    assert out.log_ratio.shape == (1, 3)
    deterministic = BayesianMLP(2, [4], 1, 1.0, 0.1, stochastic_layers=[])
    out = deterministic(torch.randn(6, 2).expand(1, 3, 6, 2))
    assert deterministic.n_stochastic == 0
    assert torch.equal(out.log_ratio, torch.zeros(1, 3))
    assert torch.equal(out.output[0, 0], out.output[0, 2])


def test_mlp_draw_is_each_layers_draw_and_log_factor() -> None:
    """The pooled draw: each layer's (w, b) are m + √v ε with its own (m, v), F is the layers
    applied in turn, and the log-factor is Σ over layers of the textbook form minus Σ m²/(2v)."""
    torch.manual_seed(0)
    mlp = BayesianMLP(2, [4], 3, prior_var=1.5, posterior_std_init=0.2).double()
    with torch.no_grad():  # distinct variances per weight
        for layer in mlp.bayesian_layers:
            layer.weight_rho.uniform_(-3.0, 0.0)
            layer.bias_rho.uniform_(-3.0, 0.0)
    x = torch.randn(1, 5, 6, 2, dtype=F64)
    draw = mlp.draw(5, x)
    assert [tuple(w.shape) for w, _ in draw.weights] == [(5, 2, 4), (5, 4, 3)]  # [R·K, ·, ·]
    assert [tuple(b.shape) for _, b in draw.weights] == [(5, 4), (5, 3)]
    expected_ratio = torch.zeros(5, dtype=F64)
    h = x[0]
    for i, (layer, (w, b)) in enumerate(zip(mlp.bayesian_layers, draw.weights, strict=True)):
        v_w, v_b = (v[0] for v in layer.variances())
        means = layer.weight_mean[0], layer.bias_mean[0]
        for sample, mean, var in ((w, means[0], v_w), (b, means[1], v_b)):
            constant = (mean.square() / (2 * var)).sum()
            expected_ratio += exact_log_ratio(sample, mean, var, 1.5) - constant
        h = torch.bmm(h, w) + b.unsqueeze(1)
        h = torch.relu(h) if i == 0 else h
    torch.testing.assert_close(draw.log_ratio[0], expected_ratio)
    expected_norm = mlp.layers[0].log_norm_q() + mlp.layers[1].log_norm_q()
    torch.testing.assert_close(draw.log_norm_q, expected_norm)
    torch.testing.assert_close(mlp.apply_weights(x, draw.weights)[0], h)
    assert mlp.log_norm_p() == pytest.approx(
        mlp.layers[0].log_norm_p() + mlp.layers[1].log_norm_p()
    )
    assert isinstance(mlp.layers, nn.ModuleList)


def test_mlp_draw_has_the_posterior_moments() -> None:
    """Over many draws every pooled weight has mean m and variance v (5σ, float64)."""
    torch.manual_seed(1)
    mlp = BayesianMLP(1, [3], 2, prior_var=1.0, posterior_std_init=0.3).double()
    n = 40_000
    draw = mlp.draw(n, torch.zeros((), dtype=F64))
    for layer, (w, b) in zip(mlp.bayesian_layers, draw.weights, strict=True):
        v_w, v_b = layer.variances()
        for sample, mean, var in ((w, layer.weight_mean, v_w), (b, layer.bias_mean, v_b)):
            assert ((sample.mean(0) - mean[0]).abs() <= 5 * (var[0] / n).sqrt()).all()
            assert ((sample.var(0) / var[0] - 1).abs() <= 5 * (2 / n) ** 0.5).all()


def test_mlp_draw_keeps_deterministic_layers_at_their_means() -> None:
    mlp = BayesianMLP(2, [4], 1, prior_var=1.0, posterior_std_init=0.1, stochastic_layers=[-1])
    draw = mlp.draw(3, torch.zeros(()))
    assert draw.weights[0][0] is mlp.layers[0].weight_mean
    assert draw.weights[1][0].shape == (3, 4, 1)  # [R·K, d_in, d_out]
    torch.testing.assert_close(draw.log_norm_q, mlp.layers[1].log_norm_q())


def test_mlp_rejects_bad_hidden_sizes() -> None:
    with pytest.raises(ValueError, match="-4"):
        BayesianMLP(2, [4, -4], 1, 1.0, 0.1)
