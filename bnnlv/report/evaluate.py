"""Test-set evaluation of a trained model: metrics, predictions.csv and plots, in original units."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd
import torch
from torch import Tensor

from bnnlv.data.module import RegressionDataModule, Splits, Standardiser
from bnnlv.model.lit_module import BNNLV
from bnnlv.model.predictive import Moments, Prediction
from bnnlv.model.quantiles import central_probs
from bnnlv.report import plots
from bnnlv.report.metrics import regression_metrics

GRID_POINTS = 200  # the fit figure's grid: 0.07 raw units apart on the default data
GRID_MARGIN = 0.1  # the fit plot's grid extends 10 % of the data range beyond each side
FIT_SAMPLES = 30
# Components drawn per point for the entropy decomposition (bnnlv.model.entropy), 3 points y each:
# per-point std ≈ 0.02 nats (total), ≈ 0.005 (epistemic); ≈ 0.3 s for 560 points at M·L = 1000.
ENTROPY_DRAWS = 16
PLOT_INTERVAL = 0.9  # the interval fit.png draws for inputs of several dimensions, if none is set


def original_units(
    moments: Moments, scaler: Standardiser
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(mean, epistemic variance, aleatoric variance) [B, D] in the targets' original units."""
    y_var = scaler.y_std**2
    return (
        scaler.y_inverse(moments.mean.cpu().numpy()),
        moments.epistemic_var.cpu().numpy() * y_var,
        moments.aleatoric_var.cpu().numpy() * y_var,
    )


def interval_columns(level: float) -> tuple[str, str]:
    """Names of the bounds of the central ``level`` interval: q + the probability's decimal
    digits, at least two: 0.9 → (q05, q95), 0.95 → (q025, q975), 0.8 → (q10, q90)."""
    names = []
    for p in central_probs(level):
        digits = f"{p:.10f}".split(".")[1].rstrip("0")
        names.append("q" + digits.ljust(2, "0"))
    return names[0], names[1]


def interval_bounds(pred: Prediction, scaler: Standardiser) -> np.ndarray | None:
    """The predictive's quantiles [P, B, D] in the targets' original units (None if absent)."""
    if pred.quantiles is None:
        return None
    return scaler.y_inverse(pred.quantiles.cpu().numpy())


def uncertainty_columns(
    mean: np.ndarray, epistemic: np.ndarray, aleatoric: np.ndarray, target_names: Sequence[str],
    interval: float | None = None, bounds: np.ndarray | None = None,
) -> dict[str, np.ndarray]:  # fmt: skip
    """Columns mean, std, epistemic_std, aleatoric_std per target (std² = epistemic² +
    aleatoric²) and, with an ``interval`` level, the bounds [2, B, D] of the mixture's central
    interval (:func:`interval_columns`); suffixed ``_<target>`` when there are several targets."""
    columns: dict[str, np.ndarray] = {}
    for d, name in enumerate(target_names):
        suffix = "" if len(target_names) == 1 else f"_{name}"
        columns[f"mean{suffix}"] = mean[:, d]
        columns[f"std{suffix}"] = np.sqrt(epistemic[:, d] + aleatoric[:, d])
        columns[f"epistemic_std{suffix}"] = np.sqrt(epistemic[:, d])
        columns[f"aleatoric_std{suffix}"] = np.sqrt(aleatoric[:, d])
        if interval is not None and bounds is not None:
            for column, bound in zip(interval_columns(interval), bounds, strict=True):
                columns[f"{column}{suffix}"] = bound[:, d]
    return columns


class Evaluation(NamedTuple):
    """What scoring a model on the test split gives: the metrics and the per-point table."""

    metrics: dict[str, float]
    predictions: pd.DataFrame  # one row per test point: row, inputs, targets, predictive, nll


