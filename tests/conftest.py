"""Shared fixtures: the real Hydra config, composed as the CLI composes it."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig

from bnnlv.runs.folders import config_dir


@pytest.fixture
def compose_train() -> Callable[..., DictConfig]:
    """compose_train("model=mlp", "alpha=0.1") → the composed ``train`` config."""

    def _compose(*overrides: str) -> DictConfig:
        with initialize_config_dir(config_dir=config_dir(), version_base="1.3"):
            return compose(config_name="train", overrides=list(overrides))

    return _compose
