from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from bnnlv.policy.network import Policy, load_policy
from bnnlv.runs.results import write_torch


def test_actions_are_in_the_box_and_the_input_is_standardised() -> None:
    torch.manual_seed(0)
    policy = Policy([2.5, 2.5], [1.5, 1.5], [8, 8])
    actions = policy(torch.rand(3, 7, 2) * 100)
    assert actions.shape == (3, 7, 2) and actions.abs().max() <= 1.0
    shifted = Policy([12.5, 2.5], [1.5, 1.5], [8, 8])
    shifted.load_state_dict({**policy.state_dict(), "state_mean": torch.tensor([12.5, 2.5])})
    state = torch.tensor([[1.0, 2.0]])
    torch.testing.assert_close(shifted(state + torch.tensor([10.0, 0.0])), policy(state))


def test_flat_weights_round_trip() -> None:
    policy = Policy([2.5, 2.5], [1.5, 1.5], [4])
    theta = policy.flat()
    assert theta.numel() == 2 * 4 + 4 + 4 * 2 + 2
    policy.load_flat(torch.zeros_like(theta))
    assert np.all(policy.act(np.ones((2, 2))) == 0.0)


def test_a_saved_policy_loads_safely_and_acts_the_same(tmp_path: Path) -> None:
    policy = Policy([2.5, 2.5], [1.5, 1.5], [6, 3])
    write_torch(tmp_path / "policy.ckpt", policy.saved_state())
    loaded = load_policy(tmp_path / "policy.ckpt")
    state = np.array([[1.0, 4.0], [3.0, 0.5]])
    np.testing.assert_array_equal(loaded.act(state), policy.act(state))
    write_torch(tmp_path / "other.ckpt", {"weights": torch.zeros(2)})
    with pytest.raises(ValueError, match="not a bnnlv policy"):
        load_policy(tmp_path / "other.ckpt")


@pytest.mark.parametrize(
    ("mean", "std", "hidden", "match"),
    [([1.0], [1.0, 1.0], [4], "statistics"), ([1.0, 1.0], [1.0, 0.0], [4], "statistics"),
     ([1.0, 1.0], [1.0, 1.0], [], "policy.hidden"), ([1.0, 1.0], [1.0, 1.0], [0], "policy.hidden")],
)  # fmt: skip
def test_bad_shapes_are_rejected(mean: list, std: list, hidden: list, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        Policy(mean, std, hidden)


def test_a_state_of_the_wrong_width_is_rejected() -> None:
    with pytest.raises(ValueError, match="must end in 2"):
        Policy([2.5, 2.5], [1.5, 1.5], [4])(torch.zeros(3, 4))
