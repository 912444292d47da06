"""scripts/bench_toy.py: every model row composes to the model it names, every candidate covers
every row, the jobs, the report (the candidate kept on validation, a failed run, the true
generator), a refused row, and a tiny run of the variant rows with two candidates, grouped on the
replica axis and alone, with the same tables."""

from __future__ import annotations

import json
import math
from pathlib import Path
from types import ModuleType

import pytest
from omegaconf import OmegaConf

from bnnlv.runs.benchmark import compose_config
from tests.scripts.conftest import grouped_and_alone, load_script, refusal

# row → the (latent, noise, stochastic layers) it must compose to
EXPECTED = {
    "bnn_lv": ("per_point", "homoscedastic", "all"),
    "bnn_lv_het": ("per_point", "heteroscedastic", "all"),
    "bnn": ("none", "homoscedastic", "all"),
    "mlp": ("none", "homoscedastic", []),
    "het_mlp": ("none", "heteroscedastic", []),
    "ensemble": ("none", "heteroscedastic", []),
}


@pytest.fixture(scope="module")
def bench_toy() -> ModuleType:
    return load_script("bench_toy")


def test_every_row_composes_the_model_it_names(bench_toy: ModuleType) -> None:
    assert list(bench_toy.MODELS) == list(EXPECTED)
    for row, overrides in bench_toy.MODELS.items():
        model = compose_config(overrides).model
        assert (model.latent, model.noise, model.stochastic_layers) == EXPECTED[row], row
    assert compose_config(bench_toy.MODELS["ensemble"]).model.members == 5


def test_every_candidate_covers_every_row_and_composes(bench_toy: ModuleType) -> None:
    for name, rows in bench_toy.CANDIDATES.items():
        assert list(rows) == list(bench_toy.MODELS), name
        for row, overrides in rows.items():
            compose_config((*bench_toy.MODELS[row], *overrides))


def test_jobs_cover_the_grid_with_extra_overrides_last(bench_toy: ModuleType) -> None:
    jobs = bench_toy.make_jobs(["toy_bimodal"], ["bnn_lv_het", "mlp"], ["e500"], [0, 3], ["seed=9"])
    assert [job.label for job in jobs] == [
        "toy_bimodal-bnn_lv_het-e500-seed0",
        "toy_bimodal-bnn_lv_het-e500-seed3",
        "toy_bimodal-mlp-e500-seed0",
        "toy_bimodal-mlp-e500-seed3",
    ]
    assert jobs[1].overrides == (
        "data=toy_bimodal",
        "model=bnn_lv",
        "model.noise=heteroscedastic",
        *bench_toy.CANDIDATES["e500"]["bnn_lv_het"],
        "seed=3",
        "seed=9",
    )


def run(val: float, test: float) -> dict[str, float]:
    """A finished run's metrics: original units = standardised + 1 (log s_y), generator 1.5."""
    return {"val_nll": val + 1.0, "test_nll": test + 1.0, "test_nll_standardised": test,
            "test_rmse": 0.5, "fit_seconds_per_run": 2.0, "test_oracle_nll": 1.5,
            "test_oracle_nll_standardised": 0.5}  # fmt: skip


def test_report_keeps_the_candidate_best_on_validation_not_test(bench_toy: ModuleType) -> None:
    # bnn_lv: shipped is better on test (1.0) but e500 on validation (0.1 against 0.2): e500 kept
    results = {
        "toy_bimodal-bnn_lv-shipped-seed0": run(0.2, 1.0),
        "toy_bimodal-bnn_lv-shipped-seed1": run(0.2, 1.0),
        "toy_bimodal-bnn_lv-e500-seed0": run(0.1, 1.0),
        "toy_bimodal-bnn_lv-e500-seed1": run(0.1, 3.0),
        "toy_bimodal-het_mlp-shipped-seed0": run(0.3, 2.0),
        "toy_bimodal-het_mlp-shipped-seed1": {"status": "failed", "error": "ValueError: x"},
        "toy_bimodal-het_mlp-e500-seed0": {"status": "failed"},
        "toy_bimodal-het_mlp-e500-seed1": {"status": "failed"},
    }
    text = bench_toy.render(results, ["toy_bimodal"], ["bnn_lv", "het_mlp"], ["shipped", "e500"],
                            [0, 1], "note")  # fmt: skip
    assert "| `bnn_lv` | 3.000 ± 0.707 (2.000 ± 0.707) |" in text  # 1.0 and 3.0: s.e. 1 / √2
    assert "| `het_mlp` | 3.000 ± 0.000 (1/2 runs) (2.000 ± 0.000 (1/2 runs)) |" in text
    assert "| true generator | 1.500 (0.500) |" in text
    assert "| toy_bimodal | `bnn_lv` | e500 | +1.500 | 0.500 ± 0.000 | 2.0 ± 0.0 |" in text
    assert "| toy_bimodal | `het_mlp` | shipped | +1.500 |" in text
    assert "| toy_bimodal | `bnn_lv` | 0.200 ± 0.000 | 0.100 ± 0.000 ✓ |" in text
    assert "| toy_bimodal | `het_mlp` | 0.300 ± 0.000 (1/2 runs) ✓ | – |" in text
    assert bench_toy.budget_text(["shipped", "e500"]) in text and text.rstrip().endswith("note")


