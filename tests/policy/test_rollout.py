from __future__ import annotations

import math
from typing import NamedTuple

import pytest
import torch
from torch import Tensor

from bnnlv.data.wet_chicken import FEATURES, LENGTH, TARGETS, WIDTH
from bnnlv.model.lit_module import BNNLV
from bnnlv.policy.dynamics import ModelDynamics
from bnnlv.policy.network import Policy
from bnnlv.policy.rollout import bank_limited, criterion, decompose, rollout_costs
from tests.policy.conftest import SCALER


def test_the_gradient_reaches_the_policy_and_not_the_model(
    policy: Policy, dynamics: ModelDynamics
) -> None:
    start = torch.tensor([[1.0, 2.0], [4.0, 0.5], [2.5, 4.0]])
    costs = rollout_costs(policy, dynamics, start, horizon=3, n_draws=4, n_rollouts=2)
    assert costs.shape == (4, 2, 3)
    costs.mean().backward()
    for name, parameter in policy.named_parameters():
        assert parameter.grad is not None and parameter.grad.abs().sum() > 0, name
    for name, parameter in dynamics.model.named_parameters():
        assert not parameter.requires_grad and parameter.grad is None, name


def test_an_ensemble_rolls_out_a_whole_number_of_draws_per_member(policy: Policy) -> None:
    """An ensemble of 3 asked for 4 draws rolls out 6 (2 a member); σ_e is their disagreement."""
    torch.manual_seed(0)
    model = BNNLV(4, 2, n_train=10, batch_size=10, hidden=[8], latent="none", stochastic_layers=[],
                  noise="heteroscedastic", seeds=[0, 1, 2], members=3)  # fmt: skip
    dynamics = ModelDynamics(model, SCALER, list(FEATURES), list(TARGETS))
    costs = rollout_costs(policy, dynamics, torch.tensor([[1.0, 2.0]]), horizon=3, n_draws=4,
                          n_rollouts=50)  # fmt: skip
    assert costs.shape == (6, 50, 1)
    assert decompose(costs).sigma_e.item() > 0


def test_z_and_eps_are_drawn_afresh_at_every_step(
    policy: Policy, dynamics: ModelDynamics, monkeypatch: pytest.MonkeyPatch
) -> None:
    draws: list[tuple[Tensor, Tensor]] = []
    sample = dynamics.sample_noise
    monkeypatch.setattr(
        dynamics, "sample_noise", lambda k, b: draws.append(sample(k, b)) or draws[-1]
    )
    weight_draws = []
    draw = dynamics.draw
    monkeypatch.setattr(
        dynamics, "draw", lambda k: weight_draws.append(draw(k)) or weight_draws[-1]
    )
    rollout_costs(policy, dynamics, torch.tensor([[2.0, 2.0]]), horizon=2, n_draws=3, n_rollouts=1)
    assert len(draws) == 2 and len(weight_draws) == 1  # W held for the roll-out, z and ε per step
    (z1, eps1), (z2, eps2) = draws
    assert z1.shape == (3, 1, 1) and eps1.shape == (3, 1, 2)
    assert not torch.equal(z1, z2) and not torch.equal(eps1, eps2)


def test_two_steps_from_the_same_state_land_apart(policy: Policy, dynamics: ModelDynamics) -> None:
    drawn = dynamics.draw(2)
    state = torch.full((2, 1, 2), 2.0)
    action = policy(state)
    first = drawn.step(state, action, *dynamics.sample_noise(2, 1))
    second = drawn.step(state, action, *dynamics.sample_noise(2, 1))
    assert not torch.equal(first, second)


class ToyDraw(NamedTuple):
    """y' = y + w_k + σ ε: the conditional mean moves with the weight draw w_k ~ N(0, τ²)."""

    offset: Tensor  # [K, 1]
    noise_std: float

    @property
    def n_draws(self) -> int:
        return self.offset.shape[0]

    def step(self, state: Tensor, action: Tensor, z: Tensor, eps: Tensor) -> Tensor:
        step_y = self.offset + self.noise_std * eps[..., 1]
        return state + torch.stack([torch.zeros_like(step_y), step_y], dim=-1)


