"""Wet-Chicken 2-D: the transition equations case by case, the fall probability in closed form,
and the data module's splits (datasets.md)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from bnnlv.data.wet_chicken import (
    LENGTH,
    WIDTH,
    WetChicken,
    wet_chicken_reward,
    wet_chicken_step,
    wet_chicken_transitions,
)


def _step(x: float, y: float, a_x: float, a_y: float, tau: float) -> tuple[float, float]:
    x_next, y_next = wet_chicken_step(*(np.array([v]) for v in (x, y, a_x, a_y, tau)))
    return float(x_next[0]), float(y_next[0])


@pytest.mark.parametrize(
    ("state", "expected"),
    [
        # v = 1.5, s = 2: ŷ = 1 − 0.5 + 1.5 + 0 = 2; x' = 2.5 + 0.5
        ((2.5, 1.0, 0.5, 0.5, 0.0), (3.0, 2.0)),
        # ŷ = 4.5 + 0 + 1.5 + 2 = 8 > l: fell, both reset (x + a_x = 3.5 would be inside)
        ((2.5, 4.5, 1.0, 1.0, 1.0), (0.0, 0.0)),
        # v = 3, s = 0.5: ŷ = 4 + 0 + 3 + 0.5 = 7.5 > l, and x + a_x = 6 > w: the fall wins
        ((5.0, 4.0, 1.0, 1.0, 1.0), (0.0, 0.0)),
        # v = 0, s = 3.5: ŷ = 0.2 − 2 − 3.5 < 0 → y' = 0; x + a_x = 0.3 − 0.8 < 0 → x' = 0
        ((0.0, 0.2, -0.8, -1.0, -1.0), (0.0, 0.0)),
        # v = 2.88, s = 0.62: ŷ = 0 − 2 + 2.88 − 0.62 = 0.26; x + a_x = 5.5 > w → x' = w
        ((4.8, 0.0, 0.7, -1.0, -1.0), (WIDTH, 0.26)),
        # ŷ = l exactly is not a fall (the rule is ŷ > l): v = 0, ŷ = 5 + 0 + 0 + 0
        ((0.0, 5.0, 0.25, 1.0, 0.0), (0.25, LENGTH)),
    ],
)
def test_step_by_hand(state: tuple[float, ...], expected: tuple[float, float]) -> None:
    assert _step(*state) == pytest.approx(expected, abs=1e-12)


def test_fall_probability_matches_the_uniform_noise() -> None:
    """x = 2.5 (v = 1.5, s = 2), y = 3, a_y = 0: ŷ ~ U[1.5, 5.5], so P(fall) = 0.5 / 4 = 1/8 and,
    given no fall, y' ~ U[1.5, 5] with mean 3.25."""
    n = 200_000
    tau = np.random.default_rng(0).uniform(-1, 1, n)
    x_next, y_next = wet_chicken_step(
        np.full(n, 2.5), np.full(n, 3.0), np.zeros(n), np.zeros(n), tau
    )
    fell = (x_next == 0) & (y_next == 0)
    assert fell.mean() == pytest.approx(0.125, abs=0.003)
    assert y_next[~fell].min() >= 1.5 and y_next[~fell].max() <= LENGTH
    assert y_next[~fell].mean() == pytest.approx(3.25, abs=0.01)
    np.testing.assert_array_equal(x_next[~fell], 2.5)


def test_transitions_are_seeded_and_in_range() -> None:
    inputs, targets = wet_chicken_transitions(2500, seed=3)
    assert inputs.shape == (2500, 4) and targets.shape == (2500, 2)
    again, _ = wet_chicken_transitions(2500, seed=3)
    other, _ = wet_chicken_transitions(2500, seed=4)
    np.testing.assert_array_equal(inputs, again)
    assert not np.array_equal(inputs, other)
    lo, hi = inputs.min(axis=0), inputs.max(axis=0)
    assert np.all(lo[:2] >= 0) and hi[0] <= WIDTH and hi[1] <= LENGTH
    assert np.all(lo[2:] >= -1) and np.all(hi[2:] <= 1)
    assert targets[:, 0].min() >= 0 and targets[:, 0].max() <= WIDTH
    assert targets[:, 1].min() >= 0 and targets[:, 1].max() <= LENGTH
    # the bimodality the benchmark is about: a sizeable share of transitions falls
    assert 0.05 < np.mean((targets == 0).all(axis=1)) < 0.5


def test_module_splits_and_names() -> None:
    data = WetChicken(n_points=2500, batch_size=250)
    s = data.splits
    assert (len(s.x_train), len(s.x_val), len(s.x_test)) == (1750, 250, 500)
    assert (data.in_features, data.out_features) == (4, 2)
    assert list(s.feature_names) == ["x", "y", "a_x", "a_y"]
    assert list(s.target_names) == ["x_next", "y_next"]
    assert s.oracle_log_density is None
    rows = np.concatenate([s.x_train, s.x_val, s.x_test])
    assert len(np.unique(rows, axis=0)) == 2500


@pytest.mark.parametrize(
    ("kwargs", "key"),
    [
        ({"n_points": 5}, "n_points"),
        ({"test_frac": 0.0}, "test_frac"),
        ({"val_frac": 1.0}, "val_frac"),
        ({"test_frac": "x"}, "test_frac"),
    ],
)
def test_bad_arguments_are_rejected(kwargs: dict[str, object], key: str) -> None:
    with pytest.raises(ValueError, match=key):
        WetChicken(**kwargs)  # type: ignore[arg-type]


def test_reward_by_hand_for_arrays_and_tensors() -> None:
    """−(l − y'): −5 at the start of the river (and after a fall), 0 at the waterfall's edge."""
    np.testing.assert_allclose(wet_chicken_reward(np.array([0.0, 1.5, 5.0])), [-5.0, -3.5, 0.0])
    assert torch.equal(wet_chicken_reward(torch.tensor([0.0, 5.0])), torch.tensor([-5.0, 0.0]))
