"""``bnnlv policy`` through the command line: a run, its files and metrics, reuse of a finished
model run, one-line errors, resume, and a sweep that ends in one summary with the risk–return
plot."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from bnnlv.policy.network import load_policy
from tests.cli_inprocess import TINY, run_bnnlv

POLICY_TINY = [
    "policy.epochs=2", "policy.steps_per_epoch=2", "policy.batch_size=4", "policy.n_draws=2",
    "policy.n_rollouts=2", "policy.hidden=[4]", "policy.evaluation.episodes=20",
    "policy.evaluation.monitor_episodes=10", "policy.evaluation.model_draws=2",
    "policy.evaluation.model_rollouts=2", "policy.evaluation.model_starts=3",
    "policy.upper_bound.iterations=1", "policy.upper_bound.population=3",
    "policy.upper_bound.episodes=5", "policy.checkpoint_every=1",
]  # fmt: skip


def metrics_of(folder: Path) -> dict[str, Any]:
    return dict(json.loads((folder / "metrics.json").read_text()))


@pytest.fixture(scope="module")
def policy_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A whole run: the dynamics model trained into model/, then the policy (plots on)."""
    run_dir = tmp_path_factory.mktemp("policy") / "run"
    with pytest.MonkeyPatch.context() as patch:
        code = run_bnnlv(patch, "policy", *TINY, *POLICY_TINY, "plots=true",
                         f"hydra.run.dir={run_dir}")  # fmt: skip
    assert code == 0
    return run_dir


def test_a_run_trains_the_model_then_the_policy(policy_run: Path) -> None:
    metrics = metrics_of(policy_run)
    assert metrics["status"] == "ok" and metrics["epochs"] == 2 and metrics["steps"] == 4
    for prefix in ("", "random_", "upper_bound_"):
        for key in (
            "true_reward",
            "true_reward_se",
            "model_cost",
            "model_sigma_e",
            "model_sigma_a",
        ):
            assert isinstance(metrics[f"{prefix}{key}"], float), prefix + key
    assert metrics["gap_to_upper_bound"] == pytest.approx(
        metrics["upper_bound_true_reward"] - metrics["true_reward"]
    )
    assert metrics_of(policy_run / "model")["status"] == "ok"  # an ordinary train run
    table = pd.read_csv(policy_run / "policy.csv")
    assert list(table["epoch"]) == [0, 1] and "model_sigma_a" in table
    for name in ("policy.ckpt", "upper_bound.ckpt"):
        load_policy(policy_run / "checkpoints" / name)
    assert (policy_run / "policy.png").stat().st_size > 10_000


def test_a_finished_model_run_is_reused(
    policy_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "reuse"
    model = f"policy.model_run={policy_run / 'model'}"
    code = run_bnnlv(monkeypatch, "policy", *POLICY_TINY, "plots=false", "seed=0", model,
                     f"hydra.run.dir={out}")  # fmt: skip
    assert code == 0 and not (out / "model").exists()
    again, first = metrics_of(out), metrics_of(policy_run)
    assert again["true_reward"] == first["true_reward"]  # same model, same seed: same policy


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("policy.horizon=0", "policy.horizon must be a positive integer, got 0"),
        ("policy.beta=-1", "policy.beta must be a finite number ≥ 0, got -1"),
        ("policy.evaluation.model_draws=1", "policy.evaluation.model_draws must be an integer ≥ 2"),
        (
            "policy.model_run=/no/such/run",
            "policy.model_run: run_dir=/no/such/run: not a bnnlv run",
        ),
    ],
)
def test_a_bad_value_is_one_line_and_exit_1(
    override: str, message: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    out = tmp_path / "bad"
    code = run_bnnlv(monkeypatch, "policy", *TINY, "policy.model_run=/no/such/run", override,
                     f"hydra.run.dir={out}")  # fmt: skip
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1 and len(err) == 1 and message in err[0]
    assert metrics_of(out)["status"] == "failed"


def test_resume_continues_a_stopped_policy(
    policy_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "longer"
    model = f"policy.model_run={policy_run / 'model'}"
    assert run_bnnlv(monkeypatch, "policy", *POLICY_TINY, model, "plots=false",
                     f"hydra.run.dir={out}") == 0  # fmt: skip
    code = run_bnnlv(monkeypatch, "policy", f"resume={out}", "policy.epochs=3")
    assert code == 0
    assert list(pd.read_csv(out / "policy.csv")["epoch"]) == [0, 1, 2]
    whole = tmp_path / "whole"
    assert run_bnnlv(monkeypatch, "policy", *POLICY_TINY, model, "plots=false", "policy.epochs=3",
                     f"hydra.run.dir={whole}") == 0  # fmt: skip
    assert metrics_of(out)["true_reward"] == metrics_of(whole)["true_reward"]


def test_a_sweep_ends_in_one_summary_with_the_risk_return_plot(
    policy_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sweep = tmp_path / "sweep"
    code = run_bnnlv(monkeypatch, "policy", "-m", *POLICY_TINY, "plots=false",
                     f"policy.model_run={policy_run / 'model'}", "policy.beta=0,1",
                     "policy.upper_bound.enabled=false", f"hydra.sweep.dir={sweep}")  # fmt: skip
    assert code == 0
    summary = (sweep / "summary.md").read_text()
    assert "true_reward" in summary and "risk_return.png" in summary
    assert (sweep / "risk_return.png").is_file() and (sweep / "summary.png").is_file()
    assert len(pd.read_csv(sweep / "summary_by_setting.csv")) == 2
    rebuilt = ("summary.md", "summary.png", "risk_return.png")
    for name in rebuilt:
        (sweep / name).unlink()
    assert run_bnnlv(monkeypatch, "summarize", str(sweep)) == 0  # no flags: the sweep's own
    assert all((sweep / name).is_file() for name in rebuilt)
    assert (sweep / "summary.md").read_text() == summary


def test_an_interrupt_is_recorded_and_resumed(
    policy_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import bnnlv.policy.train as policy_train

    out, calls = tmp_path / "stopped", {"n": 0}
    rollout = policy_train.rollout_costs

    def interrupted(*args: Any, **kwargs: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == 3:  # the first update of epoch 1
            raise KeyboardInterrupt
        return rollout(*args, **kwargs)

    model = f"policy.model_run={policy_run / 'model'}"
    with monkeypatch.context() as patch:
        patch.setattr(policy_train, "rollout_costs", interrupted)
        code = run_bnnlv(patch, "policy", *POLICY_TINY, model, "plots=false",
                         f"hydra.run.dir={out}")  # fmt: skip
    record = metrics_of(out)
    assert code == 130 and record["status"] == "interrupted"
    assert record["checkpoint"] == "checkpoints/policy.ckpt" and record["epoch"] == 1
    assert run_bnnlv(monkeypatch, "policy", f"resume={out}") == 0
    assert metrics_of(out)["status"] == "ok"
    assert list(pd.read_csv(out / "policy.csv")["epoch"]) == [0, 1]
