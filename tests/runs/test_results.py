"""Atomic writes of the results folder."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from bnnlv.runs.results import read_metrics, write_csv, write_json, write_text, write_torch
from tests.report.test_files import umask


def test_write_json_is_atomic_and_flat(tmp_path: Path) -> None:
    path = tmp_path / "run" / "metrics.json"
    write_json(path, {"status": "ok", "test_nll": 0.5, "bad": float("nan"), "inf": float("inf")})
    assert json.loads(path.read_text()) == {
        "status": "ok", "test_nll": 0.5, "bad": None, "inf": None
    }  # fmt: skip
    assert sorted(p.name for p in path.parent.iterdir()) == ["metrics.json"]  # no temp file left
    assert read_metrics(path.parent) == {"status": "ok", "test_nll": 0.5, "bad": None, "inf": None}


def test_failed_write_keeps_the_old_file_and_leaves_no_temp(tmp_path: Path) -> None:
    path = tmp_path / "metrics.json"
    write_json(path, {"status": "ok"})
    with pytest.raises(TypeError):
        write_json(path, {"status": object()})  # not JSON-serialisable, fails mid-write
    assert json.loads(path.read_text()) == {"status": "ok"}
    assert [p.name for p in tmp_path.iterdir()] == ["metrics.json"]


def test_write_csv_and_text(tmp_path: Path) -> None:
    frame = pd.DataFrame({"x": [1.0, 2.0], "mean": [0.5, -0.5]})
    write_csv(tmp_path / "predictions.csv", frame)
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "predictions.csv"), frame)
    write_text(tmp_path / "config.yaml", "alpha: 0.5\n")
    write_text(tmp_path / "config.yaml", "alpha: 1.0\n")
    assert (tmp_path / "config.yaml").read_text() == "alpha: 1.0\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.yaml", "predictions.csv"]


def test_read_metrics_of_a_folder_without_metrics(tmp_path: Path) -> None:
    assert read_metrics(tmp_path) == {}


@pytest.mark.parametrize("mask", [0o022, 0o077, 0o002])
def test_result_files_get_the_mode_an_ordinary_open_gives(tmp_path: Path, mask: int) -> None:
    """mkstemp alone leaves -rw------- whatever the umask; results follow 0666 & ~umask."""
    with umask(mask):
        write_json(tmp_path / "metrics.json", {"status": "ok"})
        write_csv(tmp_path / "predictions.csv", pd.DataFrame({"x": [1.0]}))
        write_text(tmp_path / "config.yaml", "seed: 0\n")
        (tmp_path / "plain.txt").write_text("made by open()")
    modes = {p.name: p.stat().st_mode & 0o777 for p in tmp_path.iterdir()}
    assert modes == dict.fromkeys(modes, 0o666 & ~mask) and len(modes) == 4


def test_write_torch_is_atomic_and_loads_safely(tmp_path: Path) -> None:
    import torch

    path = tmp_path / "state.ckpt"
    write_torch(path, {"weights": torch.arange(3.0), "hidden": [4, 2]})
    loaded = torch.load(path, weights_only=True)
    assert torch.equal(loaded["weights"], torch.arange(3.0)) and loaded["hidden"] == [4, 2]
    with pytest.raises(Exception):  # noqa: B017  (pickling a lambda fails mid-write)
        write_torch(path, {"weights": lambda: 0})
    assert [p.name for p in tmp_path.iterdir()] == ["state.ckpt"]
    assert torch.equal(torch.load(path, weights_only=True)["weights"], torch.arange(3.0))
