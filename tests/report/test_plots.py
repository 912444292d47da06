"""The run's figures: each function writes one PNG and leaves no figure open."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest

from bnnlv.report import plots

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _assert_png(path: Path) -> None:
    assert path.read_bytes()[:8] == PNG_MAGIC
    assert path.stat().st_size > 5_000  # a drawn figure, not an empty canvas
    assert plt.get_fignums() == []


@pytest.fixture
def toy() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    x = rng.uniform(-3, 3, 60)
    return x, np.sin(x) + 0.2 * rng.normal(size=60)


def test_plot_data(tmp_path: Path, toy: tuple[np.ndarray, np.ndarray]) -> None:
    x, y = toy
    plots.plot_data(x[:40], y[:40], x[40:], y[40:], "x", "y", tmp_path / "data.png")
    _assert_png(tmp_path / "data.png")


def test_plot_fit(tmp_path: Path, toy: tuple[np.ndarray, np.ndarray]) -> None:
    x, y = toy
    grid = np.linspace(-3.6, 3.6, 50)
    samples = np.sin(grid) + 0.2 * np.random.default_rng(1).normal(size=(5, 50))
    plots.plot_fit(grid, np.sin(grid), 0.05 + 0.1 * np.abs(grid), np.full(50, 0.2), samples,
                   x, y, "x", "y", tmp_path / "fit.png")  # fmt: skip
    _assert_png(tmp_path / "fit.png")


def test_plot_training_curves(tmp_path: Path) -> None:
    log = pd.DataFrame(
        {
            "epoch": [0, 1, 2, 3],
            "train/energy_per_point": [3.0, 2.0, 1.5, 1.2],
            "train/rmse": [1.0, 0.8, 0.7, 0.6],
            "val/nll": [np.nan, 1.9, np.nan, 1.4],
        }
    )
    log.to_csv(tmp_path / "metrics.csv", index=False)
    plots.plot_training_curves(tmp_path / "metrics.csv", tmp_path / "curves.png")
    _assert_png(tmp_path / "curves.png")


def test_plot_fit_with_entropy_panel(tmp_path: Path, toy: tuple[np.ndarray, np.ndarray]) -> None:
    x, y = toy
    grid = np.linspace(-3.6, 3.6, 50)
    samples = np.sin(grid) + 0.2 * np.random.default_rng(1).normal(size=(5, 50))
    h_al = np.full(50, 0.3)
    entropy = (h_al + 0.1 * np.abs(grid), h_al, 0.1 * np.abs(grid))
    plots.plot_fit(grid, np.sin(grid), 0.05 + 0.1 * np.abs(grid), np.full(50, 0.2), samples,
                   x, y, "x", "y", tmp_path / "fit.png", entropy)  # fmt: skip
    _assert_png(tmp_path / "fit.png")


@pytest.mark.parametrize("with_oracle", [True, False])
def test_plot_diagnostics_for_two_outputs(tmp_path: Path, with_oracle: bool) -> None:
    rng = np.random.default_rng(2)
    mean = rng.normal(size=(80, 2))
    std = rng.uniform(0.2, 1.0, size=(80, 2))
    y = mean + std * rng.normal(size=(80, 2))
    nll = rng.gamma(2.0, size=80)
    oracle = nll - 0.1 if with_oracle else None
    plots.plot_diagnostics(y, mean, std, nll, ["a", "b"], tmp_path / "diag.png", oracle)
    _assert_png(tmp_path / "diag.png")
