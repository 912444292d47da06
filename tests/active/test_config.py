"""The active config: composition, and one-line errors for bad active.* values."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from omegaconf import DictConfig

from bnnlv.active.config import ActiveSettings, active_settings


def test_default_settings(compose_active: Callable[..., DictConfig]) -> None:
    cfg = compose_active()
    settings = active_settings(cfg)
    assert settings.acquisition == "epistemic" and settings.retrain in ("scratch", "warm")
    assert settings.final_size == settings.init_size + settings.rounds * settings.query_size
    assert cfg.model._target_ == "bnnlv.model.lit_module.BNNLV" and cfg.model.latent == "per_point"
    assert cfg.data._target_ == "bnnlv.data.toy.ToyHeteroscedastic"


def test_model_data_and_trainer_groups_compose_as_for_train(
    compose_active: Callable[..., DictConfig],
) -> None:
    cfg = compose_active("model=bnn", "data=toy_bimodal", "trainer.max_epochs=7", "alpha=0.25")
    assert cfg.model.latent == "none" and cfg.model.alpha == 0.25
    assert cfg.data._target_ == "bnnlv.data.toy.ToyBimodal" and cfg.trainer.max_epochs == 7


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("active.acquisition=entropy", "active.acquisition must be one of epistemic, total, "
         "aleatoric, epistemic_var, random, got 'entropy'"),
        ("active.init_size=0", "active.init_size must be a positive integer, got 0"),
        ("active.query_size=-3", "active.query_size must be a positive integer, got -3"),
        ("active.rounds=-1", "active.rounds must be an integer >= 0, got -1"),
        ("active.candidates=2.5", "active.candidates must be a positive integer, got 2.5"),
        ("active.retrain=again", "active.retrain must be one of scratch, warm, got 'again'"),
        ("active.batch=greedy", "active.batch must be one of topk, stochastic, got 'greedy'"),
        ("active.beta=-1", "active.beta must be a finite number >= 0, got -1"),
        ("active.entropy_draws=0", "active.entropy_draws must be a positive integer, got 0"),
        ("active.candidates=5", "active.candidates=5 must be at least active.query_size=10"),
        ("active.pool_size=0", "active.pool_size must be a positive integer, got 0"),
        ("trainer.max_epochs=0", "trainer.max_epochs must be a positive integer, got 0"),
        ("trainer.devices=2", "bnnlv active trains each round in one process"),
    ],
)  # fmt: skip
def test_bad_values_are_named_by_their_key(
    compose_active: Callable[..., DictConfig], override: str, message: str
) -> None:
    with pytest.raises(ValueError, match="^" + message.replace("(", r"\(").replace(")", r"\)")):
        active_settings(compose_active(override))


def test_a_fresh_pool_needs_a_toy_data_set(compose_active: Callable[..., DictConfig]) -> None:
    cfg = compose_active("data=wet_chicken", "active.pool_size=5000")
    with pytest.raises(ValueError, match=r"active\.pool_size=5000: only the toy data sets"):
        active_settings(cfg)
    assert active_settings(compose_active("active.pool_size=5000")).pool_size == 5000


def test_the_pool_must_hold_every_round(compose_active: Callable[..., DictConfig]) -> None:
    settings = active_settings(compose_active("active.init_size=20", "active.query_size=10",
                                              "active.rounds=20"))  # fmt: skip
    settings.check_pool(220)
    message = r"active\.query_size=10 × active\.rounds=20 after active\.init_size=20 needs 220"
    with pytest.raises(ValueError, match=message + " pool points, the pool has 219"):
        settings.check_pool(219)
    with pytest.raises(ValueError, match=r"active\.init_size=20 is larger than the pool"):
        ActiveSettings(**{**settings.__dict__, "rounds": 0}).check_pool(19)
