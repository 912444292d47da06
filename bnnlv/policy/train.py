"""Training the policy through the model: SGD on the criterion of :mod:`bnnlv.policy.rollout`.

Each update draws B start states (uniformly, with replacement, from the training transitions'
states), rolls them out K·R times through the model (:func:`rollout_costs`), and takes one Adam
step on J = E[C] + β σ_e + γ σ_a with the gradient's norm clipped to ``max_grad_norm`` (the
authors' ``total_norm_constraint``). With β > 0 the K weight draws share their z and ε (common
random numbers, without which σ_e's estimate is noise: :mod:`bnnlv.policy.rollout`). Every
random number comes from the global torch generator, seeded by the run, so a run is
reproducible and β = γ = 0 is Algorithm 1 draw for draw.

``checkpoints/policy.ckpt`` (:class:`PolicyCheckpoints`) holds the state at the start of an
epoch: the policy, Adam's moments, the generator and the rows of ``policy.csv`` so far. It is
saved every ``checkpoint_every`` epochs and on an interrupt (then the state at the start of the
epoch that was cut, which the resumed run repeats), so a resumed run equals one never stopped.
A non-finite cost stops training with :class:`RolloutDivergence` and leaves the last periodic save.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from bnnlv.policy.dynamics import ModelDynamics
from bnnlv.policy.network import Policy
from bnnlv.policy.rollout import criterion, rollout_costs
from bnnlv.runs.checkpoints import load_checkpoint
from bnnlv.runs.interrupts import interrupt_behind, interrupts_deferred, update_deferred
from bnnlv.runs.results import write_torch

POLICY_CHECKPOINT = "policy.ckpt"
COLUMNS = ("epoch", "objective", "model_cost", "model_sigma_e", "model_sigma_a", "true_reward")


class RolloutDivergence(RuntimeError):
    """The roll-out cost (or the criterion) became non-finite."""


@dataclass(frozen=True)
class Settings:
    """The ``policy.*`` values the training loop uses (checked by bnnlv.policy.config)."""

    horizon: int
    n_draws: int  # K
    n_rollouts: int  # R
    batch_size: int  # B
    epochs: int
    steps_per_epoch: int
    lr: float
    max_grad_norm: float
    beta: float
    gamma: float
    clip_states: bool


class PolicyCheckpoints:
    """``directory/policy.ckpt``: saves of the state at an epoch's start; where training stopped.

    ``stopped_at`` (epoch, update) and ``saved`` are what a run's stopped record reports
    (:func:`bnnlv.runs.train.stopped_record`).
    """

    def __init__(self, directory: Path, every_n_epochs: int | None) -> None:
        self.path = Path(directory) / POLICY_CHECKPOINT
        self.every_n_epochs = every_n_epochs
        self.stopped_at: tuple[int, int] | None = None
        self._mark: dict[str, Any] | None = None

    @property
    def saved(self) -> Path | None:
        return self.path if self.path.is_file() else None

    def mark(self, policy: Policy, optimiser: torch.optim.Optimizer, rows: list[dict]) -> None:
        """Remember the state at the start of epoch ``len(rows)`` (in memory)."""
        self._mark = copy.deepcopy(policy.saved_state()) | {
            "optimiser": copy.deepcopy(optimiser.state_dict()),
            "rng": torch.get_rng_state(),
            "rows": {c: [row[c] for row in rows] for c in COLUMNS},
        }

    def save(self) -> None:
        """Write the marked state (atomically, interrupts deferred)."""
        if self._mark is not None:
            with interrupts_deferred():
                write_torch(self.path, self._mark)

    def restore(self, policy: Policy, optimiser: torch.optim.Optimizer) -> list[dict]:
        """Load a saved state into ``policy``, ``optimiser`` and the generator; its rows ([] if
        there is no save yet)."""
        if not self.path.is_file():
            return []
        state = load_checkpoint(self.path)
        policy.load_state_dict(state["policy"])
        optimiser.load_state_dict(state["optimiser"])
        torch.set_rng_state(state["rng"])
        rows = state["rows"]
        return [{c: rows[c][i] for c in COLUMNS} for i in range(len(rows["epoch"]))]


def train_policy(
    policy: Policy,
    dynamics: ModelDynamics,
    starts: torch.Tensor,
    settings: Settings,
    checkpoints: PolicyCheckpoints,
    monitor: Callable[[Policy], float],
) -> list[dict]:
    """Train ``policy`` from start states [N, 2]; the rows of policy.csv, one per epoch.

    ``monitor(policy)`` is the true-system reward recorded at each epoch's end (it must not use
    the torch generator).
    """
    optimiser = torch.optim.Adam(policy.parameters(), lr=settings.lr)
    rows = checkpoints.restore(policy, optimiser)
    epoch, step = len(rows), 0
    try:
        for epoch in range(len(rows), settings.epochs):
            checkpoints.mark(policy, optimiser, rows)
            sums = torch.zeros(4)
            for step in range(settings.steps_per_epoch):
                sums += _update(policy, dynamics, starts, settings, optimiser, epoch, step)
            means = (sums / settings.steps_per_epoch).tolist()
            rows.append(dict(zip(COLUMNS, [epoch, *means, monitor(policy)], strict=True)))
            if checkpoints.every_n_epochs and (epoch + 1) % checkpoints.every_n_epochs == 0:
                checkpoints.mark(policy, optimiser, rows)
                checkpoints.save()
    except BaseException as error:
        checkpoints.stopped_at = (epoch, epoch * settings.steps_per_epoch + step)
        if interrupt_behind(error) is not None:  # an interrupt, or an error it caused
            checkpoints.save()
        raise
    checkpoints.mark(policy, optimiser, rows)
    checkpoints.save()
    return rows


def _update(
    policy: Policy,
    dynamics: ModelDynamics,
    starts: torch.Tensor,
    settings: Settings,
    optimiser: torch.optim.Optimizer,
    epoch: int,
    step: int,
) -> torch.Tensor:
    """One Adam step; (objective, E[C], σ_e, σ_a) of its batch, detached."""
    index = torch.randint(starts.shape[0], (settings.batch_size,))
    common = settings.beta > 0  # σ_e's estimate needs common noise; Algorithm 1 draws it afresh
    costs = rollout_costs(policy, dynamics, starts[index], settings.horizon, settings.n_draws,
                          settings.n_rollouts, settings.clip_states, common)  # fmt: skip
    objective, risk = criterion(costs, settings.beta, settings.gamma, common)
    if not torch.isfinite(objective):
        raise RolloutDivergence(
            f"non-finite roll-out cost {objective.item()} at epoch {epoch}, step "
            f"{epoch * settings.steps_per_epoch + step}"
        )
    optimiser.zero_grad(set_to_none=True)
    objective.backward()
    torch.nn.utils.clip_grad_norm_(policy.parameters(), settings.max_grad_norm)
    with update_deferred():
        optimiser.step()
    return torch.stack(
        [objective.detach(), costs.detach().mean(), risk.sigma_e.mean(), risk.sigma_a.mean()]
    ).detach()