def evaluate(
    model: BNNLV, data: RegressionDataModule, run_dir: Path, make_plots: bool = True,
    interval: float | None = None, generator: torch.Generator | None = None,
) -> Evaluation:  # fmt: skip
    """Predict the test split and draw the plots into ``run_dir``; return the metrics and the
    predictions table (the caller writes it, as ``predictions.csv``). ``interval``: the level of
    the central interval taken from the mixture (columns :func:`interval_columns`, and the
    metric ``test_interval_coverage``); None for none. Every Monte Carlo draw, the plots' too,
    comes from ``generator`` (None: torch's global generator)."""
    model.eval()
    device = model.device
    splits, scaler = data.splits, data.scaler
    x_test, y_test = (t.to(device) for t in data.tensors("test"))
    level = interval if interval is not None else PLOT_INTERVAL  # the plots show one anyway
    probs = central_probs(level)
    pred = model.predict(x_test, y_test, entropy_draws=ENTROPY_DRAWS, generator=generator,
                         quantile_probs=probs)  # fmt: skip
    assert pred.log_density is not None and pred.log_density_per_output is not None
    assert pred.entropy is not None
    y_std = scaler.y_std
    mean, epistemic, aleatoric = original_units(pred.moments, scaler)
    bounds = interval_bounds(pred, scaler)  # [2, B, D]
    assert bounds is not None
    std = np.sqrt(epistemic + aleatoric)
    oracle_nll = None
    metrics = regression_metrics(
        splits.y_test, mean, std,
        pred.log_density.cpu().numpy(), pred.log_density_per_output.cpu().numpy(),
        y_std, list(splits.target_names),
    )  # fmt: skip
    if interval is not None:
        inside = (bounds[0] <= splits.y_test) & (splits.y_test <= bounds[1])  # [B, D]
        metrics["test_interval_coverage"] = float(inside.mean())
    if splits.oracle_log_density is not None:
        oracle = splits.oracle_log_density(splits.x_test, splits.y_test)
        oracle_nll = -oracle
        metrics["test_oracle_nll"] = float(-oracle.mean())
        metrics["test_oracle_nll_standardised"] = float(-oracle.mean() - np.log(y_std).sum())

    columns: dict[str, np.ndarray] = {"row": source_rows(splits)}
    for d, name in enumerate(splits.feature_names):
        columns[name] = splits.x_test[:, d]
    for d, name in enumerate(splits.target_names):
        columns[name] = splits.y_test[:, d]
    columns |= uncertainty_columns(mean, epistemic, aleatoric, splits.target_names, interval,
                                   bounds)  # fmt: skip
    for d in range(len(splits.target_names)):
        suffix = "" if len(splits.target_names) == 1 else f"_{splits.target_names[d]}"
        # nats, original units: differential entropy shifts by log s_y, I(y; W) does not
        for part, shift in (("total", 1.0), ("aleatoric", 1.0), ("epistemic", 0.0)):
            value = getattr(pred.entropy, part)[:, d].cpu().numpy() + shift * np.log(y_std[d])
            columns[f"entropy_{part}{suffix}"] = value
    columns["nll"] = -(pred.log_density.cpu().numpy() - np.log(y_std).sum())
    if make_plots:
        _plot_run(model, data, run_dir, mean, std, columns["nll"], oracle_nll, generator)
        if splits.x_test.shape[1] != 1:  # a 1-D input's fit is drawn on a grid instead
            fit_png = run_dir / "fit.png"
            plots.plot_predicted_vs_true(splits.y_test, mean, bounds, level,
                                         list(splits.target_names), fit_png)  # fmt: skip
    return Evaluation(metrics, pd.DataFrame(columns))


def source_rows(splits: Splits) -> np.ndarray:
    """The source row of each test point (:attr:`Splits.test_rows`; 0, 1, … when not given)."""
    if splits.test_rows is None:
        return np.arange(splits.x_test.shape[0])
    return np.asarray(splits.test_rows)