class ToyDynamics:
    """C = l − y' with y' ~ N(y + w, σ²), w ~ N(0, τ²): σ_e = τ and σ_a = σ exactly."""

    latent_dim, state_dim = 0, 2

    def __init__(self, weight_std: float, noise_std: float) -> None:
        self.weight_std, self.noise_std = weight_std, noise_std

    def draw(self, n_draws: int) -> ToyDraw:
        return ToyDraw(torch.randn(n_draws, 1, dtype=torch.float64) * self.weight_std,
                       self.noise_std)  # fmt: skip

    def sample_noise(self, n_draws: int, batch: int) -> tuple[Tensor, Tensor]:
        return (torch.zeros(n_draws, batch, 0, dtype=torch.float64),
                torch.randn(n_draws, batch, 2, dtype=torch.float64))  # fmt: skip


def test_the_nested_estimate_recovers_both_deviations_of_a_toy_model() -> None:
    torch.manual_seed(0)
    toy = ToyDynamics(weight_std=0.7, noise_std=1.3)
    start = torch.tensor([[1.0, 2.0], [3.0, 1.0]], dtype=torch.float64)
    still = lambda s: torch.zeros_like(s)  # noqa: E731
    costs = rollout_costs(still, toy, start, 1, 4000, 50, clip_states=False)  # type: ignore[arg-type]
    risk = decompose(costs)
    torch.testing.assert_close(risk.cost, LENGTH - start[:, 1], atol=0.04, rtol=0)
    torch.testing.assert_close(
        risk.sigma_e, torch.full((2,), 0.7, dtype=torch.float64), atol=0.03, rtol=0
    )
    torch.testing.assert_close(
        risk.sigma_a, torch.full((2,), 1.3, dtype=torch.float64), atol=0.02, rtol=0
    )


def test_the_epistemic_estimate_removes_the_noise_of_the_conditional_means() -> None:
    """Without the −σ_a²/R correction, a model without weight uncertainty shows σ_e ≈ σ_a/√R."""
    torch.manual_seed(1)
    costs = torch.randn(3000, 4, 1, dtype=torch.float64) * 2.0  # τ = 0, σ = 2, R = 4
    assert decompose(costs).sigma_e.item() ** 2 < 0.05  # against 1.0 uncorrected
    assert costs.mean(dim=1).std(dim=0).item() == pytest.approx(1.0, abs=0.05)


def test_limiting_cases_one_draw_or_one_rollout() -> None:
    costs = torch.randn(1, 5, 3)
    assert torch.equal(decompose(costs).sigma_e, torch.zeros(3))
    costs = torch.randn(5, 1, 3)
    assert torch.equal(decompose(costs).sigma_a, torch.zeros(3))
    constant = torch.full((4, 4, 2), 3.0)
    risk = decompose(constant)
    assert torch.equal(risk.sigma_e, torch.zeros(2)) and torch.equal(risk.sigma_a, torch.zeros(2))


def test_criterion_is_the_plain_mean_when_beta_and_gamma_are_zero() -> None:
    costs = torch.randn(4, 3, 2, requires_grad=True)
    value, _ = criterion(costs, 0.0, 0.0)
    assert torch.equal(value, costs.mean())
    risk = decompose(costs)
    value, _ = criterion(costs, 0.5, 2.0)
    expected = costs.mean() + 0.5 * risk.sigma_e.mean() + 2.0 * risk.sigma_a.mean()
    torch.testing.assert_close(value, expected)
    value.backward()
    assert torch.isfinite(costs.grad).all()


def test_the_std_has_a_finite_gradient_at_zero_variance() -> None:
    costs = torch.full((3, 3, 2), 1.0, requires_grad=True)
    value, _ = criterion(costs, 1.0, 1.0)
    value.backward()
    assert torch.isfinite(costs.grad).all()


