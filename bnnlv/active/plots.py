"""The figures of ``bnnlv active``: a run's learning curve and where its picks fell, and the
learning curves of a sweep (mean ± standard error over seeds, one line per setting).

Arrays are in ORIGINAL units. Each figure is written atomically (bnnlv.report.plots.save_figure).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np

from bnnlv.report.plots import save_figure


def plot_learning_curve(
    n_labelled: np.ndarray, nll: np.ndarray, rmse: np.ndarray, title: str, path: Path,
    oracle_nll: float | None = None,
) -> None:  # fmt: skip
    """Test NLL and RMSE (original units) against the labelled-set size, one point per round."""
    fig, (ax_nll, ax_rmse) = plt.subplots(1, 2, figsize=(10, 3.8))
    ax_nll.plot(n_labelled, nll, marker="o", ms=3)
    if oracle_nll is not None:
        ax_nll.axhline(oracle_nll, color="k", ls="--", lw=1, label="true generator")
        ax_nll.legend(fontsize=8)
    ax_nll.set(xlabel="labelled points", ylabel="test NLL (nats, original units)",
               title="Test NLL per round")  # fmt: skip
    ax_rmse.plot(n_labelled, rmse, marker="o", ms=3, color="tab:green")
    ax_rmse.set(xlabel="labelled points", ylabel="test RMSE (original units)",
                title="Test RMSE per round")  # fmt: skip
    fig.suptitle(title)
    save_figure(fig, path)


def plot_acquired(
    grid: np.ndarray,
    mean: np.ndarray,
    total_std: np.ndarray,
    entropy: tuple[np.ndarray, np.ndarray, np.ndarray],
    pool: tuple[np.ndarray, np.ndarray],
    initial: tuple[np.ndarray, np.ndarray],
    picks: Sequence[tuple[np.ndarray, np.ndarray]],
    labels: tuple[str, str],
    title: str,
    path: Path,
) -> None:
    """Where each round's picks fall (1-D inputs), over the pool and the final model.

    grid, mean, total_std: [G]; entropy = (H[y|x], E_W H[y|W,x], I(y;W)) [G] in nats; pool and
    initial: (x, y) arrays; picks: (x, y) of round 0, 1, … Top: the pool, the final model's mean
    ± 2 total std, the initial set and the picks coloured by round. Bottom: the final model's
    entropy decomposition with a histogram of the picks' inputs.
    """
    xlabel, ylabel = labels
    fig, (ax, ax_h) = plt.subplots(
        2, 1, figsize=(10.5, 7.2), sharex=True, gridspec_kw={"height_ratios": [2.2, 1.4]}
    )
    ax.scatter(*pool, s=4, color="0.8", lw=0, rasterized=True, label=f"pool ({len(pool[0])})")
    ax.fill_between(grid, mean - 2 * total_std, mean + 2 * total_std, color="tab:blue",
                    alpha=0.15, lw=0, label="final model: mean ± 2 total std")  # fmt: skip
    ax.plot(grid, mean, color="tab:blue", lw=1.5)
    ax.scatter(*initial, s=22, color="k", marker="s", label=f"initial set ({len(initial[0])})")
    colours = plt.get_cmap("viridis")(np.linspace(0.0, 1.0, max(1, len(picks))))
    for r, (x, y) in enumerate(picks):
        ax.scatter(x, y, s=18, color=colours[r], edgecolor="k", lw=0.3,
                   label="picks, by round (dark: early)" if r == 0 else None)  # fmt: skip
    ax.set(ylabel=ylabel, title=title)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    h_total, h_aleatoric, h_epistemic = entropy
    ax_h.plot(grid, h_total, color="k", lw=1.5, label="total H[y|x]")
    ax_h.plot(grid, h_aleatoric, color="tab:blue", lw=1.5, label="aleatoric E_W H[y|W,x]")
    ax_h.plot(grid, h_epistemic, color="tab:orange", lw=1.5, label="epistemic I(y;W)")
    ax_h.set(xlabel=xlabel, ylabel="entropy (nats)",
             title="Final model's entropy decomposition; bars: picks per input bin")  # fmt: skip
    ax_h.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    if picks:
        ax_count = ax_h.twinx()
        ax_count.hist(np.concatenate([x for x, _ in picks]), bins=40, range=(grid[0], grid[-1]),
                      color="tab:green", alpha=0.3)  # fmt: skip
        ax_count.set_ylabel("picks per bin")
    save_figure(fig, path)


def plot_curves(
    curves: Mapping[str, tuple[np.ndarray, np.ndarray, np.ndarray]],
    ylabel: str,
    title: str,
    path: Path,
) -> None:
    """One line per label: curves[label] = (n_labelled, mean, standard error) [R] each; the band
    is mean ± 1 standard error (over seeds)."""
    fig, ax = plt.subplots(figsize=(7.5, 4.5))
    for label, (n, mean, se) in curves.items():
        (line,) = ax.plot(n, mean, marker="o", ms=3, label=label)
        ax.fill_between(n, mean - se, mean + se, color=line.get_color(), alpha=0.2, lw=0)
    ax.set(xlabel="labelled points", ylabel=ylabel, title=title)
    ax.legend(fontsize=8)
    save_figure(fig, path)
