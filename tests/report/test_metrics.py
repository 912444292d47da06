"""Test metrics in original units."""

from __future__ import annotations

import math

import numpy as np
import pytest

from bnnlv.report.metrics import regression_metrics


def _case(n: int = 200, d: int = 1, seed: int = 0):
    rng = np.random.default_rng(seed)
    y = rng.normal(size=(n, d))
    mean = y + 0.3 * rng.normal(size=(n, d))
    std = np.full((n, d), 0.35)
    log_density_per_output = -0.5 * (np.log(2 * np.pi * std**2) + ((y - mean) / std) ** 2)
    return y, mean, std, log_density_per_output.sum(1), log_density_per_output


def test_nll_is_in_original_units() -> None:
    y, mean, std, joint, per_output = _case()
    metrics = regression_metrics(y, mean, std, joint, per_output, np.array([2.0]), ["y"])
    assert metrics["test_nll_standardised"] == pytest.approx(-joint.mean())
    assert metrics["test_nll"] == pytest.approx(-joint.mean() + math.log(2.0))


@pytest.mark.parametrize("c", [0.1, 3.0, 250.0])
def test_scaling_y_by_c_shifts_nll_by_log_c(c: float) -> None:
    """The same standardised fit, reported for targets c times larger."""
    y, mean, std, joint, per_output = _case()
    base = regression_metrics(y, mean, std, joint, per_output, np.array([1.0]), ["y"])
    scaled = regression_metrics(c * y, c * mean, c * std, joint, per_output, np.array([c]), ["y"])
    assert scaled["test_nll"] == pytest.approx(base["test_nll"] + math.log(c), rel=1e-12)
    for key in ("test_rmse", "test_mae", "test_crps"):
        assert scaled[key] == pytest.approx(c * base[key], rel=1e-9)
    for key in ("test_r2", "test_miscal_area"):
        assert scaled[key] == pytest.approx(base[key], rel=1e-9, abs=1e-12)


def test_accuracy_hand_values() -> None:
    y = np.array([[1.0], [2.0], [3.0], [4.0]])
    mean = np.array([[1.0], [2.0], [3.0], [6.0]])
    std = np.ones((4, 1))
    metrics = regression_metrics(y, mean, std, np.zeros(4), np.zeros((4, 1)), np.ones(1), ["y"])
    assert metrics["test_rmse"] == pytest.approx(1.0)  # sqrt(4 / 4)
    assert metrics["test_mae"] == pytest.approx(0.5)
    assert metrics["test_r2"] == pytest.approx(1 - 4 / 5)  # SS_res 4, SS_tot 5
    # CRPS of N(μ, 1) at y = μ is (√2 − 1)/√π
    exact = regression_metrics(y, y, std, np.zeros(4), np.zeros((4, 1)), np.ones(1), ["y"])
    assert exact["test_crps"] == pytest.approx((math.sqrt(2) - 1) / math.sqrt(math.pi))


def test_several_targets_report_each_output() -> None:
    y, mean, std, joint, per_output = _case(d=2)
    scale = np.array([2.0, 5.0])
    metrics = regression_metrics(y, mean, std, joint, per_output, scale, ["a", "b"])
    assert metrics["test_nll"] == pytest.approx(-joint.mean() + math.log(10.0))
    assert metrics["test_nll_b"] == pytest.approx(-per_output[:, 1].mean() + math.log(5.0))
    rmse = np.sqrt(((y - mean) ** 2).mean(0))
    assert metrics["test_rmse_a"] == pytest.approx(rmse[0])
    assert metrics["test_rmse"] == pytest.approx(rmse.mean())
    assert all(isinstance(v, float) for v in metrics.values())
