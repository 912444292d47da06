"""Synthetic 1-D data sets with known generators (datasets.md), so the oracle NLL is available."""

from __future__ import annotations

import math

import numpy as np

from bnnlv.data.module import OracleLogDensity, RegressionDataModule, Splits

LOG_2PI = math.log(2.0 * math.pi)
# A fresh pool (``pool_size``) is drawn by the data set's own generator with the seed
# noise_seed + POOL_SEED_OFFSET: independent of the n_points that give the validation and test
# splits, which stay bit for bit what they are without a pool.
POOL_SEED_OFFSET = 1_000_003


def shuffle_split(
    n: int, seed: int, test_frac: float = 0.2, val_frac: float = 0.125
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(train, val, test) indices with the tutorial's shuffle-split semantics.

    p = RandomState(seed).permutation(n); test = p[:ceil(test_frac·n)]; on the other n_o indices,
    p2 = RandomState(seed).permutation(n_o); val = other[p2[:ceil(val_frac·n_o)]]; train the rest.
    """
    p = np.random.RandomState(seed).permutation(n)
    n_test = math.ceil(test_frac * n)
    test, other = p[:n_test], p[n_test:]
    p2 = np.random.RandomState(seed).permutation(len(other))
    n_val = math.ceil(val_frac * len(other))
    return other[p2[n_val:]], other[p2[:n_val]], test


def heteroscedastic_generator(n_points: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """The seed tutorial's generator, bit for bit: the legacy global RNG, one point at a time.

    x from a 3-component mixture (means −4, 0, 4; stds 0.4, 0.9, 0.4); y = 7 sin x + 3|cos(x/2)| ε.
    """
    state = np.random.get_state()
    try:
        np.random.seed(seed)
        x = np.empty(n_points)
        y = np.empty(n_points)
        for k in range(n_points):
            r = np.random.rand()
            if r < 1 / 3:
                x[k] = np.random.normal(-4, 0.4)
            elif r < 2 / 3:
                x[k] = np.random.normal(0, 0.9)
            else:
                x[k] = np.random.normal(4, 0.4)
            y[k] = 7 * np.sin(x[k]) + 3 * abs(np.cos(x[k] / 2)) * np.random.randn()
    finally:
        np.random.set_state(state)
    return x, y


def heteroscedastic_log_density(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """log N(y; 7 sin x, (3|cos(x/2)|)²): x [B, 1], y [B, 1] → [B]."""
    std = 3 * np.abs(np.cos(x[:, 0] / 2))
    return -0.5 * (LOG_2PI + 2 * np.log(std) + ((y[:, 0] - 7 * np.sin(x[:, 0])) / std) ** 2)


def bimodal_generator(n_points: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Depeweg et al.'s bimodal set: x = e − 0.5, e ~ Exp(scale 0.5) redrawn until x ∈ [−0.5, 2];
    y = 10 cos x + ε or 10 sin x + ε with probability ½ each, ε ~ N(0, 1)."""
    rng = np.random.default_rng(seed)
    x = np.empty(0)
    while x.size < n_points:
        draw = rng.exponential(0.5, size=2 * n_points) - 0.5
        x = np.concatenate([x, draw[(draw >= -0.5) & (draw <= 2.0)]])
    x = x[:n_points]
    branch = rng.random(n_points) < 0.5
    y = np.where(branch, 10 * np.cos(x), 10 * np.sin(x)) + rng.standard_normal(n_points)
    return x, y


def bimodal_log_density(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """log(½ N(y; 10 cos x, 1) + ½ N(y; 10 sin x, 1)): x [B, 1], y [B, 1] → [B]."""
    a = -0.5 * (LOG_2PI + (y[:, 0] - 10 * np.cos(x[:, 0])) ** 2)
    b = -0.5 * (LOG_2PI + (y[:, 0] - 10 * np.sin(x[:, 0])) ** 2)
    return np.logaddexp(a, b) - math.log(2.0)


def _splits(
    x: np.ndarray,
    y: np.ndarray,
    split_seed: int,
    oracle: OracleLogDensity,
    pool: tuple[np.ndarray, np.ndarray] | None = None,
) -> Splits:
    """The shuffle split of (x, y); with ``pool`` = (x, y) those points are the training split
    instead of the split's own training rows (validation and test unchanged)."""
    train, val, test = shuffle_split(len(x), split_seed)
    col = lambda a, idx: a[idx].reshape(-1, 1)  # noqa: E731
    x_train, y_train = (x[train], y[train]) if pool is None else pool
    return Splits(
        x_train.reshape(-1, 1), y_train.reshape(-1, 1), col(x, val), col(y, val),
        col(x, test), col(y, test),
        feature_names=["x"], target_names=["y"], oracle_log_density=oracle, test_rows=test,
    )  # fmt: skip


def check_n_points(n_points: int) -> int:
    """``data.n_points``, an integer ≥ 10; ValueError otherwise."""
    if isinstance(n_points, bool) or not isinstance(n_points, int) or n_points < 10:
        raise ValueError(f"data.n_points must be an integer >= 10, got {n_points!r}")
    return n_points


def check_pool_size(pool_size: int | None) -> int | None:
    """``data.pool_size``, null or a positive integer; ValueError otherwise."""
    if pool_size is not None and (
        isinstance(pool_size, bool) or not isinstance(pool_size, int) or pool_size <= 0
    ):
        raise ValueError(f"data.pool_size must be a positive integer or null, got {pool_size!r}")
    return pool_size


class ToyHeteroscedastic(RegressionDataModule):
    """The seed tutorial's data (n_points = 800 reproduces it exactly; datasets.md).

    ``pool_size``: the training split is a fresh draw of that many points instead (for
    ``bnnlv active``; see POOL_SEED_OFFSET); null keeps the tutorial's training rows.
    """

    def __init__(
        self,
        n_points: int = 800,
        noise_seed: int = 42,
        split_seed: int = 42,
        pool_size: int | None = None,
        **kwargs: int,
    ) -> None:
        super().__init__(**kwargs)
        self.n_points = check_n_points(n_points)
        self.noise_seed, self.split_seed = noise_seed, split_seed
        self.pool_size = check_pool_size(pool_size)

    def load(self) -> Splits:
        x, y = heteroscedastic_generator(self.n_points, self.noise_seed)
        pool = None
        if self.pool_size is not None:
            pool = heteroscedastic_generator(self.pool_size, self.noise_seed + POOL_SEED_OFFSET)
        return _splits(x, y, self.split_seed, heteroscedastic_log_density, pool)


class ToyBimodal(RegressionDataModule):
    """Bimodal toy problem of Depeweg et al.; the oracle is the two-component mixture.

    ``pool_size``: as for :class:`ToyHeteroscedastic`.
    """

    def __init__(
        self,
        n_points: int = 750,
        noise_seed: int = 0,
        split_seed: int = 42,
        pool_size: int | None = None,
        **kwargs: int,
    ) -> None:
        super().__init__(**kwargs)
        self.n_points = check_n_points(n_points)
        self.noise_seed, self.split_seed = noise_seed, split_seed
        self.pool_size = check_pool_size(pool_size)

    def load(self) -> Splits:
        x, y = bimodal_generator(self.n_points, self.noise_seed)
        pool = None
        if self.pool_size is not None:
            pool = bimodal_generator(self.pool_size, self.noise_seed + POOL_SEED_OFFSET)
        return _splits(x, y, self.split_seed, bimodal_log_density, pool)
