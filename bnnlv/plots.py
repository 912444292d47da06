"""The PNG figures of a run: data, fit with uncertainty bands, training curves, calibration.

Every function takes arrays in ORIGINAL units and a path, draws one labelled figure, saves it at
100 dpi and closes it. Matplotlib runs headless (Agg).
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import uncertainty_toolbox as uct

DPI = 100


def _save(fig: plt.Figure, path: Path) -> None:
    fig.tight_layout()
    fig.savefig(path, dpi=DPI)
    plt.close(fig)


def plot_data(
    x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray, y_test: np.ndarray,
    xlabel: str, ylabel: str, path: Path,
) -> None:  # fmt: skip
    """Scatter of train and test points (1-D input, one target)."""
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.scatter(x_train, y_train, s=8, alpha=0.6, label=f"train ({len(x_train)})")
    ax.scatter(x_test, y_test, s=10, alpha=0.8, marker="x", label=f"test ({len(x_test)})")
    ax.set(xlabel=xlabel, ylabel=ylabel, title="Data")
    ax.legend()
    _save(fig, path)


def plot_fit(
    grid: np.ndarray,
    mean: np.ndarray,
    epistemic_std: np.ndarray,
    aleatoric_std: np.ndarray,
    samples: np.ndarray,
    x_train: np.ndarray,
    y_train: np.ndarray,
    xlabel: str,
    ylabel: str,
    path: Path,
) -> None:
    """Predictive mean, ±2σ total band split into its aleatoric and epistemic parts, and draws.

    grid, mean, *_std: [G]; samples: [n, G] draws y ~ p(y|x) showing multimodality if present.
    The inner band is ±2·aleatoric std; the outer band extends it to ±2·total std, so its width
    beyond the inner band is what the epistemic part adds.
    """
    total = np.sqrt(epistemic_std**2 + aleatoric_std**2)
    fig, (ax, ax_std) = plt.subplots(
        2, 1, figsize=(8, 6.5), sharex=True, gridspec_kw={"height_ratios": [3, 1.3]}
    )
    ax.fill_between(grid, mean - 2 * total, mean + 2 * total, color="tab:orange", alpha=0.25,
                    label="±2σ total (epistemic adds the outer part)")  # fmt: skip
    ax.fill_between(grid, mean - 2 * aleatoric_std, mean + 2 * aleatoric_std, color="tab:blue",
                    alpha=0.25, label="±2σ aleatoric")  # fmt: skip
    ax.scatter(np.repeat(grid[None], len(samples), 0), samples, s=1, color="0.3", alpha=0.08,
               rasterized=True, label="predictive samples")  # fmt: skip
    ax.scatter(x_train, y_train, s=6, color="k", alpha=0.5, label="train data")
    ax.plot(grid, mean, color="tab:red", lw=1.8, label="predictive mean")
    ax.set(ylabel=ylabel, title="Predictive distribution")
    ax.legend(loc="upper left", fontsize=8, framealpha=0.9)
    ax_std.plot(grid, total, color="k", lw=1.5, label="total std")
    ax_std.plot(grid, aleatoric_std, color="tab:blue", lw=1.5, label="aleatoric std")
    ax_std.plot(grid, epistemic_std, color="tab:orange", lw=1.5, label="epistemic std")
    lo, hi = x_train.min(), x_train.max()
    for a in (ax, ax_std):
        a.axvspan(grid.min(), lo, color="0.9", zorder=0)
        a.axvspan(hi, grid.max(), color="0.9", zorder=0)
    ax_std.set(xlabel=f"{xlabel}  (grey: outside the training range)", ylabel="std")
    ax_std.legend(loc="upper left", fontsize=8, ncol=3)
    _save(fig, path)


def plot_training_curves(log_csv: Path, path: Path) -> None:
    """Energy per point, train RMSE and (when logged) validation NLL against epoch."""
    log = pd.read_csv(log_csv)
    columns = [c for c in ("train/energy_per_point", "train/rmse", "val/nll") if c in log]
    fig, axes = plt.subplots(1, len(columns), figsize=(4.2 * len(columns), 3.4), squeeze=False)
    for ax, column in zip(axes[0], columns, strict=True):
        series = log[["epoch", column]].dropna()
        ax.plot(series["epoch"], series[column], marker="." if len(series) < 40 else None)
        ax.set(xlabel="epoch", title=column)
        if column == "train/energy_per_point" and (series[column] > 0).all():
            ax.set_yscale("log")
    _save(fig, path)


def plot_calibration(y: np.ndarray, mean: np.ndarray, std: np.ndarray, path: Path) -> None:
    """uncertainty-toolbox calibration curve (first output) and |error| against predicted std."""
    fig, (ax_cal, ax_err) = plt.subplots(1, 2, figsize=(9, 4))
    uct.plot_calibration(mean[:, 0], std[:, 0], y[:, 0], ax=ax_cal)
    ax_err.scatter(std[:, 0], np.abs(y[:, 0] - mean[:, 0]), s=8, alpha=0.6)
    top = float(max(std[:, 0].max(), 1e-12))
    ax_err.plot([0, top], [0, top], "k--", lw=1, label="|error| = σ")
    ax_err.set(xlabel="predicted std", ylabel="|error|", title="Error against predicted std")
    ax_err.legend()
    _save(fig, path)
