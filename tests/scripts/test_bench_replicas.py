"""scripts/bench_replicas.py: the groups of seeds, a table row by hand (and one with every run
failed), a refused R, and a tiny R = 1, 2 run into the report."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from types import ModuleType

import pytest

from tests.scripts.conftest import load_script, refusal


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    return load_script("bench_replicas")


def test_group_is_seeds_zero_to_r(bench: ModuleType) -> None:
    jobs = bench.group(3, ["trainer.max_epochs=2"])
    assert [job.label for job in jobs] == ["R3-seed0", "R3-seed1", "R3-seed2"]
    assert jobs[2].overrides == ("seed=2", "trainer.max_epochs=2")


def test_row_by_hand(bench: ModuleType) -> None:
    run = {"status": "ok", "fit_seconds": 30.0, "steps": 1500}
    # 30 s for R = 4 against 10 s for one: 3.00×, 7.50 s per replica, 20 ms per update
    assert bench.row(4, [run] * 3 + [{"status": "failed"}], 10.0) == [
        "4", "30.0", "3.00", "7.50", "20.00", "1"
    ]  # fmt: skip
    assert bench.row(2, [{"status": "failed"}] * 2, 10.0) == ["2", "–", "–", "–", "–", "2 of 2"]
    assert bench.row(1, [run], None)[2] == "–"


def test_replicas_below_one_are_refused(
    bench: ModuleType, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:  # fmt: skip
    error = refusal(bench, ["--replicas", "0,2"], tmp_path, monkeypatch, capsys)
    assert "every R must be ≥ 1, got [0, 2]" in error


def test_tiny_run_writes_a_row_per_r(
    bench: ModuleType, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    argv = ["x", "--replicas", "1,2", "--epochs", "1", "--out", str(tmp_path),
            "data.n_points=40", "model.hidden=[4]", "model.n_samples_test=2",
            "model.n_latent_test=2"]  # fmt: skip
    monkeypatch.setattr(sys, "argv", argv)
    bench.main()
    report = (tmp_path / "replicas.md").read_text()
    assert re.search(r"\| 1 \| [\d.]+ \| 1\.00 \| [\d.]+ \| [\d.]+ \| 0 \|", report)
    assert re.search(r"\| 2 \| [\d.]+ \| [\d.]+ \| [\d.]+ \| [\d.]+ \| 0 \|", report)
    two = [json.loads((tmp_path / "replicas" / f"R2-seed{s}" / "metrics.json").read_text())
           for s in (0, 1)]  # fmt: skip
    assert two[0]["fit_seconds"] == two[1]["fit_seconds"]  # one fit for both
