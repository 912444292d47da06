"""The ``active`` config group: its settings, checked before anything runs.

Plain Python (no torch), like :mod:`bnnlv.runs.config`: ``bnnlv active`` checks its config before
torch and Lightning are imported, so a bad value is reported within about a second. Every failure
is a ``ValueError`` naming the key (``active.query_size``), the value and what is allowed, like
the checks of :mod:`bnnlv.runs.config`, which run first on the rest of the config.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from omegaconf import DictConfig, OmegaConf

from bnnlv.runs.config import check_config

# the acquisitions of bnnlv.active.acquisition and the batches of bnnlv.active.batch
ACQUISITIONS = ("epistemic", "total", "aleatoric", "epistemic_var", "random")
BATCH_KINDS = ("topk", "stochastic")
RETRAIN = ("scratch", "warm")
# the data modules that can draw a fresh pool from their generator (active.pool_size)
FRESH_POOL_DATA = ("bnnlv.data.toy.ToyHeteroscedastic", "bnnlv.data.toy.ToyBimodal")


@dataclass(frozen=True)
class ActiveSettings:
    """``cfg.active``; see configs/active/default.yaml for what each key means."""

    acquisition: str
    init_size: int
    query_size: int
    rounds: int
    candidates: int
    pool_size: int | None
    retrain: str
    batch: str
    beta: float
    entropy_draws: int

    @property
    def final_size(self) -> int:
        """Labelled points after the last acquisition (what the pool must hold at least)."""
        return self.init_size + self.rounds * self.query_size

    def check_pool(self, n_pool: int) -> None:
        """The pool must hold the initial set and every round's acquisitions."""
        if self.init_size > n_pool:
            raise ValueError(
                f"active.init_size={self.init_size} is larger than the pool ({n_pool} points)"
            )
        if self.final_size > n_pool:
            raise ValueError(
                f"active.query_size={self.query_size} × active.rounds={self.rounds} after "
                f"active.init_size={self.init_size} needs {self.final_size} pool points, the pool "
                f"has {n_pool}; lower them, or draw a larger pool (active.pool_size, toy data)"
            )


def check_acquisition(acquisition: str) -> str:
    if acquisition not in ACQUISITIONS:
        raise ValueError(
            f"active.acquisition must be one of {', '.join(ACQUISITIONS)}, got {acquisition!r}"
        )
    return acquisition


def _positive_int(key: str, value: Any, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        what = "a positive integer" if minimum == 1 else f"an integer >= {minimum}"
        raise ValueError(f"active.{key} must be {what}, got {value!r}")
    return value


def _choice(key: str, value: Any, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise ValueError(f"active.{key} must be one of {', '.join(allowed)}, got {value!r}")
    return str(value)


def active_settings(cfg: DictConfig) -> ActiveSettings:
    """Check the whole config (:func:`bnnlv.runs.config.check_config`, then ``active.*``, then
    the model and trainer as this command uses them) and return the active settings."""
    check_config(cfg)
    if not isinstance(cfg.get("active"), DictConfig):
        raise ValueError("the config has no active group (configs/active/); run bnnlv active")
    a = OmegaConf.to_container(cfg.active, resolve=True)
    assert isinstance(a, dict)
    beta = a.get("beta")
    if isinstance(beta, bool) or not isinstance(beta, (int, float)) or not 0 <= beta < math.inf:
        raise ValueError(f"active.beta must be a finite number >= 0, got {beta!r}")
    pool_size = a.get("pool_size")
    if pool_size is not None:
        _positive_int("pool_size", pool_size)
        if cfg.data.get("_target_") not in FRESH_POOL_DATA:
            raise ValueError(
                f"active.pool_size={pool_size}: only the toy data sets draw a fresh pool "
                "(data=toy_heteroscedastic, toy_bimodal); other data use their training split "
                "as the pool: set active.pool_size=null"
            )
    settings = ActiveSettings(
        acquisition=check_acquisition(a.get("acquisition")),  # type: ignore[arg-type]
        init_size=_positive_int("init_size", a.get("init_size")),
        query_size=_positive_int("query_size", a.get("query_size")),
        rounds=_positive_int("rounds", a.get("rounds"), minimum=0),
        candidates=_positive_int("candidates", a.get("candidates")),
        pool_size=pool_size,
        retrain=_choice("retrain", a.get("retrain"), RETRAIN),
        batch=_choice("batch", a.get("batch"), BATCH_KINDS),
        beta=float(beta),
        entropy_draws=_positive_int("entropy_draws", a.get("entropy_draws")),
    )
    if settings.candidates < settings.query_size:
        raise ValueError(
            f"active.candidates={settings.candidates} must be at least "
            f"active.query_size={settings.query_size} (the batch is chosen among the candidates)"
        )
    devices = cfg.trainer.get("devices", 1)
    if devices not in (1, "1") or str(cfg.trainer.get("strategy", "")).startswith("ddp"):
        raise ValueError(
            f"bnnlv active trains each round in one process: trainer.devices must be 1, got "
            f"{devices!r} (trainer={cfg.trainer.get('strategy', 'auto')}); use trainer=cpu or gpu"
        )
    return settings
