"""The model at new inputs: the predictive's components and the fixed-weight dynamics map."""

from __future__ import annotations

import math
from typing import Any

import pytest
import torch

from bnnlv.model import components as components_module
from bnnlv.model.lit_module import BNNLV


def _model(**kwargs: Any) -> BNNLV:
    torch.manual_seed(0)
    args: dict[str, Any] = dict(
        in_features=3, out_features=2, n_train=40, batch_size=8, hidden=[6, 5],
        posterior_std_init=0.2,
    )  # fmt: skip
    return BNNLV(**(args | kwargs))


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


@pytest.mark.parametrize("noise", ["homoscedastic", "heteroscedastic"])
def test_components_are_the_mixture_the_predictive_summarises(noise: str) -> None:
    """[M, L, B, D] means and noise variances; the same generator seed, the same draws; the
    predictive's moments are those of these components."""
    model = _model(noise=noise)
    x = torch.randn(9, 3, generator=_gen(1))
    comp = model.components(x, 4, 5, _gen(7))
    assert comp.mean.shape == comp.noise_var.shape == (4, 5, 9, 2)
    again = model.components(x, 4, 5, _gen(7))
    assert torch.equal(comp.mean, again.mean) and torch.equal(comp.noise_var, again.noise_var)
    assert not torch.equal(comp.mean, model.components(x, 4, 5, _gen(8)).mean)
    assert (comp.mean.std(dim=(0, 1)) > 0).all()  # weight and latent draws differ
    moments = model.predict(x, n_weights=4, n_latent=5, generator=_gen(7)).moments
    torch.testing.assert_close(moments.mean, comp.mean.mean((0, 1)))
    total = (comp.mean**2 + comp.noise_var).mean((0, 1)) - comp.mean.mean((0, 1)) ** 2
    torch.testing.assert_close(moments.total_var, total, rtol=1e-4, atol=1e-6)
    if noise == "homoscedastic":
        torch.testing.assert_close(comp.noise_var, model.noise.log_var.exp().expand(4, 5, 9, 2))
    else:
        assert comp.noise_var.flatten(0, 2).std(dim=0).min() > 0  # σ per component and point


