from __future__ import annotations

import copy
from typing import Any

import numpy as np
import pytest
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig, OmegaConf

from bnnlv.data.wet_chicken import WIDTH, wet_chicken_step
from bnnlv.policy.config import check_policy_config
from bnnlv.runs.folders import config_dir

BAD = [
    ("policy.horizon", 0, r"^policy.horizon must be a positive integer, got 0$"),
    ("policy.n_draws", 1.5, r"^policy.n_draws must be a positive integer, got 1.5$"),
    ("policy.lr", -1e-3, r"^policy.lr must be a positive finite number, got -0.001$"),
    ("policy.max_grad_norm", 0, r"^policy.max_grad_norm must be a positive finite number"),
    ("policy.beta", -0.5, r"^policy.beta must be a finite number ≥ 0, got -0.5$"),
    ("policy.gamma", "high", r"^policy.gamma must be a finite number ≥ 0, got 'high'$"),
    ("policy.checkpoint_every", 0, r"^policy.checkpoint_every must be a positive integer or null"),
    ("policy.evaluation.model_rollouts", 1, r"^policy.evaluation.model_rollouts must be an int"),
    ("policy.evaluation.seed", -3, r"^policy.evaluation.seed must be a non-negative integer"),
    ("policy.upper_bound.elite_frac", 0, r"^policy.upper_bound.elite_frac must be in \(0, 1\]"),
    ("policy.upper_bound.elite_frac", 2, r"^policy.upper_bound.elite_frac must be a number in"),
    ("policy.upper_bound.enabled", "yes", r"^policy.upper_bound.enabled must be true or false"),
    ("policy.clip_states", 1, r"^policy.clip_states must be true or false, got 1$"),
    ("alpha", 2, r"^alpha must be a number in \[0, 1\]"),  # the dynamics model's keys too
]  # fmt: skip


@pytest.fixture(scope="module")
def default_config() -> DictConfig:
    with initialize_config_dir(config_dir=config_dir(), version_base="1.3"):
        return compose(config_name="policy")


def test_the_shipped_config_passes_and_trains_on_wet_chicken(default_config: DictConfig) -> None:
    check_policy_config(default_config)
    assert default_config.data._target_ == "bnnlv.data.wet_chicken.WetChicken"
    assert default_config.policy.beta == 0


@pytest.mark.parametrize("model", ["bnn_lv", "bnn", "mlp", "ensemble"])
def test_every_dynamics_model_is_a_mixture_of_three_fits(model: str) -> None:
    with initialize_config_dir(config_dir=config_dir(), version_base="1.3"):
        assert compose(config_name="policy", overrides=[f"model={model}"]).model.members == 3
        assert compose(config_name="train", overrides=[f"model={model}"]).model.members == (
            5 if model == "ensemble" else 1
        )


def test_the_default_horizon_sees_a_crossing_of_the_river_pay_off(
    default_config: DictConfig,
) -> None:
    # From the restart at (0, 0), paddling right at full speed without falling (τ = −1, a_y = −1)
    # reaches the far bank in exactly w / max|a_x| = 5 steps; roll-outs must outlast that twice.
    state, steps = (np.zeros(1), np.zeros(1)), 0
    while state[0][0] < WIDTH:
        state = wet_chicken_step(*state, np.ones(1), -np.ones(1), -np.ones(1))
        steps += 1
    assert steps == 5 and state[1][0] == 0.0
    assert default_config.policy.horizon >= 2 * steps


def changed(cfg: DictConfig, *changes: tuple[str, Any]) -> DictConfig:
    """A copy of ``cfg`` with each (key, value) set."""
    cfg = copy.deepcopy(cfg)
    for key, value in changes:
        OmegaConf.update(cfg, key, value, force_add=True)
    return cfg


@pytest.mark.parametrize(("key", "value", "message"), BAD, ids=[f"{b[0]}={b[1]}" for b in BAD])
def test_bad_value_is_named_by_its_key(
    default_config: DictConfig, key: str, value: Any, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        check_policy_config(changed(default_config, (key, value)))


def test_gamma_needs_two_rollouts_per_draw(default_config: DictConfig) -> None:
    cfg = changed(default_config, ("policy.gamma", 1.0), ("policy.n_rollouts", 1))
    with pytest.raises(ValueError, match=r"policy.gamma=1.0 needs policy.n_rollouts ≥ 2"):
        check_policy_config(cfg)


def test_a_ddp_trainer_needs_a_finished_model_run(default_config: DictConfig) -> None:
    cfg = changed(default_config, ("trainer.strategy", "ddp"))
    with pytest.raises(ValueError, match=r"policy\.model_run=DIR"):
        check_policy_config(cfg)
    check_policy_config(changed(cfg, ("policy.model_run", "/some/run")))
