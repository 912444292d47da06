"""scripts/bench_wet_chicken.py: the jobs (every model row on each seed's own data draw), the
report with a failed run, a refused row, and a tiny run whose seeds train together."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from types import ModuleType

import pytest

from bnnlv.runs.benchmark import MODELS
from tests.scripts.conftest import load_script, refusal


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    return load_script("bench_wet_chicken")


def test_jobs_put_every_model_on_each_seeds_data(bench: ModuleType) -> None:
    jobs = bench.make_jobs(list(MODELS), [0, 4], ["model.lr=1e-3"])
    assert len(jobs) == 2 * len(MODELS) and jobs[1].label == "bnn_lv-seed4"
    het = next(job for job in jobs if job.label == "bnn_lv_het-seed4")
    assert het.overrides == ("data=wet_chicken", "model=bnn_lv", "model.noise=heteroscedastic",
                             "seed=4", "data.noise_seed=4", *bench.SETTINGS,
                             "model.lr=1e-3")  # fmt: skip


def test_report_has_a_row_per_model_with_the_published_figure(bench: ModuleType) -> None:
    run = {"test_nll_y_next": 1.0, "test_rmse_y_next": 0.5, "test_nll_x_next": 2.0,
           "fit_seconds_per_run": 3.0}  # fmt: skip
    results = {"bnn_lv-seed0": run, "bnn_lv-seed1": run | {"test_nll_y_next": 3.0},
               "ensemble-seed0": run, "ensemble-seed1": {"status": "failed"}}  # fmt: skip
    text = bench.render(results, ["bnn_lv", "ensemble"], [0, 1], "note")
    assert ("| `bnn_lv` | -2.000 ± 0.707 | 0.500 ± 0.000 | -2.000 ± 0.000 | 3.0 ± 0.0 | "
            f"{bench.PUBLISHED['bnn_lv']} |") in text  # fmt: skip
    assert "| `ensemble` | -1.000 ± 0.000 (1/2 runs) |" in text and text.endswith("note\n")


def test_unknown_row_is_refused(
    bench: ModuleType, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:  # fmt: skip
    error = refusal(bench, ["--models", "bnn_lv,gp"], tmp_path, monkeypatch, capsys)
    assert "unknown model row 'gp'" in error


def test_tiny_run_trains_the_seeds_together(
    bench: ModuleType, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    argv = ["x", "--seeds", "0,1", "--epochs", "1", "--models", "mlp", "--jobs", "1", "--out",
            str(tmp_path),
            "data.n_points=80", "data.batch_size=40", "model.hidden=[4]"]  # fmt: skip
    monkeypatch.setattr(sys, "argv", argv)
    bench.main()
    assert "| `mlp` |" in (tmp_path / "wet_chicken.md").read_text()
    metrics = [json.loads((tmp_path / "wet_chicken" / f"mlp-seed{s}" / "metrics.json").read_text())
               for s in (0, 1)]  # fmt: skip
    assert metrics[0]["fit_seconds"] == metrics[1]["fit_seconds"]  # one fit for both seeds
    assert metrics[0]["test_nll_y_next"] != metrics[1]["test_nll_y_next"]  # each its own data
