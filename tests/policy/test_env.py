from __future__ import annotations

import gymnasium
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from bnnlv.data.wet_chicken import wet_chicken_step, wet_chicken_transitions
from bnnlv.policy.env import ENV_ID, WetChickenEnv, check_state


class FixedTau:
    """Stands in for the environment's generator: every τ is the given value."""

    def __init__(self, tau: float) -> None:
        self.tau = tau

    def uniform(self, low: float, high: float) -> float:
        return self.tau


# (x, y, a_x, a_y, τ) → (x', y', reward), by hand from datasets.md:
# v = 3x/5, s = 3.5 − v, ŷ = y + (a_y − 1) + v + s·τ
BRANCHES = {
    # v = 1.5, s = 2, ŷ = 1 − 1 + 1.5 + 0 = 1.5; x' = 3
    "inside": ((2.5, 1.0, 0.5, 0.0, 0.0), (3.0, 1.5, -3.5)),
    # x + a_x = −0.7 < 0: x' = 0; v = 0.18, ŷ = 2 − 1 + 0.18 = 1.18
    "left wall": ((0.3, 2.0, -1.0, 0.0, 0.0), (0.0, 1.18, -3.82)),
    # x + a_x = 5.5 > 5: x' = 5; v = 2.7, s = 0.8, ŷ = 0.5 − 2 + 2.7 − 0.8 = 0.4
    "right wall": ((4.5, 0.5, 1.0, -1.0, -1.0), (5.0, 0.4, -4.6)),
    # ŷ = 4.5 + 0 + 2.7 + 0.8 = 8 > 5: fell, back to (0, 0) although x + a_x > w
    "waterfall": ((4.5, 4.5, 1.0, 1.0, 1.0), (0.0, 0.0, -5.0)),
    # v = 0, s = 3.5, ŷ = 0.5 − 2 + 0 − 3.5 = −5 < 0: y' = 0
    "y below 0": ((0.0, 0.5, 0.0, -1.0, -1.0), (0.0, 0.0, -5.0)),
}


@pytest.mark.parametrize("branch", sorted(BRANCHES))
def test_every_branch_of_the_dynamics_by_hand(branch: str) -> None:
    (x, y, a_x, a_y, tau), (x_next, y_next, reward) = BRANCHES[branch]
    env = WetChickenEnv()
    env.reset(options={"state": (x, y)})
    env.np_random = FixedTau(tau)  # type: ignore[assignment]
    state, got_reward, terminated, truncated, _ = env.step(np.array([a_x, a_y]))
    np.testing.assert_allclose(state, [x_next, y_next], atol=1e-12)
    assert got_reward == pytest.approx(reward)
    assert not terminated and not truncated  # a fall restarts, it does not end the episode


def test_the_data_set_and_the_environment_share_their_equations() -> None:
    """Same seed, same transitions: the data set draws n states, n actions of each kind, then
    n τ's from default_rng(seed); the environment, fed the same stream, steps to its targets."""
    n, seed = 50, 3
    inputs, targets = wet_chicken_transitions(n, seed)
    rng = np.random.default_rng(seed)
    for _ in range(4):
        rng.uniform(size=n)  # x, y, a_x, a_y: the data set's own draws before the τ's
    env = WetChickenEnv()
    for row, target in zip(inputs, targets, strict=True):
        env.reset(options={"state": row[:2]})
        env.np_random = rng
        state, *_ = env.step(row[2:])
        np.testing.assert_array_equal(state, target)


def test_step_uses_one_tau_from_its_seeded_generator() -> None:
    env = WetChickenEnv()
    state, _ = env.reset(seed=7)
    expected_rng = np.random.default_rng(7)
    start = expected_rng.uniform((0.0, 0.0), (5.0, 5.0))
    np.testing.assert_array_equal(state, start)
    action = np.array([0.3, -0.2])
    got, *_ = env.step(action)
    tau = expected_rng.uniform(-1.0, 1.0)
    want = wet_chicken_step(*(np.array(v) for v in (*start, *action, tau)))
    np.testing.assert_array_equal(got, np.array(want, dtype=float))


def test_actions_outside_the_box_are_clipped() -> None:
    env = WetChickenEnv()
    env.reset(options={"state": (2.0, 1.0)})
    env.np_random = FixedTau(0.0)  # type: ignore[assignment]
    clipped, *_ = env.step(np.array([7.0, -9.0]))
    env.reset(options={"state": (2.0, 1.0)})
    plain, *_ = env.step(np.array([1.0, -1.0]))
    np.testing.assert_array_equal(clipped, plain)


def test_gymnasium_checks_pass_and_the_id_is_registered() -> None:
    check_env(WetChickenEnv(), skip_render_check=True)
    env = gymnasium.make(ENV_ID, max_episode_steps=3)
    env.reset(seed=0)
    for _ in range(3):
        *_, truncated, _ = env.step(env.action_space.sample())
    assert truncated


@pytest.mark.parametrize("state", [(6.0, 1.0), (1.0, -0.1), (1.0,), (np.nan, 1.0)])
def test_a_start_state_outside_the_river_is_rejected(state: tuple[float, ...]) -> None:
    with pytest.raises(ValueError, match="state"):
        check_state(state)
