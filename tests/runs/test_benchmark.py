"""Benchmark plumbing: summary statistics by hand, tables, option parsing, and one real tiny run
through the composed config (the same path ``scripts/bench_*.py`` take)."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from bnnlv.runs.benchmark import (
    Job,
    compose_config,
    format_mean_se,
    int_list,
    markdown_table,
    mean_se,
    run_jobs,
    write_report,
)


def test_mean_se_by_hand() -> None:
    # values 1, 2, 3, 6: mean 3, population variance (4 + 1 + 0 + 9) / 4 = 3.5, se = √3.5 / 2
    mean, se = mean_se([1.0, 2.0, 3.0, 6.0])
    assert mean == 3.0 and se == pytest.approx(math.sqrt(3.5) / 2)
    assert mean_se([5.0]) == (5.0, 0.0)
    assert all(math.isnan(v) for v in mean_se([math.nan]))


def test_format_mean_se_counts_missing_runs() -> None:
    assert format_mean_se([1.0, 3.0]) == "2.000 ± 0.707"  # std 1, n 2
    assert format_mean_se([1.0, math.nan, 3.0], digits=1) == "2.0 ± 0.7 (2/3 runs)"
    assert format_mean_se([math.nan]) == "–"


def test_markdown_table_and_ragged_rows() -> None:
    assert markdown_table(["a", "b"], [["1", "2"]]) == "| a | b |\n| --- | --- |\n| 1 | 2 |"
    with pytest.raises(ValueError, match="2 cells"):
        markdown_table(["a", "b", "c"], [["1", "2"]])


def test_int_list() -> None:
    assert int_list("0-2,5") == [0, 1, 2, 5]
    assert int_list("7") == [7]


def test_compose_config_applies_overrides() -> None:
    cfg = compose_config(["data=wet_chicken", "model=bnn", "model.hidden=[7]"])
    assert cfg.data._target_ == "bnnlv.data.wet_chicken.WetChicken"
    assert cfg.model.latent == "none" and list(cfg.model.hidden) == [7]
    for name in ("toy_bimodal", "uci", "csv"):
        assert compose_config([f"data={name}"]).data._target_.startswith("bnnlv.data.")


def test_run_jobs_trains_and_reports_failures(tmp_path: Path) -> None:
    tiny = ("data=toy_bimodal", "data.n_points=40", "data.batch_size=40", "trainer.max_epochs=2",
            "model.hidden=[4]", "model.n_samples_test=2", "model.n_latent_test=2")  # fmt: skip
    jobs = [Job("ok", tiny), Job("bad", (*tiny, "data.n_points=3"))]
    seen: list[str] = []
    results = run_jobs(jobs, tmp_path, report=lambda job, m: seen.append(job.label))
    assert seen == ["ok", "bad"]
    assert results["ok"]["status"] == "ok" and math.isfinite(results["ok"]["test_nll"])
    assert (tmp_path / "ok" / "metrics.json").is_file()
    assert results["bad"]["status"] == "failed" and "n_points" in results["bad"]["error"]
    with pytest.raises(ValueError, match="unique"):
        run_jobs([Job("x", tiny), Job("x", tiny)], tmp_path)


def test_write_report(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write_report("demo", "# title\n\n| a |\n", tmp_path)
    assert path == tmp_path / "demo.md" and path.read_text() == "# title\n\n| a |\n"
    assert "# title" in capsys.readouterr().out
