"""The pool, the labelled set and the random draws of an active-learning run.

The pool is the data set's training split (for the toys optionally a fresh draw of
``active.pool_size`` points from the generator); validation and test splits are the data set's
own. A round trains on the labelled rows of the pool only, served by :class:`LabelledPool`.
Every random choice of round r comes from its own stream, :func:`round_seed` (seed, r, use), so
a round does the same whatever happened before it in this process: a resumed run repeats it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import numpy as np

from bnnlv.data.module import RegressionDataModule, Splits, Standardiser

# the streams of a round (round_seed's ``use``)
TRAIN_STREAM, CANDIDATE_STREAM, SCORE_STREAM, BATCH_STREAM, INITIAL_STREAM = range(5)


def round_seed(seed: int, round_index: int, use: int) -> int:
    """A 31-bit seed of its own for each (run seed, round, use): np.random.SeedSequence hashes
    the triple, so neighbouring seeds and rounds give unrelated streams."""
    return int(np.random.SeedSequence([seed, round_index, use]).generate_state(1)[0] >> 1)


def initial_set(n_pool: int, init_size: int, seed: int) -> list[int]:
    """``init_size`` distinct pool indices drawn uniformly with the run's seed (the same for
    every acquisition, so that runs with one seed differ only in what they acquire)."""
    if not 0 < init_size <= n_pool:
        raise ValueError(f"active.init_size must be in [1, {n_pool}] (the pool), got {init_size}")
    rng = np.random.default_rng(round_seed(seed, 0, INITIAL_STREAM))
    return sorted(int(i) for i in rng.choice(n_pool, size=init_size, replace=False))


def draw_candidates(
    n_pool: int, labelled: Sequence[int], n_candidates: int, seed: int, round_index: int
) -> np.ndarray:
    """Up to ``n_candidates`` distinct unlabelled pool indices, uniformly at random, sorted; all
    of the unlabelled ones when fewer remain."""
    unlabelled = np.setdiff1d(np.arange(n_pool), np.asarray(labelled, dtype=np.int64))
    if len(unlabelled) <= n_candidates:
        return unlabelled
    rng = np.random.default_rng(round_seed(seed, round_index, CANDIDATE_STREAM))
    return np.sort(rng.choice(unlabelled, size=n_candidates, replace=False))


def pool_scaler(splits: Splits, initial: Sequence[int]) -> Standardiser:
    """The standardisation of the whole run: inputs by the pool's statistics (the unlabelled
    inputs are known), targets by the initial labelled set's (the only targets known at the
    start). Fixed for every round, so that a warm start continues in the same units."""
    return Standardiser.fit(splits.x_train, splits.y_train[np.asarray(initial)])


class LabelledPool(RegressionDataModule):
    """The data set with its training split cut down to the labelled pool rows, in the order of
    ``labelled`` (row i of a per-point latent table is the point ``labelled[i]``)."""

    def __init__(
        self, splits: Splits, labelled: Sequence[int], scaler: Standardiser, batch_size: int,
        seed: int,
    ) -> None:  # fmt: skip
        super().__init__(batch_size=min(batch_size, len(labelled)), seed=seed)
        self.pool_splits = splits
        self.labelled = np.asarray(labelled, dtype=np.int64)  # [n]
        self.prepare(scaler)  # the pool's rows were checked when the pool was loaded

    def load(self) -> Splits:
        s = self.pool_splits
        return replace(s, x_train=s.x_train[self.labelled], y_train=s.y_train[self.labelled])
