"""The PNG figures of a run: data, fit with uncertainty bands and entropies, training curves,
and the predictive diagnostics (calibration, std against error, sorted per-point NLL).

Every function takes arrays in ORIGINAL units and a path, draws one labelled figure, saves it at
100 dpi and closes it. Matplotlib runs headless (Agg).
"""

from __future__ import annotations

import math
from functools import partial
from pathlib import Path
from statistics import NormalDist

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib import ticker
from matplotlib.axis import Axis

from bnnlv.report.files import atomic_write

DPI = 100


def log_axis(axis: Axis, low: float, high: float) -> None:
    """Put ``axis`` (``ax.xaxis`` or ``ax.yaxis``) on a log scale labelled with plain numbers at
    1, 2 and 5 × 10^k (only at 10^k beyond two decades) and never at the minor ticks, whose
    default labels crowd and overlap on an axis spanning a decade or two."""
    axis.axes.set_xscale("log") if axis is axis.axes.xaxis else axis.axes.set_yscale("log")
    subs = (1.0, 2.0, 5.0) if math.log10(high / low) <= 2 else (1.0,)
    axis.set_major_locator(ticker.LogLocator(base=10, subs=subs))
    axis.set_major_formatter(ticker.FuncFormatter(lambda value, _: f"{value:g}"))
    axis.set_minor_formatter(ticker.NullFormatter())


def save_figure(fig: plt.Figure, path: Path, dpi: int = DPI) -> None:
    """Lay out, write at ``dpi`` (whole or not at all: bnnlv.report.files) and close."""
    try:
        fig.tight_layout()
        image_format = path.suffix.lstrip(".") or "png"
        atomic_write(path, partial(fig.savefig, dpi=dpi, format=image_format), mode="wb")
    finally:
        plt.close(fig)


def plot_data(
    splits: tuple[tuple[np.ndarray, np.ndarray], ...], xlabel: str, ylabel: str, path: Path
) -> None:
    """Scatter of the training, validation and test points, ``splits`` = ((x, y) [n] each) in
    that order (1-D input, one target; original units)."""
    fig, ax = plt.subplots(figsize=(7, 4))
    styles = (("training", "o", 8, 0.5), ("validation", "s", 12, 0.8), ("test", "x", 12, 0.8))
    for (x, y), (name, marker, size, alpha) in zip(splits, styles, strict=True):
        ax.scatter(x, y, s=size, alpha=alpha, marker=marker, label=f"{name} ({len(x)})")
    ax.set(xlabel=xlabel, ylabel=ylabel, title="Data: training, validation and test points")
    ax.legend()
    save_figure(fig, path)


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
    save_figure(fig, path)


# the log's columns: panel title, y label (the log is in STANDARDISED target units)
CURVES = {
    "train/energy_per_point": ("Training objective: α-energy per point", "nats per point"),
    "train/rmse": ("Training RMSE", "RMSE"),
    "val/nll": ("Validation NLL", "nats per point"),
}


def plot_training_curves(
    log_csv: Path, path: Path, log_y_scale: float | None = None, y_scale: float | None = None
) -> None:
    """Energy per point, training RMSE and (when logged) validation NLL against epoch.

    The log is in standardised target units (y − mean) / std; the y labels say so. A right-hand
    axis gives the original units where one number converts: NLL_orig = NLL_std + Σ_d log s_y,d
    (``log_y_scale``, the value metrics.json's ``val_nll`` is on) and, for one target,
    RMSE_orig = s_y · RMSE_std (``y_scale``).
    """
    log = pd.read_csv(log_csv)
    columns = [c for c in CURVES if c in log]
    fig, axes = plt.subplots(1, len(columns), figsize=(4.6 * len(columns), 3.6), squeeze=False)
    for ax, column in zip(axes[0], columns, strict=True):
        series = log[["epoch", column]].dropna()
        title, unit = CURVES[column]
        ax.plot(series["epoch"], series[column], marker="." if len(series) < 40 else None)
        ax.set(xlabel="epoch", ylabel=f"{unit} (standardised y)", title=title)
        if column == "train/energy_per_point" and (series[column] > 0).all():
            log_axis(ax.yaxis, series[column].min(), series[column].max())
        shift = log_y_scale if column == "val/nll" else None
        scale = y_scale if column == "train/rmse" else None
        # the conversions are bound now: the axes call them when the figure is drawn
        if shift is not None:
            both_ways = (partial(np.add, shift), partial(np.add, -shift))
            right = ax.secondary_yaxis("right", functions=both_ways)
            right.set_ylabel(f"{unit} (original units, as metrics.json)")
        elif scale is not None:
            both_ways = (partial(np.multiply, scale), partial(np.multiply, 1 / scale))
            right = ax.secondary_yaxis("right", functions=both_ways)
            right.set_ylabel(f"{unit} (original units)")
    save_figure(fig, path)


def plot_predicted_vs_true(
    y: np.ndarray, mean: np.ndarray, bounds: np.ndarray, level: float,
    target_names: list[str], path: Path,
) -> None:  # fmt: skip
    """The fit of a model with any number of inputs: predictive mean against the true target per
    test point, with the mixture's central ``level`` interval, one panel per target.

    y, mean: [B, D]; bounds: [2, B, D] lower and upper quantiles (original units). A point whose
    interval misses the diagonal y = x is drawn in red; the legend gives the share inside.
    """
    n_out = len(target_names)
    fig, axes = plt.subplots(1, n_out, figsize=(5.0 * n_out, 4.6), squeeze=False)
    for d, (ax, name) in enumerate(zip(axes[0], target_names, strict=True)):
        lower, upper = bounds[0][:, d], bounds[1][:, d]
        inside = (lower <= y[:, d]) & (y[:, d] <= upper)
        shade = float(np.clip(40 / len(y), 0.08, 0.4))  # many intervals: fainter lines
        for mask, colour, label in ((inside, "tab:blue", "true value inside"),
                                    (~inside, "tab:red", "true value outside")):  # fmt: skip
            ax.vlines(y[mask, d], lower[mask], upper[mask], color=colour, alpha=shade, lw=1)
            ax.scatter(y[mask, d], mean[mask, d], s=10, color=colour,
                       label=f"{label} the interval ({mask.mean():.0%})")  # fmt: skip
        ends = [min(y[:, d].min(), lower.min()), max(y[:, d].max(), upper.max())]
        ax.plot(ends, ends, "k--", lw=1, label="predicted = true")
        ax.set(xlabel=f"true {name}",
               ylabel=f"predicted {name}: mean and {level * 100:g} % interval",
               title=f"{name}: predicted against true (test points)")  # fmt: skip
        ax.legend(fontsize=8, loc="upper left")
    save_figure(fig, path)


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
    save_figure(fig, path)
