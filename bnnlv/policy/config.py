"""Checks of a composed ``policy`` config, before anything is built or trained.

The dynamics model's keys (model, data, prior, trainer, alpha, seed, …) are checked as ``train``
checks them; the ``policy.*`` keys here, each failure a ``ValueError`` that names the key, the
value and what is allowed.
"""

from __future__ import annotations

from typing import Any

from omegaconf import DictConfig, OmegaConf

from bnnlv.runs.config import check_config, check_values

POSITIVE_INTS = tuple(
    f"policy.{key}"
    for key in (
        "horizon",
        "n_draws",
        "n_rollouts",
        "batch_size",
        "epochs",
        "steps_per_epoch",
        "evaluation.episodes",
        "evaluation.horizon",
        "evaluation.monitor_episodes",
        "evaluation.model_starts",
        "upper_bound.iterations",
        "upper_bound.population",
        "upper_bound.episodes",
    )
)
POSITIVE_NUMBERS = (
    "policy.lr",
    "policy.max_grad_norm",
    "policy.upper_bound.init_std",
    "policy.upper_bound.min_std",
)
# M weight draws × R roll-outs: a variance within and one between need two of each
AT_LEAST_TWO = ("policy.evaluation.model_draws", "policy.evaluation.model_rollouts")


def check_policy_config(cfg: DictConfig) -> None:
    """Raise ``ValueError`` naming the first bad key of a ``policy`` config."""
    check_config(cfg)
    check_values(
        cfg,
        unit_interval=("policy.upper_bound.elite_frac",),
        positive_ints=POSITIVE_INTS,
        optional_positive_ints=("policy.checkpoint_every",),
        positive_numbers=POSITIVE_NUMBERS,
        non_negative_numbers=("policy.beta", "policy.gamma"),
    )
    for key in AT_LEAST_TWO:
        value = _get(cfg, key)
        if isinstance(value, bool) or not isinstance(value, int) or value < 2:
            raise ValueError(f"{key} must be an integer ≥ 2, got {value!r}")
    seed = _get(cfg, "policy.evaluation.seed")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"policy.evaluation.seed must be a non-negative integer, got {seed!r}")
    elite_frac = _get(cfg, "policy.upper_bound.elite_frac")
    if not elite_frac > 0:
        raise ValueError(f"policy.upper_bound.elite_frac must be in (0, 1], got {elite_frac!r}")
    for key in ("policy.upper_bound.enabled", "policy.clip_states"):
        if not isinstance(_get(cfg, key), bool):
            raise ValueError(f"{key} must be true or false, got {_get(cfg, key)!r}")
    gamma, n_rollouts = _get(cfg, "policy.gamma"), _get(cfg, "policy.n_rollouts")
    if gamma > 0 and n_rollouts < 2:
        raise ValueError(
            f"policy.gamma={gamma} needs policy.n_rollouts ≥ 2 (σ_a is the spread of the cost "
            f"within one weight draw), got {n_rollouts}"
        )
    strategy = str(_get(cfg, "trainer.strategy") or "")
    if strategy.startswith("ddp") and not _get(cfg, "policy.model_run"):
        raise ValueError(
            f"trainer.strategy={strategy}: bnnlv policy trains its dynamics model in one "
            "process; train it with bnnlv train trainer=ddp and pass policy.model_run=DIR"
        )


def _get(cfg: DictConfig, key: str) -> Any:
    return OmegaConf.select(cfg, key, default=None)