def test_bad_shapes_are_rejected(policy: Policy, dynamics: ModelDynamics) -> None:
    with pytest.raises(ValueError, match=r"\[M, R, B\]"):
        decompose(torch.zeros(3, 4))
    with pytest.raises(ValueError, match=r"\[B, 2\]"):
        rollout_costs(policy, dynamics, torch.zeros(3), 2, 2, 2)
    with pytest.raises(ValueError, match="≥ 1"):
        rollout_costs(policy, dynamics, torch.zeros(3, 2), 0, 2, 2)
    assert math.isfinite(rollout_costs(policy, dynamics, torch.zeros(1, 2), 1, 1, 1).item())


def test_predicted_states_are_clipped_to_the_river() -> None:
    """y' ~ N(y, 100²): unclipped the cost l − y' leaves [0, 5]; clipped it cannot."""
    torch.manual_seed(0)
    toy = ToyDynamics(weight_std=0.0, noise_std=100.0)
    start = torch.tensor([[1.0, 2.0]], dtype=torch.float64)
    still = lambda s: torch.zeros_like(s)  # noqa: E731
    clipped = rollout_costs(still, toy, start, 1, 50, 20)  # type: ignore[arg-type]
    assert clipped.min() >= 0.0 and clipped.max() <= LENGTH
    free = rollout_costs(still, toy, start, 1, 50, 20, clip_states=False)  # type: ignore[arg-type]
    assert free.min() < 0.0 and free.max() > LENGTH


def test_the_banks_cut_a_x_to_what_the_canoe_can_move() -> None:
    state = torch.tensor([[0.0, 1.0], [0.3, 1.0], [2.0, 1.0], [4.6, 1.0], [5.0, 1.0]])
    action = torch.tensor([[-1.0, 0.5], [-1.0, -0.5], [-1.0, 1.0], [1.0, 0.2], [0.7, -1.0]],
                          requires_grad=True)  # fmt: skip
    limited = bank_limited(state, action)
    # a_x ∈ [−x, w − x]: x + a_x stays on the river, a_y is untouched
    expected = torch.tensor([[0.0, 0.5], [-0.3, -0.5], [-1.0, 1.0], [0.4, 0.2], [0.0, -1.0]])
    torch.testing.assert_close(limited, expected)
    limited[:, 0].sum().backward()
    # beyond a bank a_x changes nothing, as on the system; inside the river it passes through
    torch.testing.assert_close(action.grad[:, 0], torch.tensor([0.0, 0.0, 1.0, 0.0, 0.0]))
    assert torch.equal(action.grad[:, 1], torch.zeros(5))


def test_the_model_is_never_asked_about_pushing_through_a_bank() -> None:
    seen: list[Tensor] = []  # x + a_x of every step the model is asked about

    class Recording(ToyDraw):
        def step(self, state: Tensor, action: Tensor, z: Tensor, eps: Tensor) -> Tensor:
            seen.append(state[..., 0] + action[..., 0])
            return super().step(state, action, z, eps)

    class RecordingDynamics(ToyDynamics):
        def draw(self, n_draws: int) -> ToyDraw:
            return Recording(torch.zeros(n_draws, 1, dtype=torch.float64), self.noise_std)

    toy = RecordingDynamics(weight_std=0.0, noise_std=0.5)
    start = torch.tensor([[0.0, 2.0], [0.5, 1.0], [5.0, 3.0]], dtype=torch.float64)
    left = lambda s: torch.full_like(s, -1.0)  # noqa: E731
    right = lambda s: torch.full_like(s, 1.0)  # noqa: E731
    for push in (left, right):
        rollout_costs(push, toy, start, 3, 2, 2)  # type: ignore[arg-type]
    moved = torch.cat([x.flatten() for x in seen])
    assert moved.min() == 0.0 and moved.max() == WIDTH
