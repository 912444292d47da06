from __future__ import annotations

import pytest
import torch

from bnnlv.policy.evaluate import Protocol, average_reward
from bnnlv.policy.network import Policy
from bnnlv.policy.search import cross_entropy_search
from tests.policy.conftest import SCALER


def test_the_search_improves_on_its_starting_policy() -> None:
    torch.manual_seed(0)
    policy = Policy(SCALER.x_mean[:2], SCALER.x_std[:2], [4])
    protocol = Protocol.draw(200, 10, 99)
    before = average_reward(policy.act, protocol)[0]
    trace = cross_entropy_search(policy, iterations=6, population=12, elite_frac=0.25,
                                 init_std=0.5, min_std=0.05, episodes=50, horizon=10,
                                 seed=0)  # fmt: skip
    after = average_reward(policy.act, protocol)[0]
    assert len(trace) == 6 and after > before + 0.1


def test_the_search_is_seeded() -> None:
    results = []
    for _ in range(2):
        torch.manual_seed(0)
        policy = Policy(SCALER.x_mean[:2], SCALER.x_std[:2], [4])
        cross_entropy_search(policy, 2, 4, 0.5, 0.5, 0.05, 10, 5, seed=3)
        results.append(policy.flat())
    assert torch.equal(*results)


def test_an_empty_elite_is_rejected() -> None:
    policy = Policy(SCALER.x_mean[:2], SCALER.x_std[:2], [4])
    with pytest.raises(ValueError, match="elite_frac"):
        cross_entropy_search(policy, 1, 4, 0.0, 0.5, 0.05, 10, 5, seed=0)
