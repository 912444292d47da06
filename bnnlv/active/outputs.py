"""What an active-learning run leaves when its last round is done: the final model's files
(as ``bnnlv train`` writes them), ``learning_curve.png``, ``acquired.png`` and the metrics.

``metrics.json`` holds the final model's figures (``val_nll``, ``test_nll``, … as for ``train``),
and over the rounds: ``test_nll_area`` and ``test_nll_area_standardised`` (the area under the
test-NLL curve per labelled point, :func:`bnnlv.active.curve.curve_area`), ``n_labelled``,
``rounds``, ``n_negative_epistemic`` (I(y; W) estimates below 0 among all rounds' candidates;
null when the acquisition does not estimate it), ``fit_seconds`` and ``score_seconds``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from omegaconf import DictConfig

from bnnlv.active.config import ActiveSettings
from bnnlv.active.curve import curve_area
from bnnlv.active.plots import plot_acquired, plot_learning_curve
from bnnlv.active.state import LoopState
from bnnlv.data.module import RegressionDataModule, Splits
from bnnlv.model.lit_module import BNNLV
from bnnlv.report.evaluate import grid_prediction
from bnnlv.runs.saved import score


def curve_metrics(rows: pd.DataFrame) -> dict[str, Any]:
    """The figures of metrics.json that summarise the rounds (see the module's docstring)."""
    negatives: list[float] = rows.get("n_negative_epistemic", pd.Series()).dropna().tolist()
    n_labelled = rows["n_labelled"].tolist()
    return {
        "test_nll_area": curve_area(n_labelled, rows["test_nll"].tolist()),
        "test_nll_area_standardised": curve_area(
            n_labelled, rows["test_nll_standardised"].tolist()
        ),
        "n_labelled": int(rows["n_labelled"].iloc[-1]),
        "rounds": len(rows) - 1,
        "n_negative_epistemic": int(sum(negatives)) if negatives else None,
        "fit_seconds": float(rows["fit_seconds"].sum()),
        "score_seconds": float(rows["score_seconds"].sum()) if "score_seconds" in rows else 0.0,
    }


def finish(
    cfg: DictConfig,
    settings: ActiveSettings,
    run_dir: Path,
    splits: Splits,
    state: LoopState,
    model: BNNLV,
    data: RegressionDataModule,
) -> dict[str, Any]:
    """Score the final model (predictions.csv and its plots), draw the run's figures, and
    return the metrics."""
    rows = pd.DataFrame(state.rows)
    metrics: dict[str, Any] = {"status": "ok", "acquisition": settings.acquisition}
    metrics |= score(model, data, run_dir, cfg.seed, bool(cfg.plots), cfg.get("interval"))
    metrics |= curve_metrics(rows)
    if cfg.plots:
        title = f"Active learning by {settings.acquisition} ({settings.batch}, {settings.retrain})"
        plot_learning_curve(
            rows["n_labelled"].to_numpy(), rows["test_nll"].to_numpy(),
            rows["test_rmse"].to_numpy(), title, run_dir / "learning_curve.png",
            metrics.get("test_oracle_nll"),
        )  # fmt: skip
        if splits.x_train.shape[1] == 1:
            _plot_acquired(model, data, splits, settings, state, title, run_dir / "acquired.png")
    return metrics


def _plot_acquired(
    model: BNNLV, data: RegressionDataModule, splits: Splits, settings: ActiveSettings,
    state: LoopState, title: str, path: Path,
) -> None:  # fmt: skip
    """acquired.png: the picks of every round over the pool and the final model (1-D input)."""
    x_pool, y_pool = splits.x_train[:, 0], splits.y_train[:, 0]
    on_grid = grid_prediction(model, data.scaler, x_pool)
    initial = np.asarray(state.labelled[: settings.init_size])
    picks = [
        np.array(str(row["acquired"]).split(), dtype=np.int64)
        for row in state.rows
        if isinstance(row.get("acquired"), str)
    ]
    plot_acquired(
        on_grid.grid, on_grid.mean, np.sqrt(on_grid.epistemic_var + on_grid.aleatoric_var),
        on_grid.entropy, (x_pool, y_pool), (x_pool[initial], y_pool[initial]),
        [(x_pool[p], y_pool[p]) for p in picks],
        (splits.feature_names[0], splits.target_names[0]), title, path,
    )  # fmt: skip