class GridPrediction(NamedTuple):
    """The predictive of the first target on a grid of a 1-D input, original units."""

    grid: np.ndarray  # [G] raw input
    x_grid: Tensor  # [G, 1] standardised, on the model's device
    mean: np.ndarray  # [G]
    epistemic_var: np.ndarray  # [G]
    aleatoric_var: np.ndarray  # [G]
    entropy: tuple[np.ndarray, np.ndarray, np.ndarray]  # H[y|x], E_W H[y|W,x], I(y;W) nats [G]


def grid_prediction(
    model: BNNLV, scaler: Standardiser, x_data: np.ndarray, generator: torch.Generator | None = None
) -> GridPrediction:
    """The predictive on GRID_POINTS inputs spanning ``x_data`` [n] (raw) and GRID_MARGIN of its
    range beyond each side, with the entropy decomposition (``generator``: its draws)."""
    lo, hi = x_data.min(), x_data.max()
    pad = GRID_MARGIN * (hi - lo)
    grid = np.linspace(lo - pad, hi + pad, GRID_POINTS)
    x_grid = torch.as_tensor(scaler.x(grid[:, None]), dtype=torch.float32, device=model.device)
    pred = model.predict(x_grid, entropy_draws=ENTROPY_DRAWS, generator=generator)
    assert pred.entropy is not None
    mean, epistemic, aleatoric = original_units(pred.moments, scaler)
    log_scale = float(np.log(scaler.y_std[0]))
    entropy = (pred.entropy.total.cpu().numpy()[:, 0] + log_scale,
               pred.entropy.aleatoric.cpu().numpy()[:, 0] + log_scale,
               pred.entropy.epistemic.cpu().numpy()[:, 0])  # fmt: skip
    return GridPrediction(grid, x_grid, mean[:, 0], epistemic[:, 0], aleatoric[:, 0], entropy)


def _plot_run(
    model: BNNLV, data: RegressionDataModule, run_dir: Path, mean: np.ndarray, std: np.ndarray,
    nll: np.ndarray, oracle_nll: np.ndarray | None, generator: torch.Generator | None,
) -> None:  # fmt: skip
    splits, scaler = data.splits, data.scaler
    plots.plot_diagnostics(splits.y_test, mean, std, nll, list(splits.target_names),
                           run_dir / "diagnostics.png", oracle_nll)  # fmt: skip
    log_csv = run_dir / "logs" / "metrics.csv"
    if log_csv.is_file():
        one_target = float(scaler.y_std[0]) if len(scaler.y_std) == 1 else None
        plots.plot_training_curves(log_csv, run_dir / "training_curves.png",
                                   float(np.log(scaler.y_std).sum()), one_target)  # fmt: skip
    if splits.x_train.shape[1] != 1:
        return
    xlabel, ylabel = splits.feature_names[0], splits.target_names[0]
    plots.plot_data(tuple((getattr(splits, f"x_{s}")[:, 0], getattr(splits, f"y_{s}")[:, 0])
                          for s in ("train", "val", "test")),
                    xlabel, ylabel, run_dir / "data.png")  # fmt: skip
    on_grid = grid_prediction(model, scaler, splits.x_train[:, 0], generator)
    grid, x_grid = on_grid.grid, on_grid.x_grid
    f, noise_var = model.components(x_grid, FIT_SAMPLES, 1, generator)  # [n, 1, G, D]
    eps = torch.randn(f[:, 0, :, 0].shape, generator=generator, device=f.device, dtype=f.dtype)
    samples = f[:, 0, :, 0] + noise_var[:, 0, :, 0].sqrt() * eps  # one z per weight draw
    plots.plot_fit(
        grid,
        on_grid.mean,
        np.sqrt(on_grid.epistemic_var),
        np.sqrt(on_grid.aleatoric_var),
        scaler.y_inverse(samples.cpu().numpy()[..., None])[..., 0],
        splits.x_train[:, 0], splits.y_train[:, 0], xlabel, ylabel, run_dir / "fit.png",
        on_grid.entropy,
    )  # fmt: skip
