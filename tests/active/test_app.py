"""``bnnlv active`` as a command: help, one-line errors before anything runs, exit codes; the
seeds of a sweep through their rounds together (launcher=replicas)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd
import pytest
from torch import Tensor

from bnnlv.model.lit_module import BNNLV
from bnnlv.runs.cli import COMMANDS, usage
from tests.active.test_loop import TINY_ACTIVE, metrics_of, stop_in_round_1_fit, without_timings
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


# Seeds 0 and 1 through their rounds together (launcher=replicas), and each alone
GROUPED = [*TINY_ACTIVE, "active.batch=stochastic", "threads=1"]


@pytest.fixture(scope="module")
def alone(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    root = tmp_path_factory.mktemp("alone")
    with pytest.MonkeyPatch.context() as patch:
        for seed in (0, 1):
            code = run_bnnlv(patch, "active", *GROUPED, f"seed={seed}",
                             f"hydra.run.dir={root / str(seed)}")  # fmt: skip
            assert code == 0
    return [root / "0", root / "1"]


def counting_fits(patch: pytest.MonkeyPatch) -> list[int]:
    """The replicas of every model fitted from now on, in order."""
    fits: list[int] = []
    start = BNNLV.on_fit_start

    def counted(self: BNNLV) -> None:
        if self.current_epoch == 0:
            fits.append(self.replicas)
        start(self)

    patch.setattr(BNNLV, "on_fit_start", counted)
    return fits


def assert_same_run(together: Path, alone: Path) -> None:
    """The same picks, and every figure of active.csv and metrics.json to float rounding."""
    got, want = pd.read_csv(together / "active.csv"), pd.read_csv(alone / "active.csv")
    assert got["acquired"].equals(want["acquired"])
    pd.testing.assert_frame_equal(without_timings(got), without_timings(want), rtol=1e-4)
    mine, theirs = metrics_of(together), metrics_of(alone)
    assert mine.keys() == theirs.keys() and mine["status"] == "ok"
    for key, value in theirs.items():
        if isinstance(value, float) and not key.endswith("_seconds"):
            assert mine[key] == pytest.approx(value, rel=1e-4, abs=1e-6), key


def run_files(folder: Path) -> set[str]:
    """The files of a run folder but Hydra's: .hydra/ and the log, which launcher=replicas
    leaves to the sweep's console (as for bnnlv train)."""
    return {
        p.relative_to(folder).as_posix()
        for p in folder.rglob("*")
        if ".hydra" not in p.parts and p.suffix != ".log"
    }


def test_seeds_go_through_their_rounds_together_as_each_alone(
    alone: list[Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One fit of two replicas a round (warm-started, each from its own last round), and each
    job's folder the files and figures of its seed run alone."""
    sweep = tmp_path / "sweep"
    with monkeypatch.context() as patch:
        fits = counting_fits(patch)
        code = run_bnnlv(patch, "active", "-m", "seed=0,1", "launcher=replicas", *GROUPED,
                         f"hydra.sweep.dir={sweep}")  # fmt: skip
    assert code == 0 and fits == [2, 2, 2]
    for job, run in zip(("0", "1"), alone, strict=True):
        assert_same_run(sweep / job, run)
        assert run_files(sweep / job) == run_files(run)
    assert "2 ok" in (sweep / "summary.md").read_text()


def test_an_interrupted_group_resumes_run_by_run(
    alone: list[Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ctrl-C in round 1's fit: each folder keeps its own checkpoint (its run's loop state), and
    resume=DIR of each continues it alone to the run's end, as if never stopped."""
    sweep = tmp_path / "sweep"
    with monkeypatch.context() as patch:
        stop_in_round_1_fit(patch)
        code = run_bnnlv(patch, "active", "-m", "seed=0,1", "launcher=replicas", *GROUPED,
                         f"hydra.sweep.dir={sweep}")  # fmt: skip
    assert code == 130
    for job, run in zip(("0", "1"), alone, strict=True):
        assert metrics_of(sweep / job)["status"] == "interrupted"
        assert len(pd.read_csv(sweep / job / "active.csv")) == 1
        assert run_bnnlv(monkeypatch, "active", f"resume={sweep / job}") == 0
        assert_same_run(sweep / job, run)


def test_a_diverged_run_fails_alone_and_the_others_go_on(
    alone: list[Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Seed 1's energy made non-finite in round 0: its job fails with the divergence, seed 0
    trains on alone (one replica from round 1) to the figures of its run alone."""
    sweep = tmp_path / "sweep"
    with monkeypatch.context() as patch:
        fits = counting_fits(patch)
        check = BNNLV._check_finite

        def second_diverges(self: BNNLV, energy: Tensor) -> None:
            if self.runs == 2:
                energy = energy.clone()
                energy[1] = math.nan
            check(self, energy)

        patch.setattr(BNNLV, "_check_finite", second_diverges)
        code = run_bnnlv(patch, "active", "-m", "seed=0,1", "launcher=replicas", *GROUPED,
                         f"hydra.sweep.dir={sweep}")  # fmt: skip
    assert code == 1 and fits == [2, 1, 1]
    failed = metrics_of(sweep / "1")
    assert failed["status"] == "failed" and failed["error_type"] == "DivergenceError"
    assert failed["checkpoint"] is None  # it diverged before any save: no good checkpoint
    assert not (sweep / "1" / "active.csv").exists()
    assert_same_run(sweep / "0", alone[0])
