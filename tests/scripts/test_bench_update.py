"""scripts/bench_update.py: a row by hand, the op counter on known calls, refused arguments, the
update it times (a real step of both training paths), and a tiny R = 1, 2 report."""

from __future__ import annotations

import math
import re
import sys
from pathlib import Path
from types import ModuleType

import pytest
import torch

from tests.scripts.conftest import load_script, refusal

TINY = ["data.n_points=40", "model.hidden=[4]", "model.n_samples_train=2"]


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    return load_script("bench_update")


def test_row_by_hand(bench: ModuleType) -> None:
    # 12 ms for R = 4 against 5 ms for one: 2.40×, 3.00 ms per replica
    assert bench.row(4, "fused", 12.0, 5.0, 210) == ["4", "fused", "12.00", "2.40", "3.00", "210"]
    assert bench.row(1, "autograd", 5.0, None, 300)[3] == "–"
    assert bench.row(1, "fused", 5.0, 5.0, None)[5] == "–"  # --compile: not counted


def test_op_count_counts_each_dispatched_operation(bench: ModuleType) -> None:
    x = torch.ones(3)
    assert bench.count_ops(lambda: x.add(1.0).mul_(2.0)) == 2
    assert bench.count_ops(lambda: None) == 0


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--replicas", "0,2"], "every R must be ≥ 1, got [0, 2]"),
        (["--updates", "0"], "--updates must be ≥ 1, got 0"),
        (["model.hiden=[4]"], "overrides: unknown key model.hiden (in model.hiden=[4]); did you"),
    ],
)
def test_bad_arguments_are_refused(
    bench: ModuleType, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
    tmp_path: Path, argv: list[str], message: str,
) -> None:  # fmt: skip
    assert message in refusal(bench, argv, tmp_path, monkeypatch, capsys)


@pytest.mark.parametrize(("override", "path"), [("model.fused=true", "fused"),
                                                ("model.fused=false", "autograd")])  # fmt: skip
def test_the_update_trains_every_replica(bench: ModuleType, override: str, path: str) -> None:
    update, chosen = bench.updater(bench.configs([*TINY, override], 2))
    assert chosen == path
    energies = [float(update()) for _ in range(3)]  # the replicas' summed energy per point
    assert all(map(math.isfinite, energies))
    assert len(set(energies)) == 3  # new draws and new parameters at every update


def test_tiny_run_writes_a_row_and_a_profile_per_r(
    bench: ModuleType, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    argv = ["x", "--replicas", "1,2", "--updates", "2", "--out", str(tmp_path), *TINY]
    monkeypatch.setattr(sys, "argv", argv)
    bench.main()
    report = (tmp_path / "update.md").read_text()
    assert re.search(r"\| 1 \| fused \| [\d.]+ \| 1\.00 \| [\d.]+ \| \d+ \|", report)
    assert re.search(r"\| 2 \| fused \| [\d.]+ \| [\d.]+ \| [\d.]+ \| \d+ \|", report)
    for replicas in (1, 2):
        assert f"## R = {replicas}: the heaviest operations" in report
    op_row = re.compile(
        r"^\| `aten::\w+` \| [\d.]+ \| [\d.]+ \| [\d.]+ \| [\d.]+% \|$", re.MULTILINE
    )
    assert len(op_row.findall(report)) == 2 * bench.TOP_OPS