@pytest.mark.parametrize("noise", ["homoscedastic", "heteroscedastic"])
@pytest.mark.parametrize("rows", [1, 7])
def test_components_in_blocks_of_rows_equal_one_pass(
    noise: str, rows: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The network runs over the L·B rows a block at a time (rows = BLOCK_ELEMENTS / (n_w · the
    widest layer, 6 here)): blocks of 1 row and of 7 (the last one ragged, 45 = 6·7 + 3) give
    the components of one pass over all rows, from the same draws."""
    model = _model(noise=noise)
    x = torch.randn(9, 3, generator=_gen(1))
    monkeypatch.setattr(components_module, "BLOCK_ELEMENTS", 2**30)
    whole = model.components(x, 4, 5, _gen(7))
    monkeypatch.setattr(components_module, "BLOCK_ELEMENTS", rows * 4 * 6)
    blocked = model.components(x, 4, 5, _gen(7))
    torch.testing.assert_close(blocked.mean, whole.mean, rtol=1e-6, atol=1e-7)
    torch.testing.assert_close(blocked.noise_var, whole.noise_var, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("noise", ["homoscedastic", "heteroscedastic"])
@pytest.mark.parametrize("latent", ["per_point", "none"])
def test_drawn_dynamics_holds_the_weights_and_passes_gradients_to_x_only(
    noise: str, latent: str
) -> None:
    model = _model(noise=noise, latent=latent)
    dynamics = model.draw_dynamics(4, _gen(3))
    x = torch.randn(4, 6, 3, generator=_gen(1), requires_grad=True)
    z = torch.randn(4, 6, model.latent_dim, generator=_gen(2))
    mean, noise_var = dynamics(x, z)
    assert mean.shape == noise_var.shape == (4, 6, 2)
    again = dynamics(x, z)  # the same W_k at every call: a roll-out's steps share them
    assert torch.equal(mean, again[0]) and torch.equal(noise_var, again[1])
    # the draw is the network's: sample k of a fresh draw from the same seed gives the same map
    weights = model.network.draw(4, x, [_gen(3)]).weights
    inputs = torch.cat([x, z], dim=-1)[None]  # [1, K, B, ·]: the one replica
    expected, _ = model.noise.split(model.network.apply_weights(inputs, weights))
    torch.testing.assert_close(mean, expected[0])
    (mean.sum() + noise_var.sum()).backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    assert all(p.grad is None for p in model.parameters())
    with torch.no_grad():  # training the model further does not move a drawn map
        for p in model.parameters():
            p.add_(1.0)
    assert torch.equal(dynamics(x, z)[0], mean)


def test_drawn_dynamics_rejects_a_latent_of_the_wrong_shape() -> None:
    dynamics = _model().draw_dynamics(2)
    with pytest.raises(
        ValueError, match=r"K = 2 weight draws and L = 1, got \(2, 5, 3\) and \(2, 5, 0\)$"
    ):
        dynamics(torch.zeros(2, 5, 3), torch.zeros(2, 5, 0))
    with pytest.raises(ValueError, match=r"got \(3, 5, 3\) and \(3, 5, 1\)$"):
        dynamics(torch.zeros(3, 5, 3), torch.zeros(3, 5, 1))


def test_an_ensembles_predictive_is_the_uniform_mixture_of_its_members() -> None:
    """model=ensemble, 3 het_mlp members: the mixture NLL by hand from each member's μ_m(x),
    σ_m²(x); epistemic = Var_m μ_m, aleatoric = E_m σ_m² (total = their sum); and
    H = E_m H_m + I, I ≥ 0 and at most log 3, the member playing the part of W."""
    model = _model(latent="none", stochastic_layers=[], noise="heteroscedastic", members=3,
                   seeds=[10, 11, 12], n_samples_test=1, noise_std_init=0.5).double()  # fmt: skip
    x = torch.randn(6, 3, generator=_gen(1), dtype=torch.float64)
    y = torch.randn(6, 2, generator=_gen(2), dtype=torch.float64)
    means, variances = [], []
    for m in range(3):  # member m by hand: its own layers, then its two heads
        h = x
        for i, layer in enumerate(model.network.layers):
            h = h @ layer.weight_mean[m] + layer.bias_mean[m]
            h = torch.relu(h) if i < len(model.network.layers) - 1 else h
        means.append(h[:, :2])
        variances.append(torch.log1p(torch.exp(h[:, 2:] + model.noise.offset)) + 1e-6)
    mu, var = torch.stack(means), torch.stack(variances)  # [M, B, D]
    assert (mu.std(0) > 0).all()  # the members differ
    log_n = -0.5 * (torch.log(2 * math.pi * var) + (y - mu) ** 2 / var)  # [M, B, D]
    expected = torch.logsumexp(log_n.sum(-1), dim=0) - math.log(3)  # [B]
    pred = model.predict(x, y, entropy_draws=64, generator=_gen(3))
    torch.testing.assert_close(pred.log_density, expected)
    torch.testing.assert_close(pred.moments.epistemic_var, mu.var(0, unbiased=False))
    torch.testing.assert_close(pred.moments.aleatoric_var, var.mean(0))
    total = (mu**2 + var).mean(0) - mu.mean(0) ** 2
    torch.testing.assert_close(pred.moments.total_var, total)
    ent = pred.entropy
    assert ent is not None
    torch.testing.assert_close(ent.total, ent.aleatoric + ent.epistemic)
    assert (ent.epistemic >= 0).all() and (ent.epistemic <= math.log(3) + 1e-9).all()
    member_entropy = (0.5 * torch.log(2 * math.pi * math.e * var)).mean(0)  # E_m H[y|m]
    torch.testing.assert_close(ent.aleatoric, member_entropy, rtol=0, atol=0.05)
