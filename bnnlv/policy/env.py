"""The Wet-Chicken river as a ``gymnasium.Env``: the equations of ``data=wet_chicken``, stepped.

The transition and the reward are :func:`bnnlv.data.wet_chicken.wet_chicken_step` and
:func:`~bnnlv.data.wet_chicken.wet_chicken_reward`, the functions that make the data set, so the
environment the policy is scored on is the system the dynamics model learned from. A fall down
the waterfall puts the canoeist back at the origin and the episode goes on (no terminal state):
wrap the environment in ``gymnasium.wrappers.TimeLimit`` for episodes of fixed length.

    env = gymnasium.make("bnnlv/WetChicken-v0", max_episode_steps=100)
    state, _ = env.reset(seed=0)                  # uniform over the river
    state, reward, _, truncated, info = env.step(np.array([0.0, -1.0]))

The policy evaluation steps many canoeists at once through the same two functions
(:mod:`bnnlv.policy.evaluate`).
"""

from __future__ import annotations

from typing import Any

import gymnasium
import numpy as np
from gymnasium import spaces

from bnnlv.data.wet_chicken import LENGTH, WIDTH, wet_chicken_reward, wet_chicken_step

ENV_ID = "bnnlv/WetChicken-v0"


def check_state(state: Any) -> np.ndarray:
    """A state (x, y) inside the river [0, w] × [0, l] as a float64 array [2]; ValueError else."""
    array = np.asarray(state, dtype=np.float64)
    if array.shape != (2,) or not np.all(np.isfinite(array)):
        raise ValueError(f"a Wet-Chicken state is two finite numbers (x, y), got {state!r}")
    if not (0.0 <= array[0] <= WIDTH and 0.0 <= array[1] <= LENGTH):
        raise ValueError(f"state {state!r} lies outside the river [0, {WIDTH}] × [0, {LENGTH}]")
    return array


class WetChickenEnv(gymnasium.Env[np.ndarray, np.ndarray]):
    """Wet-Chicken 2-D (Hans & Udluft 2009; datasets.md): state (x, y), action (a_x, a_y).

    Observations lie in [0, w] × [0, l], actions in [−1, 1]² (an action outside is clipped to
    it). The reward of a step is −(l − y') of the state reached. ``reset`` draws the start state
    uniformly over the river, or takes ``options={"state": (x, y)}``. τ ~ U[−1, 1] comes from
    ``self.np_random``, one draw per step.
    """

    def __init__(self) -> None:
        self.observation_space = spaces.Box(
            low=np.zeros(2), high=np.array([WIDTH, LENGTH]), dtype=np.float64
        )
        self.action_space = spaces.Box(low=-1.0, high=1.0, shape=(2,), dtype=np.float64)
        self.state = np.zeros(2)

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        if options and "state" in options:
            self.state = check_state(options["state"])
        else:
            self.state = self.np_random.uniform((0.0, 0.0), (WIDTH, LENGTH))
        return self.state.copy(), {}

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        a_x, a_y = np.clip(np.asarray(action, dtype=np.float64), -1.0, 1.0)
        tau = self.np_random.uniform(-1.0, 1.0)
        x, y = self.state
        x_next, y_next = wet_chicken_step(
            np.array(x), np.array(y), np.array(a_x), np.array(a_y), np.array(tau)
        )
        self.state = np.array([float(x_next), float(y_next)])
        return self.state.copy(), float(wet_chicken_reward(y_next)), False, False, {}


if ENV_ID not in gymnasium.registry:
    gymnasium.register(ENV_ID, entry_point=f"{__name__}:WetChickenEnv")
