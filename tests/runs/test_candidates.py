"""The candidate budget: the choice by mean validation NLL by hand (failed runs, ties, no scores),
the selection table, the last logged value of a metrics log, and the --candidates option."""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import pytest

from bnnlv.runs import candidates as budget

NAN = math.nan


def test_choose_keeps_the_lowest_mean_over_finished_runs() -> None:
    # a: (0.4 + 0.2) / 2 = 0.3; b: 0.25 (its failed run left out); c: every run failed
    scores = {"a": [0.4, 0.2], "b": [0.25, NAN], "c": [NAN, NAN]}
    assert budget.choose(scores, ["a", "b", "c"]) == "b"
    assert budget.choose(scores, ["c", "a"]) == "a"  # a failed candidate is never kept
    assert budget.choose({"a": [0.3], "b": [0.3]}, ["b", "a"]) == "b"  # a tie keeps the first
    assert budget.choose({}, ["only", "other"]) == "only"  # no selection stage


def test_selection_table_marks_the_kept_candidate() -> None:
    scores = {("yacht", "mlp"): {"a": [0.5, 0.3], "b": [NAN]}}
    text = budget.selection_table(scores, ["a", "b"], {("yacht", "mlp"): "a"})
    assert text.splitlines()[0] == "| data set | model | a | b |"
    # 0.5 and 0.3: mean 0.4, s.e. 0.1 / √2 = 0.071
    assert text.splitlines()[2] == "| yacht | `mlp` | 0.400 ± 0.071 ✓ | – |"


def test_last_logged_reads_the_last_value_of_a_key(tmp_path: Path) -> None:
    (tmp_path / "logs").mkdir()
    (tmp_path / "logs" / "metrics.csv").write_text(
        "epoch,train/rmse,val/nll\n0,1.0,\n1,0.9,0.7\n2,0.8,\n3,0.7,0.5\n4,0.6,\n"
    )
    assert budget.last_logged(tmp_path, "val/nll") == 0.5
    assert math.isnan(budget.last_logged(tmp_path, "val/rmse"))
    assert math.isnan(budget.last_logged(tmp_path / "missing", "val/nll"))


def test_option_defaults_to_every_candidate_and_refuses_an_unknown_one(
    capsys: pytest.CaptureFixture[str],
) -> None:
    cli = argparse.ArgumentParser()
    budget.add_option(cli, ["a", "b"])
    assert budget.chosen_names(cli, cli.parse_args([]), ["a", "b"]) == ["a", "b"]
    assert budget.chosen_names(cli, cli.parse_args(["--candidates", "b"]), ["a", "b"]) == ["b"]
    with pytest.raises(SystemExit) as stop:
        budget.chosen_names(cli, cli.parse_args(["--candidates", "a,z"]), ["a", "b"])
    assert stop.value.code == 2
    assert "unknown candidate 'z'; choose from ['a', 'b']" in capsys.readouterr().err
