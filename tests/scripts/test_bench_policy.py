"""scripts/bench_policy.py: the risk grid's jobs (every β × γ through the seed's bnn_lv model, at
the grid's settings), its report with a failed cell, and the usage line against the defaults."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

import pytest

from tests.scripts.conftest import load_script


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    return load_script("bench_policy")


def test_grid_jobs_cover_every_beta_and_gamma_through_the_seeds_model(bench: ModuleType) -> None:
    jobs = bench.grid_jobs(3, list(bench.BETAS), list(bench.GAMMAS), Path("runs"), ["x=1"])
    assert len(jobs) == len(bench.BETAS) * len(bench.GAMMAS) == 9
    assert [job.label for job in jobs[3:6]] == ["risk-b3-g0-seed3", "risk-b3-g0.5-seed3",
                                                "risk-b3-g1-seed3"]  # fmt: skip
    assert jobs[5].overrides == (
        "seed=3", f"policy.model_run={Path('runs') / 'bnn_lv-seed3' / 'model'}",
        "policy.beta=3.0", "policy.gamma=1.0", "policy.upper_bound.enabled=false",
        *bench.GRID_SETTINGS, "x=1",
    )  # fmt: skip


def test_usage_line_names_the_default_grid(bench: ModuleType) -> None:
    assert f"[--betas {','.join(f'{b:g}' for b in bench.BETAS)}]" in bench.__doc__
    assert f"[--gammas {','.join(f'{g:g}' for g in bench.GAMMAS)}]" in bench.__doc__


def test_risk_grid_averages_the_seeds_and_counts_a_failed_cell(bench: ModuleType) -> None:
    cell = {"status": "ok", "true_reward": -2.0, "model_cost": 25.0, "model_sigma_e": 0.2,
            "model_sigma_a": 5.0}  # fmt: skip
    runs = {"risk-b0-g0-seed0": cell, "risk-b0-g0-seed1": cell | {"model_sigma_e": 0.4},
            "risk-b30-g0-seed0": cell, "risk-b30-g0-seed1": {"status": "failed"}}  # fmt: skip
    text = bench.risk_grid(runs, [0.0, 30.0], [0.0], [0, 1])  # s.e. with ddof = 0: 0.1 / √2
    assert "| 0 | 0 | -2.000 ± 0.000 | 25.000 ± 0.000 | 0.300 ± 0.071 | 5.000 ± 0.000 |" in text
    assert "| 30 | 0 | -2.000 ± 0.000 (1/2 runs) |" in text
    assert bench.risk_grid({}, [0.0], [0.0], [0]) == ""
