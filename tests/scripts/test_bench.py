"""scripts/bench.py: the synthetic data, one timed training case in-process, the report, and (slow)
the whole ``--quick`` run with every row of the table."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

from tests.scripts.conftest import SCRIPTS, load_script

SCRIPT = SCRIPTS / "bench.py"
ROWS = ["seed_tutorial fit", "default `bnnlv train`", "train batch 200", "train batch 1,000",
        "train batch 4,000", "predict", "predict with interval 0.9", "mixture quantiles",
        "entropy decomposition"]  # fmt: skip


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    return load_script("bench")


def test_synthetic_data_is_all_training_rows(bench: ModuleType) -> None:
    data = bench.SyntheticRegression(rows=300, features=8, batch_size=64)
    splits = data.load()
    assert splits.x_train.shape == (300, 8) and splits.y_train.shape == (300, 1)
    assert splits.x_val.shape == (0, 8) and splits.y_test.shape == (0, 1)
    assert splits.x_train.dtype == np.float32
    np.testing.assert_array_equal(splits.x_train, data.load().x_train)  # seeded


@pytest.mark.parametrize("fused", [True, False])
def test_train_case_times_one_epoch(bench: ModuleType, fused: bool) -> None:
    result = bench.train_case(rows=1200, batch=200, device="cpu", compile_model=False, fused=fused)
    assert result["steps"] == 6
    assert result["ms_per_step"] > 0
    assert result["points_per_s"] == pytest.approx(200 / result["ms_per_step"] * 1e3)
    assert result["peak_rss_mib"] >= result["rss_before_fit_mib"] > 0


def test_train_case_needs_steps_to_time(bench: ModuleType) -> None:
    with pytest.raises(ValueError, match="batch 500"):
        bench.train_case(rows=1000, batch=500, device="cpu", compile_model=False)


def test_render_shows_targets_only_at_full_size(bench: ModuleType) -> None:
    rows = [{"row": "predict", "setting": "10 points", "wall_seconds": 1.234},
            {"row": "train batch 10,000", "setting": "s", "ms_per_step": 2.0,
             "points_per_s": 5e6, "peak_rss_mib": 700.0, "rss_before_fit_mib": 400.0}]  # fmt: skip
    report = {"device": "cpu", "torch": "x", "cpus": 2, "threads": 1, "quick": False,
              "load": [(1.0, 2.0, 3.0), (1.5, 2.5, 3.5)], "rows": rows}  # fmt: skip
    text = bench.render(report)
    assert "| predict | 10 points | 1.23 | – |" in text and "≤ 10 s" in text
    assert "5,000,000" in text and "RSS 400 MiB before the fit" in text
    assert "1.0/1.5, 2.0/2.5, 3.0/3.5" in text
    assert "≤ 10 s" not in bench.render(report | {"quick": True})


@pytest.mark.slow
def test_quick_run_writes_every_row(tmp_path: Path) -> None:
    subprocess.run([sys.executable, str(SCRIPT), "--quick", "--out", str(tmp_path)], check=True,
                   capture_output=True, timeout=600)  # fmt: skip
    table = (tmp_path / "bench.md").read_text()
    for row in ROWS:
        assert f"| {row} |" in table
    report = json.loads((tmp_path / "bench.json").read_text())
    assert [r["row"] for r in report["rows"]] == [ROWS[0], ROWS[1], *ROWS[1:]]
    assert all(r["wall_seconds"] > 0 for r in report["rows"])
