"""launcher=replicas: a sweep's jobs that differ only in seed train together, each job's folder
as ``bnnlv train`` writes it alone; jobs that differ in more train apart; a bad job fails alone."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from bnnlv.model.lit_module import BNNLV
from tests.cli_inprocess import TINY, run_bnnlv
from tests.runs.test_cli_sweep import statuses

LIGHTNING_FIT = pytest.mark.filterwarnings("ignore:.*LeafSpec.*:FutureWarning")


def _metrics(folder: Path) -> dict[str, Any]:
    return dict(json.loads((folder / "metrics.json").read_text()))


@LIGHTNING_FIT
def test_seeds_train_together_and_each_job_matches_its_run_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """seed=0,1 × model.lr=0.01,-1: the two good jobs are one group of two models (one fit),
    each folder the metrics of that seed trained alone; the two bad jobs fail, each alone."""
    sweep = tmp_path / "sweep"
    fits: list[int] = []
    start = BNNLV.on_fit_start

    def counted(self: BNNLV) -> None:
        fits.append(self.replicas)
        start(self)

    monkeypatch.setattr(BNNLV, "on_fit_start", counted)
    code = run_bnnlv(monkeypatch, "train", "-m", "seed=0,1", "model.lr=0.01,-1",
                     "launcher=replicas", *TINY, f"hydra.sweep.dir={sweep}")  # fmt: skip
    assert code == 1  # the bad jobs are reported; the others trained
    assert fits == [2]  # seeds 0 and 1 of lr=0.01 in one model of two replicas
    assert statuses(sweep) == ["ok", "failed", "ok", "failed"]
    assert "model.lr must be" in _metrics(sweep / "1")["error"]
    assert (sweep / "2" / ".hydra" / "overrides.yaml").is_file()
    assert "2 ok, 2 not ok" in (sweep / "summary.md").read_text()
    alone = tmp_path / "alone"
    assert run_bnnlv(monkeypatch, "train", "seed=1", *TINY, f"hydra.run.dir={alone}") == 0
    got, want = _metrics(sweep / "2"), _metrics(alone)
    for key, value in want.items():
        if isinstance(value, float) and not key.endswith("_seconds"):
            assert got[key] == pytest.approx(value, rel=1e-4, abs=1e-6), key
    pd.testing.assert_frame_equal(pd.read_csv(sweep / "2" / "predictions.csv"),
                                  pd.read_csv(alone / "predictions.csv"), rtol=1e-4)  # fmt: skip


def test_a_command_whose_jobs_are_not_runs_of_one_model_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code = run_bnnlv(monkeypatch, "policy", "-m", "seed=0,1", "launcher=replicas",
                     f"hydra.sweep.dir={tmp_path / 'sweep'}")  # fmt: skip
    assert code == 1
    assert capsys.readouterr().err.strip().splitlines() == [
        "bnnlv: error: launcher=replicas trains the jobs of bnnlv train and bnnlv active, not of "
        "bnnlv policy: drop launcher=replicas"
    ]
