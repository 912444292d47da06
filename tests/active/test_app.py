"""``bnnlv active`` as a command: help, one-line errors before anything runs, exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bnnlv.runs.cli import COMMANDS, usage
from tests.active.test_loop import TINY_ACTIVE
from tests.cli_inprocess import run_bnnlv, run_fresh


def test_the_command_is_listed() -> None:
    assert "active" in COMMANDS and "active" in usage()


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["active.init_size=0"], "active.init_size must be a positive integer, got 0"),
        (["active.query_size=50", "active.candidates=50"], "active.query_size=50 × "
         "active.rounds=2 after active.init_size=6 needs 106 pool points, the pool has 42"),
        (["data=wet_chicken", "active.pool_size=100"],
         "active.pool_size=100: only the toy data sets draw a fresh pool"),
    ],
)  # fmt: skip
def test_bad_values_fail_in_one_line_before_any_training(
    overrides: list[str], message: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    run_dir = tmp_path / "run"
    code = run_bnnlv(monkeypatch, "active", *TINY_ACTIVE, *overrides, f"hydra.run.dir={run_dir}")
    assert code == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"bnnlv: error: {message}")
    record = json.loads((run_dir / "metrics.json").read_text())  # a folder given: it is kept
    assert record["status"] == "failed" and record["error"].startswith(message)
    assert not (run_dir / "checkpoints").exists() and not (run_dir / "active.csv").exists()


def test_an_unknown_key_is_a_composition_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code = run_bnnlv(monkeypatch, "active", "active.round=3", f"hydra.run.dir={tmp_path}")
    assert code == 2
    assert "unknown key active.round" in capsys.readouterr().err


def test_a_bad_value_is_reported_before_torch_and_leaves_no_folder(tmp_path: Path) -> None:
    """As for bnnlv train: the active.* check comes before torch and Lightning are imported,
    and a run refused by it leaves no run folder behind."""
    code, imported, stderr = run_fresh(tmp_path, "active", "active.init_size=0")
    assert (code, imported) == (1, []), stderr
    assert stderr.strip().splitlines() == [
        "bnnlv: error: active.init_size must be a positive integer, got 0"
    ]
    assert not (tmp_path / "outputs").exists()
