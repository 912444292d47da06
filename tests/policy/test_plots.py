from __future__ import annotations

from pathlib import Path

import pandas as pd

from bnnlv.policy.network import Policy
from bnnlv.policy.plots import RISK_RETURN_FILE, plot_policy, plot_risk_return
from bnnlv.runs.sweep import Summary


def test_policy_png(tmp_path: Path, policy: Policy) -> None:
    rows = [{"epoch": e, "model_cost": 15.0 - e, "true_reward": -3.0 + 0.1 * e} for e in range(3)]
    metrics = {"upper_bound_true_reward": -2.3, "random_true_reward": -3.9}
    plot_policy(policy, rows, metrics, 5, tmp_path / "policy.png")
    assert (tmp_path / "policy.png").stat().st_size > 10_000


def summary_of(settings: pd.DataFrame) -> Summary:
    return Summary(pd.DataFrame(), settings, ["policy.beta"], {})


def test_risk_return_plot_per_setting(tmp_path: Path) -> None:
    settings = pd.DataFrame({
        "policy.beta": [0.0, 1.0], "true_reward_mean": [-2.3, -2.4], "true_reward_se": [0.01, None],
        "model_sigma_e_mean": [0.3, 0.2], "model_sigma_e_se": [0.01, 0.02],
        "model_sigma_a_mean": [4.3, 4.1], "model_sigma_a_se": [0.1, 0.1],
    })  # fmt: skip
    assert plot_risk_return(summary_of(settings), ["policy.beta"], tmp_path) == RISK_RETURN_FILE
    assert (tmp_path / RISK_RETURN_FILE).stat().st_size > 10_000


def test_no_risk_return_plot_without_the_metrics(tmp_path: Path) -> None:
    settings = pd.DataFrame({"alpha": [0.5], "test_nll_mean": [1.0], "test_nll_se": [0.1]})
    assert plot_risk_return(summary_of(settings), ["alpha"], tmp_path) is None
    assert not (tmp_path / RISK_RETURN_FILE).exists()
