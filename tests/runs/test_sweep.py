"""bnnlv.runs.sweep: mean ± standard error, and the summary files built from job folders alone."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from bnnlv.runs import sweep
from bnnlv.runs.sweep import (
    Summary,
    aggregate,
    mean_se,
    read_jobs,
    summarize,
    summarize_by_name,
)


def test_mean_se_hand_computed() -> None:
    # [1, 2, 3, 6]: m = 3, s² = (4 + 1 + 0 + 9) / 3 = 14/3, se = √(14/3) / 2
    mean, se = mean_se([1.0, 2.0, 3.0, 6.0])
    assert mean == pytest.approx(3.0)
    assert se == pytest.approx(math.sqrt(14 / 3) / 2)


def test_mean_se_limiting_cases() -> None:
    assert mean_se([5.0, 5.0, 5.0]) == (5.0, 0.0)
    mean, se = mean_se([2.5])
    assert mean == 2.5 and math.isnan(se)
    assert all(math.isnan(v) for v in mean_se([]))


def test_mean_se_rejects_a_table() -> None:
    with pytest.raises(ValueError, match=r"1-D.*\(2, 2\)"):
        mean_se([[1.0, 2.0], [3.0, 4.0]])  # type: ignore[list-item]


def make_job(sweep: Path, job: int, overrides: list[str], metrics: dict[str, Any]) -> None:
    folder = sweep / str(job)
    (folder / ".hydra").mkdir(parents=True)
    (folder / ".hydra" / "overrides.yaml").write_text("".join(f"- {o}\n" for o in overrides))
    (folder / "metrics.json").write_text(json.dumps(metrics))


@pytest.fixture
def fake_sweep(tmp_path: Path) -> Path:
    """alpha ∈ {0.1, 0.5} × seed ∈ {0, 1, 2}; job 4 (alpha 0.5, seed 1) failed."""
    nll = {(0.1, 0): 1.0, (0.1, 1): 2.0, (0.1, 2): 6.0, (0.5, 0): 0.5, (0.5, 2): 1.5}
    job = 0
    for alpha in (0.1, 0.5):
        for seed in (0, 1, 2):
            overrides = [f"alpha={alpha}", f"seed={seed}", "trainer.max_epochs=3"]
            if (alpha, seed) in nll:
                metrics = {"status": "ok", "test_nll": nll[alpha, seed], "fit_seconds": 1.0}
            else:
                metrics = {"status": "failed", "error": "ValueError: bad | value"}
            make_job(tmp_path, job, overrides, metrics)
            job += 1
    (tmp_path / "multirun.yaml").write_text("hydra: {}\n")
    return tmp_path


def test_read_jobs_one_row_per_job_in_job_order(fake_sweep: Path) -> None:
    make_job(fake_sweep, 10, ["alpha=0.9", "seed=0", "trainer.max_epochs=3"], {"status": "ok"})
    jobs, keys = read_jobs(fake_sweep)
    assert list(jobs["job"]) == ["0", "1", "2", "3", "4", "5", "10"]
    assert keys == ["alpha", "seed", "trainer.max_epochs"]
    assert jobs.loc[4, "status"] == "failed" and "bad" in jobs.loc[4, "error"]


def test_job_without_metrics_is_missing(tmp_path: Path) -> None:
    make_job(tmp_path, 0, ["seed=0"], {"status": "ok", "test_nll": 1.0})
    (tmp_path / "1" / ".hydra").mkdir(parents=True)
    (tmp_path / "1" / ".hydra" / "overrides.yaml").write_text("- seed=1\n")
    jobs, _ = read_jobs(tmp_path)
    assert list(jobs["status"]) == ["ok", "missing"]


def test_aggregate_over_seeds_of_ok_jobs_only(fake_sweep: Path) -> None:
    jobs, _ = read_jobs(fake_sweep)
    settings = aggregate(jobs, ["alpha"], ["test_nll"]).set_index("alpha")
    assert settings.loc["0.1", "n_jobs"] == 3 and settings.loc["0.1", "n_ok"] == 3
    assert settings.loc["0.1", "test_nll_mean"] == pytest.approx(3.0)
    assert settings.loc["0.1", "test_nll_se"] == pytest.approx(math.sqrt(7.0) / math.sqrt(3.0))
    assert settings.loc["0.5", "n_ok"] == 2
    assert settings.loc["0.5", "test_nll_mean"] == pytest.approx(1.0)
    assert settings.loc["0.5", "test_nll_se"] == pytest.approx(0.5)


def test_summarize_writes_the_tables_and_the_plot(fake_sweep: Path) -> None:
    summary = summarize(fake_sweep)
    assert summary.swept == ["alpha", "seed"]
    assert summary.fixed == {"trainer.max_epochs": "3"}
    assert summary.n_failed == 1
    jobs = pd.read_csv(fake_sweep / "summary.csv")
    assert len(jobs) == 6 and list(jobs["status"]).count("failed") == 1
    by_setting = pd.read_csv(fake_sweep / "summary_by_setting.csv")
    assert list(by_setting["alpha"]) == [0.1, 0.5]
    text = (fake_sweep / "summary.md").read_text()
    assert "| 0.1 | 3/3 | 3 ± 1.5 |" in text
    assert "| 0.5 | 2/2 |" not in text and "| 0.5 | 2/3 | 1 ± 0.5 |" in text
    assert "bad \\| value" in text  # a | in an error cannot break the table
    assert "`trainer.max_epochs=3`" in text
    assert (fake_sweep / "summary.png").stat().st_size > 1000


def test_summarize_is_repeatable(fake_sweep: Path) -> None:
    summarize(fake_sweep)
    first = {name: (fake_sweep / name).read_text() for name in ("summary.csv", "summary.md")}
    summarize(fake_sweep)
    assert first == {name: (fake_sweep / name).read_text() for name in first}


def test_summarize_two_swept_keys_and_all_failed(tmp_path: Path) -> None:
    for job, (lr, hidden) in enumerate(
        [(0.01, "[8]"), (0.01, "[16]"), (0.1, "[8]"), (0.1, "[16]")]
    ):
        make_job(tmp_path / "grid", job, [f"model.lr={lr}", f"model.hidden={hidden}"],
                 {"status": "ok", "test_nll": float(job)})  # fmt: skip
        make_job(tmp_path / "dead", job, [f"model.lr={lr}"], {"status": "failed", "error": "x"})
    grid = summarize(tmp_path / "grid")
    assert len(grid.settings) == 4 and (tmp_path / "grid" / "summary.png").is_file()
    dead = summarize(tmp_path / "dead")
    assert dead.n_failed == 4 and not (tmp_path / "dead" / "summary.png").exists()
    assert "0 ok, 4 not ok" in (tmp_path / "dead" / "summary.md").read_text()


def test_summarize_rejections(tmp_path: Path, fake_sweep: Path) -> None:
    with pytest.raises(ValueError, match="does not exist"):
        summarize(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no job folders"):
        summarize(tmp_path / "empty")
    with pytest.raises(ValueError, match="'test_nlll' is not in the jobs' metrics"):
        summarize(fake_sweep, metric="test_nlll")


def test_summary_png_plots_the_validation_nll_optuna_minimises(
    fake_sweep: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for job in (0, 1, 2, 3, 5):  # the ok jobs also report a validation NLL
        metrics = json.loads((fake_sweep / str(job) / "metrics.json").read_text())
        (fake_sweep / str(job) / "metrics.json").write_text(json.dumps(metrics | {"val_nll": 1.0}))
    plotted: list[list[str]] = []
    monkeypatch.setattr(sweep, "plot_sweep", lambda s, k, metrics, p: plotted.append(metrics))
    summarize(fake_sweep)
    summarize(fake_sweep, metric="test_nll")
    assert plotted == [["val_nll", "test_nll"], ["test_nll"]]


def test_a_sweep_of_one_seed_per_setting_claims_no_standard_error(tmp_path: Path) -> None:
    for job, lr in enumerate((0.01, 0.02, 0.05)):
        make_job(tmp_path, job, [f"model.lr={lr}"], {"status": "ok", "val_nll": 1.0 + lr})
    summarize(tmp_path)
    text = (tmp_path / "summary.md").read_text()
    assert "## By setting (one job each, ok jobs only)" in text and "standard error" not in text


def test_a_command_names_its_metric_table_and_plots(fake_sweep: Path) -> None:
    """A policy sweep has no test_nll: it names its own metric and adds its own figure."""
    seen: list[list[str]] = []

    def extra_plot(summary: Any, keys: list[str], sweep_dir: Path) -> str:
        seen.append(keys)
        (sweep_dir / "extra.png").write_bytes(b"png")
        return "extra.png"

    summarize(fake_sweep, "fit_seconds", ["fit_seconds"], [extra_plot])
    assert seen == [["alpha"]]
    text = (fake_sweep / "summary.md").read_text()
    assert "(extra.png)" in text and "(summary.png)" in text
    assert "fit_seconds" in text and "test_nll" not in text.split("## Jobs")[1]


def test_the_recorded_summary_is_the_sweeps_own_command_s(fake_sweep: Path) -> None:
    """bnnlv summarize reads hydra.callbacks.summary of multirun.yaml; train's defaults else."""
    default = sweep.recorded_summary(fake_sweep)  # multirun.yaml: hydra: {}
    assert default == sweep.RecordedSummary(None, list(sweep.TABLE_METRICS), [])
    (fake_sweep / sweep.MULTIRUN_FILE).write_text(
        "hydra:\n  callbacks:\n    summary:\n"
        "      _target_: bnnlv.runs.sweep_callback.SummaryCallback\n"
        "      metric: fit_seconds\n      table_metrics: [fit_seconds]\n"
        "      plots: [bnnlv.policy.plots.plot_risk_return]\n"
    )
    recorded = sweep.recorded_summary(fake_sweep)
    assert recorded.metric == "fit_seconds" and recorded.table_metrics == ["fit_seconds"]
    assert [plot.__name__ for plot in recorded.plots] == ["plot_risk_return"]
    (fake_sweep / sweep.MULTIRUN_FILE).unlink()
    assert sweep.recorded_summary(fake_sweep).metric is None


