"""The synthetic data sets: the tutorial's data bit for bit, oracles, RNG hygiene (datasets.md)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from bnnlv.data.toy import (
    POOL_SEED_OFFSET,
    ToyBimodal,
    ToyHeteroscedastic,
    bimodal_generator,
    bimodal_log_density,
    heteroscedastic_generator,
    shuffle_split,
)


@pytest.fixture(scope="module")
def tutorial() -> ToyHeteroscedastic:
    data = ToyHeteroscedastic(n_points=800)
    data.prepare()
    return data


def test_tutorial_fingerprint(tutorial: ToyHeteroscedastic) -> None:
    """datasets.md: the exact arrays of the seed tutorial for n_points = 800."""
    x, y = heteroscedastic_generator(800, 42)
    np.testing.assert_allclose(x[:3], [-1.00069211, -3.36831487, -4.23235125], atol=5e-9)
    np.testing.assert_allclose(y[:3], [-5.05348289, 1.83392701, 5.39155896], atol=5e-9)
    s = tutorial.splits
    assert (len(s.x_train), len(s.x_val), len(s.x_test)) == (560, 80, 160)
    scaler = tutorial.scaler
    np.testing.assert_allclose(scaler.x_mean, [-0.174124142], atol=5e-10)
    np.testing.assert_allclose(scaler.x_std, [3.376396313], atol=5e-10)
    np.testing.assert_allclose(scaler.y_mean, [0.163766234], atol=5e-10)
    np.testing.assert_allclose(scaler.y_std, [5.277391301], atol=5e-10)
    np.testing.assert_allclose(s.x_test[:3, 0], [-0.15467669, 3.75502505, 4.38535045], atol=5e-9)
    np.testing.assert_allclose(s.y_test[:3, 0], [-4.39298087, -3.70229608, -5.90757177], atol=5e-9)


def test_splits_partition_the_data(tutorial: ToyHeteroscedastic) -> None:
    train, val, test = shuffle_split(800, 42)
    assert sorted(np.concatenate([train, val, test]).tolist()) == list(range(800))
    assert np.array_equal(test, np.random.RandomState(42).permutation(800)[:160])
    x, _ = heteroscedastic_generator(800, 42)
    np.testing.assert_array_equal(tutorial.splits.x_train[:, 0], x[train])


def test_oracle_nll_on_the_test_split(tutorial: ToyHeteroscedastic) -> None:
    s = tutorial.splits
    assert s.oracle_log_density is not None
    nll = -s.oracle_log_density(s.x_test, s.y_test).mean()
    nll_standardised = nll - math.log(tutorial.scaler.y_std[0])
    assert nll_standardised == pytest.approx(0.1399, abs=5e-5)


def test_standardised_tensors(tutorial: ToyHeteroscedastic) -> None:
    x, y = tutorial.tensors("train")
    assert x.dtype == torch.float32 and x.shape == (560, 1) and y.shape == (560, 1)
    for t in (x, y):
        assert abs(t.mean().item()) < 1e-5
        assert t.std(unbiased=False).item() == pytest.approx(1.0, abs=1e-5)
    assert tutorial.tensors("test")[0].shape == (160, 1)


@pytest.mark.parametrize(
    "make", [lambda: ToyHeteroscedastic(n_points=50), lambda: ToyBimodal(n_points=50)]
)
def test_global_numpy_rng_is_not_disturbed(make) -> None:  # type: ignore[no-untyped-def]
    np.random.seed(123)
    state = np.random.get_state()
    make().prepare()
    after = np.random.get_state()
    assert state[0] == after[0] and np.array_equal(state[1], after[1]) and state[2:] == after[2:]


def test_bimodal_generator_range_and_oracle_is_a_density() -> None:
    x, y = bimodal_generator(2000, seed=0)
    assert x.shape == y.shape == (2000,)
    assert x.min() >= -0.5 and x.max() <= 2.0
    assert x.min() < -0.4  # the exponential's mode sits at the lower edge
    grid = np.linspace(-20.0, 20.0, 40_001)
    for x0 in (-0.5, 0.3, 0.785, 2.0):
        density = np.exp(bimodal_log_density(np.full((grid.size, 1), x0), grid[:, None]))
        assert np.trapezoid(density, grid) == pytest.approx(1.0, abs=1e-9)
    # both branches present: y clusters around 10 cos x and 10 sin x
    near_cos = np.abs(y - 10 * np.cos(x)) < 3
    near_sin = np.abs(y - 10 * np.sin(x)) < 3
    assert 0.4 < near_cos.mean() < 0.9 and 0.4 < near_sin.mean() < 0.9


def test_bimodal_module_splits() -> None:
    data = ToyBimodal()
    data.prepare()
    s = data.splits
    assert (len(s.x_train), len(s.x_val), len(s.x_test)) == (525, 75, 150)
    assert s.oracle_log_density is not None
    assert np.isfinite(s.oracle_log_density(s.x_test, s.y_test)).all()


@pytest.mark.parametrize("bad", [5, 10.5, True, "800"])
def test_bad_n_points_is_rejected(bad: object) -> None:
    with pytest.raises(ValueError, match=f"n_points.*{bad!r}"):
        ToyHeteroscedastic(n_points=bad)  # type: ignore[arg-type]


def test_bad_batch_size_is_rejected() -> None:
    with pytest.raises(ValueError, match=r"batch_size.*0"):
        ToyHeteroscedastic(batch_size=0)


@pytest.mark.parametrize(("make", "n_test"), [(ToyHeteroscedastic, 160), (ToyBimodal, 150)])
def test_a_fresh_pool_keeps_validation_and_test_bit_for_bit(make, n_test: int) -> None:  # type: ignore[no-untyped-def]
    plain, pooled = make(), make(pool_size=3000)
    a, b = plain.splits, pooled.splits
    for name in ("x_val", "y_val", "x_test", "y_test"):
        assert np.array_equal(getattr(a, name), getattr(b, name))
    assert b.x_train.shape == b.y_train.shape == (3000, 1) and len(b.x_test) == n_test
    assert not np.isin(b.x_train, np.concatenate([a.x_train, a.x_test])).any()
    assert np.array_equal(make(pool_size=3000).splits.x_train, b.x_train)  # deterministic


def test_pool_draws_come_from_the_generator() -> None:
    """The pool of the heteroscedastic toy is the generator's stream at the pool seed."""
    pooled = ToyHeteroscedastic(pool_size=50).splits
    x, y = heteroscedastic_generator(50, 42 + POOL_SEED_OFFSET)
    assert np.array_equal(pooled.x_train[:, 0], x) and np.array_equal(pooled.y_train[:, 0], y)


@pytest.mark.parametrize("size", [0, -5, 2.5, True])
def test_bad_pool_size_is_rejected(size: object) -> None:
    with pytest.raises(
        ValueError, match=f"data.pool_size must be a positive integer or null, got {size!r}"
    ):
        ToyBimodal(pool_size=size)  # type: ignore[arg-type]
