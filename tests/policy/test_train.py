from __future__ import annotations

from pathlib import Path

import pytest
import torch

import bnnlv.policy.train as policy_train
from bnnlv.policy.dynamics import ModelDynamics
from bnnlv.policy.evaluate import Protocol, average_reward
from bnnlv.policy.network import Policy
from bnnlv.policy.rollout import rollout_costs
from bnnlv.policy.train import (
    COLUMNS,
    PolicyCheckpoints,
    RolloutDivergence,
    Settings,
    train_policy,
)
from bnnlv.runs.checkpoints import load_checkpoint
from tests.policy.conftest import SCALER

STARTS = torch.rand(40, 2) * 5.0
SETTINGS = Settings(horizon=3, n_draws=4, n_rollouts=2, batch_size=5, epochs=3,
                    steps_per_epoch=2, lr=1e-2, max_grad_norm=1.0, beta=0.0, gamma=0.0,
                    clip_states=True)  # fmt: skip
MONITOR = Protocol.draw(20, 5, 0)


def new_policy() -> Policy:
    torch.manual_seed(0)
    return Policy(SCALER.x_mean[:2], SCALER.x_std[:2], [8])


def monitor(policy: Policy) -> float:
    return average_reward(policy.act, MONITOR)[0]


def train(tmp: Path, dynamics: ModelDynamics, settings: Settings = SETTINGS) -> tuple[Policy, list]:
    policy = new_policy()
    rows = train_policy(policy, dynamics, STARTS, settings, PolicyCheckpoints(tmp, 1), monitor)
    return policy, rows


def test_beta_and_gamma_zero_is_algorithm_1_draw_for_draw(
    tmp_path: Path, dynamics: ModelDynamics
) -> None:
    """Algorithm 1 written out plainly: SGD (Adam, clipped) on the mean summed roll-out cost."""
    policy, rows = train(tmp_path, dynamics)
    plain = new_policy()
    optimiser = torch.optim.Adam(plain.parameters(), lr=SETTINGS.lr)
    for _ in range(SETTINGS.epochs * SETTINGS.steps_per_epoch):
        index = torch.randint(STARTS.shape[0], (SETTINGS.batch_size,))
        costs = rollout_costs(plain, dynamics, STARTS[index], 3, 4, 2)
        optimiser.zero_grad()
        costs.mean().backward()
        torch.nn.utils.clip_grad_norm_(plain.parameters(), SETTINGS.max_grad_norm)
        optimiser.step()
    for ours, theirs in zip(policy.parameters(), plain.parameters(), strict=True):
        assert torch.equal(ours, theirs)
    assert [row["epoch"] for row in rows] == [0, 1, 2] and list(rows[0]) == list(COLUMNS)


def test_a_risk_weight_changes_the_policy(tmp_path: Path, dynamics: ModelDynamics) -> None:
    plain, _ = train(tmp_path / "plain", dynamics)
    risky = Settings(**{**SETTINGS.__dict__, "beta": 1.0, "gamma": 1.0})
    averse, rows = train(tmp_path / "averse", dynamics, risky)
    assert not torch.equal(plain.flat(), averse.flat())
    assert rows[0]["objective"] > rows[0]["model_cost"]


@pytest.mark.parametrize(
    ("beta", "gamma", "shared"),
    [(0.0, 0.0, False), (0.0, 1.0, False), (0.5, 0.0, True), (0.5, 1.0, True)],
)
def test_the_weight_draws_share_their_noise_exactly_when_beta_is_positive(
    tmp_path: Path,
    dynamics: ModelDynamics,
    monkeypatch: pytest.MonkeyPatch,
    beta: float,
    gamma: float,
    shared: bool,
) -> None:
    """σ_e needs common random numbers; Algorithm 1 (and γ alone) draws z and ε per weight draw."""
    draws: list[int] = []
    sample = dynamics.sample_noise
    monkeypatch.setattr(dynamics, "sample_noise", lambda k, b: draws.append(k) or sample(k, b))
    settings = Settings(**{**SETTINGS.__dict__, "beta": beta, "gamma": gamma, "epochs": 1})
    train(tmp_path, dynamics, settings)
    assert set(draws) == {1 if shared else SETTINGS.n_draws}


def test_a_resumed_run_equals_one_never_stopped(
    tmp_path: Path, dynamics: ModelDynamics, monkeypatch: pytest.MonkeyPatch
) -> None:
    whole, whole_rows = train(tmp_path / "whole", dynamics)
    calls = {"n": 0}

    def interrupted(*args: object, **kwargs: object) -> torch.Tensor:
        calls["n"] += 1
        if calls["n"] == 4:  # the second update of epoch 1
            raise KeyboardInterrupt
        return rollout_costs(*args, **kwargs)  # type: ignore[arg-type]

    checkpoints = PolicyCheckpoints(tmp_path / "stopped", 1)
    with monkeypatch.context() as patch:
        patch.setattr(policy_train, "rollout_costs", interrupted)
        with pytest.raises(KeyboardInterrupt):
            train_policy(new_policy(), dynamics, STARTS, SETTINGS, checkpoints, monitor)
    assert checkpoints.stopped_at == (1, 3)
    assert len(load_checkpoint(checkpoints.path)["rows"]["epoch"]) == 1  # epoch 1 is redone
    torch.manual_seed(123)  # whatever the generator holds now, the checkpoint's state wins
    resumed = new_policy()
    rows = train_policy(resumed, dynamics, STARTS, SETTINGS, checkpoints, monitor)
    assert torch.equal(resumed.flat(), whole.flat())
    assert rows == whole_rows


def test_a_non_finite_cost_stops_training_and_keeps_the_last_good_save(
    tmp_path: Path, dynamics: ModelDynamics
) -> None:
    train(tmp_path, dynamics)
    saved = load_checkpoint(tmp_path / "policy.ckpt")
    dynamics.model.noise.log_var.data.fill_(float("nan"))  # inf would be clipped
    checkpoints = PolicyCheckpoints(tmp_path, 1)
    more = Settings(**{**SETTINGS.__dict__, "epochs": 5})
    with pytest.raises(
        RolloutDivergence, match=r"non-finite roll-out cost (nan|inf) at epoch 3, step 6"
    ):
        train_policy(new_policy(), dynamics, STARTS, more, checkpoints, monitor)
    after = load_checkpoint(tmp_path / "policy.ckpt")
    assert torch.equal(after["policy"]["net.0.weight"], saved["policy"]["net.0.weight"])
    assert checkpoints.stopped_at == (3, 6)
