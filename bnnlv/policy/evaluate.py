"""Scoring a policy on the true Wet-Chicken system, and under the learned model.

True system (the protocol of the ``policy.evaluation`` config): ``episodes`` canoeists start
uniformly over the river and each follows the policy for ``horizon`` steps of the real dynamics
(:func:`~bnnlv.data.wet_chicken.wet_chicken_step`, falls restart at the origin). An episode's
score is its average reward per step, −(l − y') averaged over the steps; the policy's score is
the mean over episodes ± its standard error. The start states and every τ come from
``numpy.random.default_rng(seed)`` with the protocol's own seed, the same for every policy
scored with that protocol: policies are compared on common random numbers, so the differences
between them carry less noise than their standard errors suggest.

Under the model: E[C], σ_e and σ_a of the summed cost over the training horizon, by nested
sampling (M weight draws × R roll-outs from each of a set of start states, the M draws sharing
each roll-out's z and ε, as training with β > 0 does), averaged over the start states. Shared
noise cuts the sd of a start state's σ_e² estimate from ≈ 0.28 to ≈ 0.08 at M = R = 30 (seed 0's
bnn_lv model, where σ_e² ≈ 0.1): drawn afresh, the mean of the clipped √ was mostly that noise.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from bnnlv.data.wet_chicken import LENGTH, WIDTH, wet_chicken_reward, wet_chicken_step
from bnnlv.policy.dynamics import ModelDynamics
from bnnlv.policy.rollout import Actor, decompose, rollout_costs
from bnnlv.runs.sweep import mean_se

# raw states [N, 2] → actions [N, 2] in [−1, 1]², numpy float64
NumpyActor = Callable[[np.ndarray], np.ndarray]


@dataclass(frozen=True)
class Protocol:
    """Start states [N, 2] and the system's noise τ [N, H] of N episodes of H steps."""

    starts: np.ndarray
    tau: np.ndarray

    @classmethod
    def draw(cls, episodes: int, horizon: int, seed: int) -> Protocol:
        """Starts uniform over [0, w] × [0, l] first, then τ ~ U[−1, 1], from one seeded stream."""
        if episodes < 1 or horizon < 1:
            raise ValueError(f"episodes and horizon must be ≥ 1, got {episodes} and {horizon}")
        rng = np.random.default_rng(seed)
        starts = rng.uniform((0.0, 0.0), (WIDTH, LENGTH), size=(episodes, 2))
        return cls(starts, rng.uniform(-1.0, 1.0, size=(episodes, horizon)))


def true_rewards(act: NumpyActor, protocol: Protocol) -> np.ndarray:
    """Rewards [N, H] of the N episodes on the real dynamics, all episodes stepped together."""
    state = protocol.starts.copy()
    rewards = np.empty_like(protocol.tau)
    for t in range(protocol.tau.shape[1]):
        action = np.clip(act(state), -1.0, 1.0)  # [N, 2]
        x_next, y_next = wet_chicken_step(
            state[:, 0], state[:, 1], action[:, 0], action[:, 1], protocol.tau[:, t]
        )
        state = np.stack([x_next, y_next], axis=1)
        rewards[:, t] = wet_chicken_reward(y_next)
    return rewards


def average_reward(act: NumpyActor, protocol: Protocol) -> tuple[float, float]:
    """Mean over episodes of the average reward per step, and its standard error (ddof = 1)."""
    return mean_se(true_rewards(act, protocol).mean(axis=1).tolist())


def random_actor(seed: int) -> NumpyActor:
    """The random policy: actions uniform on [−1, 1]², independent of the state."""
    rng = np.random.default_rng(seed)
    return lambda state: rng.uniform(-1.0, 1.0, size=state.shape)


def random_torch_actor(state: torch.Tensor) -> torch.Tensor:
    """The random policy for roll-outs under the model (global torch generator)."""
    return torch.rand_like(state) * 2.0 - 1.0


@torch.no_grad()
def model_risk(
    actor: Actor,
    dynamics: ModelDynamics,
    starts: torch.Tensor,
    horizon: int,
    n_draws: int,
    n_rollouts: int,
    clip_states: bool = True,
) -> dict[str, float]:
    """``model_cost`` E[C], ``model_sigma_e`` and ``model_sigma_a``, each averaged over the start
    states [B, 2], from M = ``n_draws`` weight draws × R = ``n_rollouts`` roll-outs."""
    costs = rollout_costs(actor, dynamics, starts, horizon, n_draws, n_rollouts, clip_states,
                          common_noise=True)  # fmt: skip
    risk = decompose(costs, common_noise=True)
    return {
        "model_cost": float(risk.cost.mean()),
        "model_sigma_e": float(risk.sigma_e.mean()),
        "model_sigma_a": float(risk.sigma_a.mean()),
    }