def test_budget_lists_a_model_specific_candidate_row_by_row(bench_toy: ModuleType) -> None:
    text = bench_toy.budget_text(list(bench_toy.CANDIDATES))
    assert f"the same {len(bench_toy.CANDIDATES)} candidate(s) for every model" in text
    assert "- shipped: shipped defaults\n- e500: ['trainer.max_epochs=500']\n" in text
    assert (
        "- own: `bnn_lv` ['model.stochastic_layers=[-1]', 'model.lr=3e-3']; `bnn_lv_het` [" in text
    )


def test_report_without_a_finished_run_has_no_generator(bench_toy: ModuleType) -> None:
    results = {"toy_bimodal-mlp-shipped-seed0": {"status": "failed"}}
    assert math.isnan(bench_toy.oracle(results, "toy_bimodal")["orig"])
    assert math.isnan(bench_toy.val_standardised(results["toy_bimodal-mlp-shipped-seed0"]))
    text = bench_toy.render(results, ["toy_bimodal"], ["mlp"], ["shipped"], [0], "")
    assert "| `mlp` | – (–) |" in text


@pytest.mark.parametrize(("flag", "value"), [("--models", "bnn_lv,ens"), ("--datasets", "uci")])
def test_unknown_row_or_data_set_is_refused(
    bench_toy: ModuleType, flag: str, value: str, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str], tmp_path: Path,
) -> None:  # fmt: skip
    error = refusal(bench_toy, [flag, value], tmp_path, monkeypatch, capsys)
    assert f"{value.split(',')[-1]!r}; choose from" in error


def tables(text: str) -> list[str]:
    """The report's table rows, without the last column (fit time) and the closing note."""
    return [line.rsplit("|", 2)[0] for line in text.splitlines() if line.startswith("| ")]


def test_tiny_run_trains_the_variant_rows_grouped_as_alone(
    bench_toy: ModuleType, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Two seeds of each row and candidate trained together, then alone: every table figure the
    same."""
    argv = ["--seeds", "0,1", "--epochs", "2", "--datasets", "toy_bimodal", "--models",
            "bnn_lv_het,ensemble", "--candidates", "shipped,e500", "model.n_samples_test=2",
            "model.n_latent_test=2", "data.n_points=60", "model.hidden=[8]"]  # fmt: skip
    folders = grouped_and_alone(bench_toy, argv, tmp_path, monkeypatch)
    table, alone = ((folders[name] / "toy.md").read_text() for name in ("grouped", "alone"))
    for row in ("`bnn_lv_het`", "`ensemble`", "true generator"):
        assert f"| {row} |" in table
    assert "–" not in table.split("| true generator |")[0]  # every run finished
    assert "trained together as replicas" in table and "(--no-group)" in alone
    assert tables(table) == tables(alone)
    assert "| toy_bimodal | `ensemble` | – |" not in table  # every candidate scored
    run_dir = folders["grouped"] / "toy" / "toy_bimodal-bnn_lv_het-e500-seed1"
    assert math.isfinite(json.loads((run_dir / "metrics.json").read_text())["test_nll"])
    assert OmegaConf.load(run_dir / "config.yaml").model.noise == "heteroscedastic"


def test_longest_runs_start_first_and_the_cost_model_knows_every_row(
    bench_toy: ModuleType,
) -> None:
    assert set(bench_toy.FIT_SECONDS) == set(bench_toy.MODELS)
    assert compose_config([]).trainer.max_epochs == bench_toy.SHIPPED_EPOCHS
    jobs = bench_toy.make_jobs(["toy_bimodal"], ["mlp", "bnn_lv"], ["e500", "shipped"], [0, 1], [])
    order = [job.label for job in bench_toy.by_cost(jobs)]
    assert order == [
        "toy_bimodal-bnn_lv-shipped-seed0",
        "toy_bimodal-bnn_lv-shipped-seed1",
        "toy_bimodal-bnn_lv-e500-seed0",  # 19.5 s × 500 epochs against mlp's 6.1 s × 1,500
        "toy_bimodal-bnn_lv-e500-seed1",
        "toy_bimodal-mlp-shipped-seed0",
        "toy_bimodal-mlp-shipped-seed1",
        "toy_bimodal-mlp-e500-seed0",
        "toy_bimodal-mlp-e500-seed1",
    ]
    # an --epochs override (the last one wins) scales every run alike: the rows' order stays
    short = bench_toy.make_jobs(
        ["toy_bimodal"], ["mlp", "bnn_lv"], ["shipped"], [0], ["trainer.max_epochs=2"]
    )
    assert [job.label for job in bench_toy.by_cost(short)] == [
        "toy_bimodal-bnn_lv-shipped-seed0",
        "toy_bimodal-mlp-shipped-seed0",
    ]
