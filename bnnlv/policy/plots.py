"""Figures of policy search: one run's ``policy.png`` and a sweep's risk–return plot."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import torch

from bnnlv.data.wet_chicken import LENGTH, WIDTH
from bnnlv.policy.network import Policy
from bnnlv.report.plots import save_figure
from bnnlv.runs.sweep import Summary

GRID = 15  # arrows per side of the action field
RISK_RETURN_FILE = "risk_return.png"


def plot_policy(
    policy: Policy,
    rows: Sequence[Mapping[str, float]],
    metrics: Mapping[str, Any],
    horizon: int,
    path: Path,
) -> None:
    """Left: the action (a_x, a_y) at each point of the river (the waterfall at the top).
    Right: per epoch, the reward per step the model predicts, −E[C]/T, against the true
    system's (monitor protocol), with the random policy and the upper bound for reference."""
    fig, (field, trace) = plt.subplots(1, 2, figsize=(11, 4.6))
    x, y = np.meshgrid(np.linspace(0, WIDTH, GRID), np.linspace(0, LENGTH, GRID))
    states = np.stack([x.ravel(), y.ravel()], axis=1)
    with torch.no_grad():
        actions = policy(torch.as_tensor(states, dtype=torch.float32)).numpy()
    arrows = field.quiver(states[:, 0], states[:, 1], actions[:, 0], actions[:, 1],
                          actions[:, 1], cmap="coolwarm", clim=(-1, 1), angles="xy",
                          scale_units="xy", scale=3.0)  # fmt: skip
    fig.colorbar(arrows, ax=field, label="a_y (−1: paddle upstream, +1: downstream)")
    field.axhline(LENGTH, color="tab:blue", linewidth=3, label="waterfall (y = l)")
    field.set(xlim=(-0.3, WIDTH + 0.3), ylim=(-0.3, LENGTH + 0.5),
              xlabel="x, across the river (river units; drift grows with x)",
              ylabel="y, downstream (river units)",
              title="Policy actions over the river")  # fmt: skip
    field.legend(loc="lower right", fontsize="small")
    model = [-row["model_cost"] / horizon for row in rows]
    true = [row["true_reward"] for row in rows]
    epochs = [row["epoch"] for row in rows]
    trace.plot(epochs, model, marker=".", label="under the model, −E[C]/T (training batches)")
    trace.plot(epochs, true, marker=".", label="on the true system (monitor episodes)")
    references = (("upper_bound_true_reward", "upper bound (true system)", "--"),
                  ("random_true_reward", "random policy (true system)", ":"))  # fmt: skip
    for key, label, style in references:
        if metrics.get(key) is not None:
            trace.axhline(metrics[key], color="grey", linestyle=style, label=label)
    trace.set(xlabel="epoch", ylabel="average reward per step, −(l − y')",
              title="Reward the model promises against the true system's")  # fmt: skip
    trace.legend(fontsize="small")
    save_figure(fig, path, dpi=90)


def plot_risk_return(summary: Summary, keys: list[str], sweep_dir: Path) -> str | None:
    """Per setting of a policy sweep: the true reward (mean ± s.e. over seeds) against the
    model's σ_e and against its σ_a, each point labelled with its setting. Writes
    ``risk_return.png``; None when the jobs have no such metrics."""
    settings = summary.settings
    needed = ("true_reward_mean", "model_sigma_e_mean", "model_sigma_a_mean")
    if not all(column in settings.columns for column in needed):
        return None
    fig, axes = plt.subplots(1, 2, figsize=(10, 4.2), sharey=True)
    for ax, risk, name in zip(axes, ("model_sigma_e", "model_sigma_a"),
                              ("epistemic σ_e", "aleatoric σ_a"), strict=True):  # fmt: skip
        ax.errorbar(settings[f"{risk}_mean"], settings["true_reward_mean"],
                    xerr=settings[f"{risk}_se"].fillna(0.0),
                    yerr=settings["true_reward_se"].fillna(0.0), fmt="o", capsize=3)  # fmt: skip
        for _, row in settings.iterrows():
            label = ", ".join(f"{k}={row[k]}" for k in keys) or "all jobs"
            x, y = row[f"{risk}_mean"], row["true_reward_mean"]
            if not (math.isnan(x) or math.isnan(y)):
                ax.annotate(label, (x, y), fontsize="x-small", xytext=(3, 3),
                            textcoords="offset points")  # fmt: skip
        ax.set(xlabel=f"{name} of the summed cost under the model (cost units)",
               title=f"Return against {name}")  # fmt: skip
    axes[0].set_ylabel("true average reward per step (mean ± s.e. over seeds)")
    save_figure(fig, sweep_dir / RISK_RETURN_FILE, dpi=90)
    return RISK_RETURN_FILE
