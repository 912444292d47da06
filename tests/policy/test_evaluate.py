from __future__ import annotations

import numpy as np
import pytest
import torch

from bnnlv.policy.dynamics import ModelDynamics
from bnnlv.policy.env import WetChickenEnv
from bnnlv.policy.evaluate import (
    Protocol,
    average_reward,
    model_risk,
    random_actor,
    random_torch_actor,
    true_rewards,
)
from bnnlv.policy.network import Policy


def test_a_hand_computed_episode() -> None:
    """(2.5, 1) with a = (0.5, 0), τ = 0: v = 1.5, s = 2, y' = 1.5, reward −3.5; then from
    (3, 1.5): v = 1.8, s = 1.7, ŷ = 1.5 − 1 + 1.8 + 1.7·0.5 = 3.15, reward −1.85."""
    protocol = Protocol(np.array([[2.5, 1.0]]), np.array([[0.0, 0.5]]))
    rewards = true_rewards(lambda s: np.tile([0.5, 0.0], (len(s), 1)), protocol)
    np.testing.assert_allclose(rewards, [[-3.5, -1.85]])
    mean, se = average_reward(lambda s: np.tile([0.5, 0.0], (len(s), 1)), protocol)
    assert mean == pytest.approx(-2.675) and np.isnan(se)


def test_the_batch_simulation_is_the_environment_stepped_one_by_one(policy: Policy) -> None:
    protocol = Protocol.draw(episodes=6, horizon=4, seed=2)
    rewards = true_rewards(policy.act, protocol)
    env = WetChickenEnv()
    for episode in range(6):
        env.reset(options={"state": protocol.starts[episode]})
        for t in range(4):
            tau = protocol.tau[episode, t]
            env.np_random = type("Tau", (), {"uniform": lambda self, a, b, tau=tau: tau})()  # type: ignore[assignment]
            action = policy.act(env.state[None])[0]
            _, reward, *_ = env.step(action)
            assert reward == pytest.approx(rewards[episode, t], abs=1e-6)  # float32 policy


def test_protocols_are_seeded_and_checked() -> None:
    a, b = Protocol.draw(5, 3, 1), Protocol.draw(5, 3, 1)
    np.testing.assert_array_equal(a.starts, b.starts)
    np.testing.assert_array_equal(a.tau, b.tau)
    assert a.starts.shape == (5, 2) and a.tau.shape == (5, 3)
    assert (a.starts >= 0).all() and (a.starts <= 5).all() and (np.abs(a.tau) <= 1).all()
    with pytest.raises(ValueError, match="episodes and horizon"):
        Protocol.draw(0, 3, 1)


def test_standard_error_over_episodes() -> None:
    protocol = Protocol.draw(400, 10, 0)
    per_episode = true_rewards(random_actor(0), protocol).mean(axis=1)
    mean, se = average_reward(random_actor(0), protocol)
    assert mean == pytest.approx(per_episode.mean())
    assert se == pytest.approx(per_episode.std(ddof=1) / 20.0)


def test_random_actors_stay_in_the_box() -> None:
    actions = random_actor(0)(np.zeros((1000, 2)))
    assert actions.shape == (1000, 2) and np.abs(actions).max() <= 1.0
    torch_actions = random_torch_actor(torch.zeros(3, 100, 2))
    assert torch_actions.shape == (3, 100, 2) and torch_actions.abs().max() <= 1.0


def test_model_risk_reports_the_three_estimates(
    policy: Policy, dynamics: ModelDynamics, monkeypatch: pytest.MonkeyPatch
) -> None:
    draws: list[int] = []
    sample = dynamics.sample_noise
    monkeypatch.setattr(dynamics, "sample_noise", lambda k, b: draws.append(k) or sample(k, b))
    risk = model_risk(policy, dynamics, torch.tensor([[1.0, 1.0], [3.0, 2.0]]), 3, 5, 4)
    assert set(risk) == {"model_cost", "model_sigma_e", "model_sigma_a"}
    assert all(np.isfinite(v) and v >= 0 for v in risk.values())
    assert draws == [1, 1, 1]  # the M = 5 weight draws share each step's z and ε