def numbered_jobs(summary: Summary, keys: list[str], sweep_dir: Path) -> list[str]:
    """A summary section for the tests: one line naming the jobs it saw."""
    return ["## Jobs seen", "", f"{len(summary.jobs)} jobs, swept {keys}"]


def test_a_command_s_sections_end_summary_md(fake_sweep: Path) -> None:
    summarize(fake_sweep, sections=[numbered_jobs])
    assert (
        (fake_sweep / "summary.md")
        .read_text()
        .endswith("\n## Jobs seen\n\n6 jobs, swept ['alpha']\n")
    )


def test_named_functions_come_from_bnnlv_only(
    fake_sweep: Path,
) -> None:
    with pytest.raises(ValueError, match=r"summary function 'os\.system': only functions of"):
        summarize_by_name(fake_sweep, sections=["os.system"])
    (fake_sweep / "multirun.yaml").write_text(
        "hydra:\n  callbacks:\n    summary:\n"
        "      _target_: bnnlv.runs.sweep_callback.SummaryCallback\n      metric: test_nll\n"
        "      sections: [tests.runs.test_sweep.numbered_jobs]\n"
    )
    with pytest.raises(ValueError, match=r"tests\.runs\.test_sweep\.numbered_jobs"):
        sweep.recorded_summary(fake_sweep)  # a stranger's multirun.yaml names no other code
