"""The run's figures: each function writes one PNG and leaves no figure open."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

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


@pytest.fixture
def drawn(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[Figure]]:
    """The figures the plot functions finish, kept open to be read (the real save is kept)."""
    figures: list[Figure] = []
    save = plots.save_figure

    def keep(fig: Figure, path: Path) -> None:
        fig.canvas.draw()  # tick labels exist once drawn
        figures.append(fig)
        fig.savefig(path)

    monkeypatch.setattr(plots, "save_figure", keep)
    yield figures
    monkeypatch.setattr(plots, "save_figure", save)
    plt.close("all")


def test_plot_data(tmp_path: Path, toy: tuple[np.ndarray, np.ndarray]) -> None:
    x, y = toy
    splits = ((x[:40], y[:40]), (x[40:50], y[40:50]), (x[50:], y[50:]))
    plots.plot_data(splits, "x", "y", tmp_path / "data.png")
    _assert_png(tmp_path / "data.png")


def test_plot_data_shows_the_validation_points(
    tmp_path: Path, toy: tuple[np.ndarray, np.ndarray], drawn: list[Figure]
) -> None:
    x, y = toy
    plots.plot_data(((x[:40], y[:40]), (x[40:48], y[40:48]), (x[48:], y[48:])), "x", "y",
                    tmp_path / "data.png")  # fmt: skip
    ax = drawn[0].axes[0]
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend == ["training (40)", "validation (8)", "test (12)"]
    assert [len(c.get_offsets()) for c in ax.collections] == [40, 8, 12]


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


def test_training_curves_say_their_units_and_convert_the_validation_nll(
    tmp_path: Path, drawn: list[Figure]
) -> None:
    """Issue 12: the log's val/nll (standardised) ends at 0.047 while metrics.json says 1.711;
    the right-hand axis reads the same curve in original units, shifted by Σ log s_y."""
    log = pd.DataFrame({"epoch": [0, 1, 2], "train/energy_per_point": [40.0, 9.0, 4.0],
                        "train/rmse": [1.0, 0.5, 0.2],
                        "val/nll": [np.nan, 0.3, 0.047]})  # fmt: skip
    log.to_csv(tmp_path / "metrics.csv", index=False)
    plots.plot_training_curves(tmp_path / "metrics.csv", tmp_path / "curves.png", 1.664, 3.0)
    energy, rmse, nll = drawn[0].axes[:3]
    titles = [ax.get_title() for ax in (energy, rmse, nll)]
    assert titles == ["Training objective: α-energy per point", "Training RMSE", "Validation NLL"]
    assert all("standardised y" in ax.get_ylabel() for ax in (energy, rmse, nll))
    right = {ax.get_ylabel(): ax for ax in rmse.child_axes + nll.child_axes}  # secondary axes
    assert set(right) == {"RMSE (original units)",
                          "nats per point (original units, as metrics.json)"}  # fmt: skip
    original = right["nats per point (original units, as metrics.json)"].get_ylim()
    assert original == pytest.approx(tuple(v + 1.664 for v in nll.get_ylim()))  # 0.047 ↔ 1.711
    assert right["RMSE (original units)"].get_ylim() == pytest.approx(
        tuple(3.0 * v for v in rmse.get_ylim())
    )
    labels = [t.get_text() for t in energy.get_yticklabels() if t.get_text()]
    assert labels and all("10^" not in t and "times" not in t for t in labels)
    assert not [t for t in energy.yaxis.get_minorticklabels() if t.get_text()]


def test_log_axis_labels_plain_numbers_and_no_minor_ticks(drawn: list[Figure]) -> None:
    for low, high, expected in ((2e-4, 8e-3, {"0.0005", "0.001", "0.002", "0.005"}),
                                (1e-3, 10.0, {"0.001", "0.01", "0.1", "1", "10"})):  # fmt: skip
        fig, ax = plt.subplots()
        ax.plot([low, high], [0, 1])
        plots.log_axis(ax.xaxis, low, high)
        fig.canvas.draw()
        shown = {t.get_text() for t in ax.get_xticklabels() if t.get_text()}
        assert expected <= shown
        assert not [t for t in ax.xaxis.get_minorticklabels() if t.get_text()]
        plt.close(fig)


def test_predicted_against_true_with_the_mixture_interval(
    tmp_path: Path, drawn: list[Figure]
) -> None:
    rng = np.random.default_rng(3)
    y = rng.normal(size=(50, 2))
    mean = y + 0.3 * rng.normal(size=(50, 2))
    bounds = np.stack([mean - 0.5, mean + 0.5])  # [2, B, D]
    bounds[1, 0, 0] = mean[0, 0] - 0.1  # a skewed mixture: its mean outside its interval
    plots.plot_predicted_vs_true(y, mean, bounds, 0.9, ["u", "v"], tmp_path / "fit.png")
    axes = drawn[0].axes
    titles = [ax.get_title() for ax in axes]
    assert titles == [f"{t}: predicted against true (test points)" for t in ("u", "v")]
    assert axes[0].get_ylabel() == "predicted u: mean and 90 % interval"
    inside = ((bounds[0] <= y) & (y <= bounds[1])).mean(axis=0)
    legend = [t.get_text() for t in axes[1].get_legend().get_texts()]
    assert legend[0] == f"true value inside the interval ({inside[1]:.0%})"


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


def test_a_figure_is_written_whole_or_not_at_all(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An interrupt while matplotlib writes the PNG leaves the previous figure and no temporary
    file; the figure is closed either way."""
    path = tmp_path / "fit.png"
    fig, ax = plt.subplots()
    ax.plot([0, 1], [0, 1])
    plots.save_figure(fig, path)
    before = path.read_bytes()
    assert before.startswith(b"\x89PNG") and not plt.fignum_exists(fig.number)

    def cut(self: Figure, handle: object, **kwargs: object) -> None:
        handle.write(b"\x89PNG half")  # type: ignore[attr-defined]
        raise KeyboardInterrupt

    fig, _ = plt.subplots()
    monkeypatch.setattr(Figure, "savefig", cut)
    with pytest.raises(KeyboardInterrupt):
        plots.save_figure(fig, path)
    assert path.read_bytes() == before and [p.name for p in tmp_path.iterdir()] == ["fit.png"]
    assert not plt.fignum_exists(fig.number)
