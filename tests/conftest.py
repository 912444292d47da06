"""Shared fixtures: the real Hydra config, composed as the CLI composes it."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig

from bnnlv.runs.folders import config_dir


def _composer(config_name: str) -> Callable[..., DictConfig]:
    def _compose(*overrides: str) -> DictConfig:
        with initialize_config_dir(config_dir=config_dir(), version_base="1.3"):
            return compose(config_name=config_name, overrides=list(overrides))

    return _compose


@pytest.fixture
def compose_train() -> Callable[..., DictConfig]:
    """compose_train("model=mlp", "alpha=0.1") → the composed ``train`` config."""
    return _composer("train")


@pytest.fixture
def compose_active() -> Callable[..., DictConfig]:
    """compose_active("active.rounds=3") → the composed ``active`` config (bnnlv active)."""
    return _composer("active")
