"""Atomic writes of the results folder."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from bnnlv.runs.results import read_metrics, write_csv, write_json, write_text


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
