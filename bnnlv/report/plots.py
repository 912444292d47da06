"""The PNG figures of a run: data, fit with uncertainty bands and entropies, training curves,
and the predictive diagnostics (calibration, std against error, sorted per-point NLL).

Every function takes arrays in ORIGINAL units and a path, draws one labelled figure, saves it at
100 dpi and closes it. Matplotlib runs headless (Agg).
"""

from __future__ import annotations

from pathlib import Path
from statistics import NormalDist

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

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
    entropy: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
) -> None:
    """Predictive mean, ±2σ total band split into its aleatoric and epistemic parts, and draws.

    grid, mean, *_std: [G]; samples: [n, G] draws y ~ p(y|x) showing multimodality if present.
    The inner band is ±2·aleatoric std; the outer band extends it to ±2·total std, so its width
    beyond the inner band is what the epistemic part adds. ``entropy`` = (H[y|x], E_W H[y|W,x],
    I(y;W)) [G] each, in nats, adds a third panel beside the Gaussian shortcut ½ log(2πe·Var).
    """
    total = np.sqrt(epistemic_std**2 + aleatoric_std**2)
    n_rows = 2 if entropy is None else 3
    fig, axes = plt.subplots(
        n_rows, 1, figsize=(10.5, 3.8 + 2.4 * (n_rows - 1)), sharex=True,
        gridspec_kw={"height_ratios": [3, 1.3, 1.3][:n_rows]},
    )  # fmt: skip
    ax, ax_std = axes[0], axes[1]
    legend = {"loc": "upper left", "bbox_to_anchor": (1.01, 1.0), "fontsize": 9}
    ax.fill_between(grid, mean - 2 * aleatoric_std, mean + 2 * aleatoric_std, color="tab:blue",
                    alpha=0.15, lw=0, label="±2σ aleatoric")  # fmt: skip
    for lower, upper in ((mean - 2 * total, mean - 2 * aleatoric_std),
                         (mean + 2 * aleatoric_std, mean + 2 * total)):  # fmt: skip
        ax.fill_between(grid, lower, upper, color="tab:orange", alpha=0.45, lw=0)
    ax.fill_between([], [], color="tab:orange", alpha=0.45, label="epistemic part of ±2σ total")
    ax.scatter(np.repeat(grid[None], len(samples), 0), samples, s=3, color="tab:green",
               alpha=0.35, lw=0, rasterized=True, label="samples y ~ p(y|x)")  # fmt: skip
    ax.scatter(x_train, y_train, s=7, color="k", alpha=0.6, lw=0, label="train data")
    ax.plot(grid, mean, color="tab:red", lw=1.8, label="predictive mean")
    ax.set(ylabel=ylabel, title="Predictive distribution")
    ax.legend(markerscale=2.5, **legend)
    ax_std.plot(grid, total, color="k", lw=1.5, label="total std")
    ax_std.plot(grid, aleatoric_std, color="tab:blue", lw=1.5, label="aleatoric std")
    ax_std.plot(grid, epistemic_std, color="tab:orange", lw=1.5, label="epistemic std")
    ax_std.set(ylabel=f"std of {ylabel}", title="Variance decomposition (law of total variance)")
    ax_std.legend(**legend)
    if entropy is not None:
        h_total, h_aleatoric, h_epistemic = entropy
        ax_h = axes[2]
        shortcut = 0.5 * np.log(2 * np.pi * np.e * total**2)
        ax_h.plot(grid, h_total, color="k", lw=1.5, label="total H[y|x]")
        ax_h.plot(grid, h_aleatoric, color="tab:blue", lw=1.5, label="aleatoric E_W H[y|W,x]")
        ax_h.plot(grid, h_epistemic, color="tab:orange", lw=1.5, label="epistemic I(y;W)")
        ax_h.plot(grid, shortcut, color="0.4", lw=1.2, ls="--", label="shortcut ½log(2πe·Var)")
        ax_h.set(ylabel="entropy (nats)", title="Entropy decomposition (exact mixture, MC)")
        ax_h.legend(**legend)
    lo, hi = x_train.min(), x_train.max()
    for a in axes:
        a.axvspan(grid.min(), lo, color="0.9", zorder=0)
        a.axvspan(hi, grid.max(), color="0.9", zorder=0)
    axes[-1].set(xlabel=f"{xlabel}  (grey: outside the training range)")
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


def plot_diagnostics(
    y: np.ndarray,
    mean: np.ndarray,
    std: np.ndarray,
    nll: np.ndarray,
    target_names: list[str],
    path: Path,
    oracle_nll: np.ndarray | None = None,
) -> None:
    """Calibration curve, |error| against predicted std, and the test NLL per point, sorted.

    y, mean, std: [B, D] (one curve / colour per output); nll, oracle_nll: [B] joint over
    outputs. Calibration uses the central intervals mean ± std·Φ⁻¹((1+p)/2) of a Gaussian with
    the predictive's mean and std (as the miscalibration metric does): observed fraction inside
    against p. Works for any input dimension.
    """
    fig, (ax_cal, ax_err, ax_nll) = plt.subplots(1, 3, figsize=(13, 4))
    expected = np.linspace(0.0, 1.0, 51)
    inv_cdf = NormalDist().inv_cdf
    half_width = np.array([inv_cdf(min(0.5 + p / 2, 1 - 1e-12)) for p in expected])  # [P] in stds
    z = np.abs(y - mean) / np.maximum(std, 1e-12)  # [B, D]
    ax_cal.plot([0, 1], [0, 1], "k--", lw=1, label="ideal")
    for d, name in enumerate(target_names):
        observed = (z[:, d, None] <= half_width).mean(axis=0)  # [P]
        gap = np.abs(observed - expected)
        area = float(np.sum((gap[1:] + gap[:-1]) / 2 * np.diff(expected)))  # trapezoid rule
        ax_cal.plot(expected, observed, lw=1.8, label=f"{name} (miscal. area {area:.3f})")
        ax_err.scatter(std[:, d], np.abs(y[:, d] - mean[:, d]), s=10, alpha=0.6, label=name)
    ax_cal.set(xlabel="expected fraction in central interval", ylabel="observed fraction",
               title="Calibration (Gaussian intervals)", xlim=(0, 1), ylim=(0, 1))  # fmt: skip
    ax_cal.legend(fontsize=8, loc="upper left")
    top = float(max(std.max(), 1e-12))
    ax_err.plot([0, top], [0, top], "k--", lw=1, label="|error| = σ")
    ax_err.plot([0, top], [0, 2 * top], "k:", lw=1, label="|error| = 2σ")
    ax_err.set(xlabel="predicted std", ylabel="|error|", title="Error against predicted std")
    ax_err.legend(fontsize=8, loc="upper left")
    rank = np.arange(1, len(nll) + 1)
    ax_nll.plot(rank, np.sort(nll), lw=1.8, label=f"model (mean {nll.mean():.3f})")
    if oracle_nll is not None:
        ax_nll.plot(rank, np.sort(oracle_nll), lw=1.2, ls="--", color="k",
                    label=f"true generator (mean {oracle_nll.mean():.3f})")  # fmt: skip
    ax_nll.set(xlabel="test points, sorted by NLL", ylabel="NLL per point (nats)",
               title="Test NLL per point, sorted")  # fmt: skip
    ax_nll.legend(fontsize=8, loc="upper left")
    _save(fig, path)
