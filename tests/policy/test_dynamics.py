from __future__ import annotations

import numpy as np
import pytest
import torch

from bnnlv.data.wet_chicken import FEATURES, TARGETS
from bnnlv.model.lit_module import BNNLV
from bnnlv.policy.dynamics import ModelDynamics
from tests.policy.conftest import SCALER, make_dynamics


def test_a_step_is_the_model_in_raw_units(dynamics: ModelDynamics) -> None:
    """s' = (f(std(s, a), z; W) + σ ε)·s_y + m_y, checked against the model's own forward."""
    torch.manual_seed(0)
    drawn = dynamics.draw(3)
    state, action = torch.rand(3, 4, 2) * 5, torch.rand(3, 4, 2) * 2 - 1
    z, eps = dynamics.sample_noise(3, 4)
    got = drawn.step(state, action, z, eps)
    x = (
        torch.cat([state, action], -1) - torch.tensor(SCALER.x_mean, dtype=torch.float32)
    ) / torch.tensor(SCALER.x_std, dtype=torch.float32)
    inputs = torch.cat([x, z], -1)[None]  # the model's one replica first
    f = dynamics.model.network.apply_weights(inputs, drawn.drawn.weights)[0]
    sigma = dynamics.model.noise.log_var[0].exp().sqrt()
    want = (f + sigma * eps) * torch.tensor(SCALER.y_std, dtype=torch.float32) + torch.tensor(
        SCALER.y_mean, dtype=torch.float32
    )
    torch.testing.assert_close(got, want)


def test_latent_draws_follow_the_prior_variance() -> None:
    dynamics = make_dynamics()
    torch.manual_seed(0)
    z, eps = dynamics.sample_noise(200, 100)
    assert z.shape == (200, 100, 1) and eps.shape == (200, 100, 2)
    assert z.var().item() == pytest.approx(dynamics.latent_var, rel=0.05)  # γ = 4 (inputs)
    assert eps.var().item() == pytest.approx(1.0, rel=0.05)


@pytest.mark.parametrize(("latent", "stochastic"), [("none", "all"), ("none", [])])
def test_bnn_and_mlp_dynamics_have_no_latent(latent: str, stochastic: str | list[int]) -> None:
    dynamics = make_dynamics(latent, stochastic)
    z, _ = dynamics.sample_noise(2, 3)
    assert z.shape == (2, 3, 0)
    out = dynamics.draw(2).step(torch.ones(2, 3, 2), torch.zeros(2, 3, 2), z, torch.zeros(2, 3, 2))
    assert out.shape == (2, 3, 2)
    if stochastic == []:  # deterministic weights: every draw predicts the same
        torch.testing.assert_close(out[0], out[1])


def test_a_model_of_other_data_is_rejected() -> None:
    model = make_dynamics().model
    with pytest.raises(ValueError, match="data=wet_chicken"):
        ModelDynamics(model, SCALER, ["a", "b", "c", "d"], list(TARGETS))
    assert ModelDynamics(model, SCALER, list(FEATURES), list(TARGETS)).state_dim == 2
    assert not any(p.requires_grad for p in model.parameters())
    assert np.isfinite(model.latent_prior_var)


def test_a_heteroscedastic_model_gives_each_state_its_own_noise() -> None:
    torch.manual_seed(0)
    model = BNNLV(4, 2, n_train=10, batch_size=10, hidden=[8], noise="heteroscedastic")
    dynamics = ModelDynamics(model, SCALER, list(FEATURES), list(TARGETS))
    drawn = dynamics.draw(2)
    state = torch.tensor([[[0.5, 0.5], [4.5, 4.0]]]).expand(2, 2, 2)
    z = torch.zeros(2, 2, 1)
    eps = torch.ones(2, 2, 2)
    spread = drawn.step(state, torch.zeros(2, 2, 2), z, eps) - drawn.step(
        state, torch.zeros(2, 2, 2), z, torch.zeros(2, 2, 2)
    )  # σ(s, a, z; W) · s_y per state
    assert not torch.allclose(spread[:, 0], spread[:, 1])


def test_an_ensembles_draws_are_its_members_in_blocks() -> None:
    """W of an ensemble is its member: K = n_draws rounded up to a multiple of M, member m's
    draws (its deterministic weights, repeated) in block m of the K axis."""
    torch.manual_seed(0)
    model = BNNLV(4, 2, n_train=10, batch_size=10, hidden=[8], latent="none", stochastic_layers=[],
                  noise="heteroscedastic", seeds=[0, 1, 2], members=3)  # fmt: skip
    dynamics = ModelDynamics(model, SCALER, list(FEATURES), list(TARGETS))
    assert dynamics.members == 3
    drawn = dynamics.draw(5)  # ⌈5 / 3⌉ = 2 a member
    assert drawn.n_draws == 6
    z, eps = dynamics.sample_noise(6, 4)
    out = drawn.step(torch.full((6, 4, 2), 2.0), torch.zeros(6, 4, 2), z, eps.zero_())
    for m in range(3):
        torch.testing.assert_close(out[2 * m], out[2 * m + 1])  # one member, drawn twice
    assert not torch.allclose(out[0], out[2]) and not torch.allclose(out[2], out[4])
    assert dynamics.draw(6).n_draws == 6 and dynamics.draw(1).n_draws == 3
