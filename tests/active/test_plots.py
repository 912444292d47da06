"""The figures of bnnlv active are drawn and written as PNG files."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from bnnlv.active.plots import plot_acquired, plot_curves, plot_learning_curve


def is_png(path: Path) -> bool:
    return path.read_bytes()[:4] == b"\x89PNG"


def test_learning_curve_and_sweep_curves(tmp_path: Path) -> None:
    n = np.array([10, 20, 30])
    plot_learning_curve(n, np.array([3.0, 2.5, 2.2]), np.array([4.0, 3.0, 2.9]), "title",
                        tmp_path / "curve.png", oracle_nll=1.8)  # fmt: skip
    curves = {"a": (n, np.array([3.0, 2.0, 1.5]), np.array([0.1, 0.1, 0.0])),
              "b": (n, np.array([3.0, 2.5, 2.0]), np.zeros(3))}  # fmt: skip
    plot_curves(curves, "test NLL", "title", tmp_path / "curves.png")
    assert is_png(tmp_path / "curve.png") and is_png(tmp_path / "curves.png")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["curve.png", "curves.png"]  # no temps


def test_acquired(tmp_path: Path) -> None:
    grid = np.linspace(-1.0, 1.0, 50)
    entropy = (np.ones(50), 0.5 * np.ones(50), 0.5 * np.ones(50))
    rng = np.random.default_rng(0)
    pool = (rng.normal(size=100), rng.normal(size=100))
    picks = [(rng.normal(size=3), rng.normal(size=3)) for _ in range(4)]
    plot_acquired(grid, grid, np.ones(50), entropy, pool, (pool[0][:5], pool[1][:5]), picks,
                  ("x", "y"), "title", tmp_path / "acquired.png")  # fmt: skip
    assert is_png(tmp_path / "acquired.png")
