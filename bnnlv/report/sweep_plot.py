"""The figure of a sweep's summary (``summary.png``): each plotted metric against each swept key.

One row of panels per metric (by default the validation NLL, which ``hparams_search=optuna``
minimises, above the test NLL), one column per swept key. A point is a setting: the mean over its
ok jobs, with ± one standard error when a setting has more than one seed. Keys whose values span
a factor of 20 or more get a log axis (:func:`bnnlv.report.plots.log_axis`).
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from bnnlv.report import plots

# the y label of a known metric (every NLL here is in the targets' original units)
METRIC_LABELS = {
    "val_nll": "validation NLL (nats per point)",
    "test_nll": "test NLL (nats per point)",
    "test_rmse": "test RMSE",
    "test_crps": "test CRPS",
}
LOG_AXIS_RATIO = 20  # values spanning max/min ≥ this get a log axis
MAX_LINES = 6  # with two swept keys: one line per value of the other key, up to this many


def axis_values(column: pd.Series) -> tuple[np.ndarray, list[str] | None]:
    """Numeric x positions of a setting column, and tick labels when it is not numeric."""
    numeric = pd.to_numeric(column, errors="coerce")
    if numeric.notna().all():
        return numeric.to_numpy(dtype=np.float64), None
    labels = list(dict.fromkeys(column.astype(str)))
    return column.astype(str).map(labels.index).to_numpy(dtype=np.float64), labels


def plot_sweep(settings: pd.DataFrame, keys: list[str], metrics: list[str], path: Path) -> None:
    """``metrics`` (rows) against each swept key (columns) from the per-setting table of
    :func:`bnnlv.runs.sweep.aggregate` (``n_ok``, ``<metric>_mean``, ``<metric>_se``). With
    two swept keys, one line per value of the other key; no swept key: one point for the sweep."""
    panels = keys or ["all jobs"]
    fig, axes = plt.subplots(len(metrics), len(panels), squeeze=False,
                             figsize=(4.6 * len(panels), 3.4 * len(metrics)))  # fmt: skip
    replicated = bool((settings["n_ok"] > 1).any())
    for row, metric in enumerate(metrics):
        mean = settings[f"{metric}_mean"]
        se = settings[f"{metric}_se"].fillna(0.0) if replicated else None
        for ax, key in zip(axes[row], panels, strict=True):
            column = settings[key] if keys else pd.Series(["all"] * len(settings))
            x, labels = axis_values(column)
            others = [k for k in keys if k != key]
            split = len(others) == 1 and settings[others[0]].nunique() <= MAX_LINES
            groups = settings.groupby(others[0], sort=False) if split else [("", settings)]
            for value, group in groups:
                rows = group.index[np.argsort(x[group.index], kind="stable")]
                ax.errorbar(x[rows], mean[rows], yerr=None if se is None else se[rows],
                            marker="o", capsize=3, label=f"{others[0]}={value}" if split else None,
                            linestyle="-" if len(keys) == 1 or split else "none")  # fmt: skip
            if labels is not None:
                ax.set_xticks(range(len(labels)), labels, rotation=30 if len(labels) > 4 else 0)
            elif (x > 0).all() and x.max() / x.min() >= LOG_AXIS_RATIO:
                plots.log_axis(ax.xaxis, x.min(), x.max())
            ax.set(xlabel=key, ylabel=METRIC_LABELS.get(metric, metric))
            if split:
                ax.legend(fontsize="small")
    if replicated:
        title = "Each point: mean ± standard error over the seeds of one setting (ok jobs only)"
    else:
        title = "Each point: one job (one seed per setting, so no error bars)"
    if "val_nll" in metrics:
        title += "\nthe validation NLL is what hparams_search=optuna minimises"
    fig.suptitle(title)
    plots.save_figure(fig, path)
