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


@pytest.mark.parametrize(
    ("common", "n_draws", "n_rollouts", "atol"),
    [(False, 4000, 50, (0.04, 0.03, 0.02)), (True, 1000, 1000, (0.15, 0.05, 0.09))],
)
def test_the_nested_estimate_recovers_both_deviations_of_a_toy_model(
    common: bool, n_draws: int, n_rollouts: int, atol: tuple[float, float, float]
) -> None:
    """E[C] = l − y, σ_e = τ = 0.7, σ_a = σ = 1.3. With common noise all K draws share R noise
    paths, so E[C] and σ_a are known to ≈ 1/√R: tolerances of about 3 s.e. each way."""
    torch.manual_seed(0)
    toy = ToyDynamics(weight_std=0.7, noise_std=1.3)
    start = torch.tensor([[1.0, 2.0], [3.0, 1.0]], dtype=torch.float64)
    still = lambda s: torch.zeros_like(s)  # noqa: E731
    costs = rollout_costs(still, toy, start, 1, n_draws, n_rollouts, False, common)  # type: ignore[arg-type]
    risk = decompose(costs, common)
    torch.testing.assert_close(risk.cost, LENGTH - start[:, 1], atol=atol[0], rtol=0)
    torch.testing.assert_close(
        risk.sigma_e, torch.full((2,), 0.7, dtype=torch.float64), atol=atol[1], rtol=0
    )
    torch.testing.assert_close(
        risk.sigma_a, torch.full((2,), 1.3, dtype=torch.float64), atol=atol[2], rtol=0
    )


def test_the_epistemic_estimate_removes_the_noise_of_the_conditional_means() -> None:
    """Without the −σ_a²/R correction, a model without weight uncertainty shows σ_e ≈ σ_a/√R."""
    torch.manual_seed(1)
    costs = torch.randn(3000, 4, 1, dtype=torch.float64) * 2.0  # τ = 0, σ = 2, R = 4
    assert decompose(costs).sigma_e.item() ** 2 < 0.05  # against 1.0 uncorrected
    assert costs.mean(dim=1).std(dim=0).item() == pytest.approx(1.0, abs=0.05)


def test_the_common_noise_estimate_is_unbiased_with_an_interaction() -> None:
    """C_mr = a W_m + b ξ_r + c W_m ξ_r, W, ξ ~ N(0, 1), ξ shared by the M draws:
    σ_e² = Var E[C | W] = a², σ_a² = E Var[C | W] = b² + c²; the interaction c is what the
    residual of the two-way table removes."""
    torch.manual_seed(2)
    a, b, c, batch = 0.5, 3.0, 1.0, 4000
    weights = torch.randn(6, 1, batch, dtype=torch.float64)  # M = 6
    noise = torch.randn(1, 8, batch, dtype=torch.float64)  # R = 8, the same for every draw
    costs = a * weights + b * noise + c * weights * noise  # [M, R, B]
    var_e = decompose(costs, common_noise=True).sigma_e.square().mean().item()
    assert var_e == pytest.approx(a**2, abs=0.04)
    naive = costs.mean(dim=1).var(dim=0).mean().item()  # the spread of the means, uncorrected
    assert naive == pytest.approx(a**2 + c**2 / 8, abs=0.04)
    sigma_a = decompose(costs, common_noise=True).sigma_a.square().mean().item()
    assert sigma_a == pytest.approx(b**2 + c**2, rel=0.03)


def test_common_noise_cancels_additive_noise_from_the_epistemic_estimate() -> None:
    """Training's K = 10 draws × R = 5 roll-outs on the toy model (σ_e² = τ² = 0.09, σ_a² = 4,
    additive noise), one estimate of σ_e² per start state, before the max(0, ·):

    - independent noise, the spread of the conditional means: σ_e² + σ_a²/R = 0.89 (the bias);
    - independent noise, minus σ_a²/R: centred on 0.09, with sd ≈ 0.89 √(2/9) ≈ 0.42;
    - common noise, minus the two-way residual: centred on 0.09, with sd ≈ 0.09 √(2/9) ≈ 0.04;
    - common noise with the independent correction: 0.09 − 0.8, the bias the other way."""
    toy = ToyDynamics(weight_std=0.3, noise_std=2.0)
    start = torch.tensor([[1.0, 2.0]], dtype=torch.float64)
    still = lambda s: torch.zeros_like(s)  # noqa: E731
    var_e = {}
    for common in (False, True):
        torch.manual_seed(3)  # 1,000 updates of one start state each, K W's drawn for each
        costs = torch.cat([rollout_costs(still, toy, start, 1, 10, 5, False, common)  # type: ignore[arg-type]
                           for _ in range(1000)], dim=2)  # fmt: skip
        spread = costs.mean(dim=1).var(dim=0)  # [B]
        var_e[common] = spread - _noise_term(costs, common) / 5  # [B], σ_e²'s estimate
        # decompose's σ_e is that estimate's square root, 0 where it is negative
        torch.testing.assert_close(decompose(costs, common).sigma_e.square(),
                                   var_e[common].clamp_min(0))  # fmt: skip
        if not common:
            assert spread.mean().item() == pytest.approx(0.09 + 4 / 5, abs=0.03)
        else:
            wrong = spread - costs.var(dim=1).mean(dim=0) / 5  # the independent correction
            assert wrong.mean().item() == pytest.approx(0.09 - 4 / 5, abs=0.03)
    assert var_e[False].mean().item() == pytest.approx(0.09, abs=0.03)
    assert var_e[True].mean().item() == pytest.approx(0.09, abs=0.005)
    assert var_e[False].std().item() == pytest.approx(0.42, rel=0.1)
    assert var_e[True].std().item() == pytest.approx(0.042, rel=0.1)


def _noise_term(costs: Tensor, common: bool) -> Tensor:
    """What decompose subtracts (times R), written out: the mean within-draw variance, or with
    common noise the residual mean square of the two-way table C_kr (per start state) [B]."""
    if not common:
        return costs.var(dim=1).mean(dim=0)
    n_draws, n_rollouts, _ = costs.shape
    residual = costs - costs.mean(1, True) - costs.mean(0, True) + costs.mean((0, 1))  # [K, R, B]
    return residual.square().sum((0, 1)) / ((n_draws - 1) * (n_rollouts - 1))


def test_common_noise_is_the_same_noise_under_every_weight_draw() -> None:
    """Without weight uncertainty (τ = 0) the K draws are the same model: with common noise
    roll-out r costs the same under each of them, over several steps; drawn afresh it does not."""
    toy = ToyDynamics(weight_std=0.0, noise_std=0.5)
    start = torch.tensor([[1.0, 2.0], [3.0, 1.0]], dtype=torch.float64)
    still = lambda s: torch.zeros_like(s)  # noqa: E731
    shared = rollout_costs(still, toy, start, 3, 4, 6, True, True)  # type: ignore[arg-type]
    assert shared.shape == (4, 6, 2) and torch.equal(shared, shared[:1].expand_as(shared))
    assert shared[0].std(dim=0).min() > 0  # the roll-outs themselves differ
    fresh = rollout_costs(still, toy, start, 3, 4, 6, True, False)  # type: ignore[arg-type]
    assert (fresh - fresh[:1]).abs().max() > 0.1


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
