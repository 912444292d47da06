"""The pool, the labelled set and the per-round random streams."""

from __future__ import annotations

import numpy as np
import pytest

from bnnlv.active.pool import (
    CANDIDATE_STREAM,
    TRAIN_STREAM,
    LabelledPool,
    draw_candidates,
    initial_set,
    pool_scaler,
    round_seed,
)
from bnnlv.data.toy import ToyHeteroscedastic


def test_round_seeds_differ_between_seeds_rounds_and_uses() -> None:
    seeds = {round_seed(s, r, u) for s in range(5) for r in range(20) for u in range(4)}
    assert len(seeds) == 400 and all(0 <= s < 2**31 for s in seeds)
    assert round_seed(3, 7, TRAIN_STREAM) == round_seed(3, 7, TRAIN_STREAM)


def test_initial_set_is_distinct_sorted_and_fixed_by_the_seed() -> None:
    a = initial_set(100, 20, seed=4)
    assert a == sorted(set(a)) and len(a) == 20 and a[0] >= 0 and a[-1] < 100
    assert a == initial_set(100, 20, seed=4) and a != initial_set(100, 20, seed=5)
    with pytest.raises(ValueError, match=r"active.init_size must be in \[1, 10\]"):
        initial_set(10, 11, seed=0)


def test_candidates_are_unlabelled_distinct_and_all_when_few_remain() -> None:
    labelled = list(range(0, 100, 3))
    for r in range(5):
        drawn = draw_candidates(100, labelled, 30, seed=1, round_index=r)
        assert len(drawn) == 30 and len(set(drawn.tolist())) == 30
        assert not set(drawn.tolist()) & set(labelled)
    rest = draw_candidates(100, labelled, 500, seed=1, round_index=0)
    assert rest.tolist() == sorted(set(range(100)) - set(labelled))
    assert np.array_equal(draw_candidates(100, labelled, 30, 1, 2),
                          draw_candidates(100, labelled, 30, 1, 2))  # fmt: skip
    assert round_seed(1, 2, CANDIDATE_STREAM) != round_seed(1, 3, CANDIDATE_STREAM)


def test_labelled_pool_serves_the_labelled_rows_in_order_with_the_run_scaler() -> None:
    toy = ToyHeteroscedastic(n_points=60, pool_size=200)
    splits = toy.splits
    scaler = pool_scaler(splits, [5, 1, 9])
    assert np.allclose(scaler.x_mean, splits.x_train.mean(axis=0))  # the whole pool's inputs
    assert np.allclose(scaler.y_mean, splits.y_train[[5, 1, 9]].mean(axis=0))  # initial targets
    data = LabelledPool(splits, [9, 1, 5, 70], scaler, batch_size=140, seed=0)
    assert data.n_train == 4 and data.batch_size == 4
    assert np.array_equal(data.splits.x_train, splits.x_train[[9, 1, 5, 70]])
    assert np.array_equal(data.splits.x_test, splits.x_test) and data.scaler is scaler
