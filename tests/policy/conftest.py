"""Small building blocks for the policy tests: an untrained dynamics model on Wet-Chicken's
columns (what a test of the machinery needs; nothing here depends on how well it predicts)."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest
import torch

from bnnlv.data.module import Standardiser
from bnnlv.data.wet_chicken import FEATURES, TARGETS
from bnnlv.model.lit_module import BNNLV
from bnnlv.policy.dynamics import ModelDynamics
from bnnlv.policy.network import Policy

SCALER = Standardiser(
    np.array([2.5, 2.5, 0.0, 0.0]), np.array([1.44, 1.44, 0.58, 0.58]),
    np.array([2.0, 2.0]), np.array([1.7, 1.6]),
)  # fmt: skip


def make_dynamics(latent: str = "per_point", stochastic: str | list[int] = "all") -> ModelDynamics:
    torch.manual_seed(0)
    model = BNNLV(4, 2, n_train=10, batch_size=10, hidden=[8], latent=latent,
                  stochastic_layers=stochastic, posterior_std_init=0.1)  # fmt: skip
    return ModelDynamics(model, SCALER, list(FEATURES), list(TARGETS))


@pytest.fixture
def dynamics() -> ModelDynamics:
    return make_dynamics()


@pytest.fixture
def policy() -> Policy:
    torch.manual_seed(1)
    return Policy(SCALER.x_mean[:2], SCALER.x_std[:2], [8, 8])


@pytest.fixture(autouse=True)
def one_thread() -> Iterator[None]:
    """One torch thread, as runs use (threads: 1): two spin-wait on every tiny op when busy."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
