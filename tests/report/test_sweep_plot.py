"""report.sweep_plot: summary.png shows the optimised metric, error bars only over seeds, and
log axes whose labels do not overlap."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

from bnnlv.report import plots
from bnnlv.report.sweep_plot import plot_sweep


@pytest.fixture
def drawn(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[Figure]]:
    figures: list[Figure] = []

    def keep(fig: Figure, path: Path) -> None:
        fig.canvas.draw()
        figures.append(fig)

    monkeypatch.setattr(plots, "save_figure", keep)
    yield figures
    plt.close("all")


def settings(n_ok: int, rows: int = 12) -> pd.DataFrame:
    """A per-setting table like runs.sweep.aggregate's: lr spans 1.5 decades (log axis)."""
    rng = np.random.default_rng(0)
    se = np.full(rows, 0.05) if n_ok > 1 else np.full(rows, np.nan)
    return pd.DataFrame({"model.lr": np.geomspace(2e-4, 8e-3, rows),
                         "alpha": rng.uniform(0, 1, rows), "n_jobs": n_ok, "n_ok": n_ok,
                         "val_nll_mean": rng.normal(1.8, 0.1, rows), "val_nll_se": se,
                         "test_nll_mean": rng.normal(1.9, 0.1, rows),
                         "test_nll_se": se})  # fmt: skip


def test_an_optuna_like_sweep_shows_the_validation_nll_and_no_seed_error_bars(
    tmp_path: Path, drawn: list[Figure]
) -> None:
    plot_sweep(settings(n_ok=1), ["model.lr", "alpha"], ["val_nll", "test_nll"], tmp_path / "s.png")
    fig = drawn[0]
    assert [ax.get_ylabel() for ax in fig.axes] == ["validation NLL (nats per point)"] * 2 + [
        "test NLL (nats per point)"] * 2  # fmt: skip
    title = fig.get_suptitle()
    assert "standard error" not in title and "one seed per setting" in title
    assert "hparams_search=optuna minimises" in title
    assert all(not ax.containers[0].has_yerr for ax in fig.axes)
    lr_axis = fig.axes[0].xaxis
    assert fig.axes[0].get_xscale() == "log"
    assert not [t for t in lr_axis.get_minorticklabels() if t.get_text()]  # the overlapping ones


def test_replicated_settings_get_standard_error_bars(tmp_path: Path, drawn: list[Figure]) -> None:
    plot_sweep(settings(n_ok=3, rows=3), ["alpha"], ["test_nll"], tmp_path / "s.png")
    fig = drawn[0]
    assert "mean ± standard error over the seeds" in fig.get_suptitle()
    assert "optuna" not in fig.get_suptitle() and fig.axes[0].containers[0].has_yerr
