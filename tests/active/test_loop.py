"""The loop of bnnlv active end to end on tiny data: rounds, outputs, refusals and resume."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import torch

import bnnlv.active.loop as loop
from bnnlv.active.loop import warm_start
from bnnlv.model.lit_module import BNNLV
from tests.cli_inprocess import run_bnnlv

# 3 rounds of a few epochs on 60 points (42 in the pool); a tiny model and mixture
TINY_ACTIVE = ["trainer.max_epochs=3", "data.n_points=60", "model.hidden=[8]",
               "model.n_samples_test=4", "model.n_latent_test=3", "active.init_size=6",
               "active.query_size=4", "active.rounds=2", "active.candidates=20",
               "active.entropy_draws=4", "plots=false"]  # fmt: skip


def metrics_of(run_dir: Path) -> dict[str, Any]:
    record: dict[str, Any] = json.loads((run_dir / "metrics.json").read_text())
    return record


def without_timings(table: pd.DataFrame) -> pd.DataFrame:
    return table.drop(columns=[c for c in table.columns if c.endswith("_seconds")])


def stop_in_round_1_fit(patch: pytest.MonkeyPatch) -> None:
    """Ctrl-C when the second epoch of round 1's fit (10 labelled points) begins."""
    start_epoch = BNNLV.on_train_epoch_start

    def stop(self: BNNLV) -> None:
        if self.n_train == 10 and self.current_epoch == 1:
            raise KeyboardInterrupt
        start_epoch(self)

    patch.setattr(BNNLV, "on_train_epoch_start", stop)


@pytest.fixture(scope="module")
def finished(tmp_path_factory: pytest.TempPathFactory) -> Path:
    run_dir = tmp_path_factory.mktemp("active") / "run"
    with pytest.MonkeyPatch.context() as patch:
        code = run_bnnlv(patch, "active", *TINY_ACTIVE, "plots=true", f"hydra.run.dir={run_dir}")
    assert code == 0
    return run_dir


def test_the_labelled_set_grows_by_query_size_and_picks_are_new(finished: Path) -> None:
    rows = pd.read_csv(finished / "active.csv")
    assert rows["round"].tolist() == [0, 1, 2]
    assert rows["n_labelled"].tolist() == [6, 10, 14]
    picks = [int(i) for text in rows["acquired"].dropna() for i in str(text).split()]
    assert len(picks) == 8 and len(set(picks)) == 8
    assert rows["n_candidates"].tolist()[:2] == [20, 20]
    assert rows["test_nll"].notna().all() and rows["mean_score"].iloc[:2].notna().all()
    initial = json.loads(json.dumps(torch.load(finished / "checkpoints" / "last.ckpt",
                                               weights_only=True)["bnnlv_active"]["labelled"]
                                    .tolist()))  # fmt: skip
    assert initial[6:] == picks and len(set(initial)) == 14  # pool indices, none labelled twice


def test_the_run_writes_its_outputs(finished: Path) -> None:
    metrics = metrics_of(finished)
    rows = pd.read_csv(finished / "active.csv")
    assert metrics["status"] == "ok" and metrics["acquisition"] == "epistemic"
    assert metrics["n_labelled"] == 14 and metrics["rounds"] == 2
    assert metrics["test_nll"] == pytest.approx(rows["test_nll"].iloc[-1], rel=1e-9)
    assert min(rows["test_nll"]) <= metrics["test_nll_area"] <= max(rows["test_nll"])
    assert metrics["n_negative_epistemic"] == rows["n_negative_epistemic"].sum()
    for name in ("acquired.png", "learning_curve.png", "fit.png"):
        assert (finished / name).read_bytes()[:4] == b"\x89PNG"
    assert len(pd.read_csv(finished / "predictions.csv")) == 12
    assert not list(finished.rglob("*.tmp"))


def test_warm_start_copies_the_parameters_and_the_old_latent_rows() -> None:
    torch.manual_seed(0)
    old = BNNLV(1, 1, 5, 5, hidden=[4])
    new = BNNLV(1, 1, 8, 8, hidden=[4])
    fresh_rows = new.latent.table.weight[5:].detach().clone()  # type: ignore[union-attr]
    warm_start(new, [old.state_dict()])
    for name, value in old.state_dict().items():
        assert torch.equal(new.state_dict()[name][: value.shape[0]], value)
    assert torch.equal(new.latent.table.weight[5:], fresh_rows)  # type: ignore[union-attr]
    with pytest.raises(ValueError, match="cannot warm-start network"):
        warm_start(BNNLV(1, 1, 8, 8, hidden=[6]), [old.state_dict()])


def test_warm_start_of_runs_together_gives_each_run_its_own_previous_round() -> None:
    """Two runs on one replica axis: run g's block of every tensor is what warm_start gives a
    model of run g alone."""
    olds = [BNNLV(1, 1, 5, 5, hidden=[4], seeds=[seed]) for seed in (3, 4)]
    together = BNNLV(1, 1, 8, 8, hidden=[4], seeds=[0, 1])
    alone = together.split_runs()
    warm_start(together, [old.state_dict() for old in olds])
    for run, old in zip(alone, olds, strict=True):
        warm_start(run, [old.state_dict()])
    for g, run in enumerate(together.split_runs()):
        for name, value in run.state_dict().items():
            assert torch.equal(value, alone[g].state_dict()[name]), name
    with pytest.raises(ValueError, match="split into 3 runs"):
        warm_start(together, [olds[0].state_dict()] * 3)


@pytest.mark.parametrize("retrain", ["scratch", "warm"])
def test_resume_after_an_interrupt_equals_an_uninterrupted_run(
    retrain: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Stopped by Ctrl-C in the middle of round 1's fit (scratch) or while it scores its
    candidates (warm), then resumed: the same active.csv and metrics.json, timings aside."""
    overrides = [*TINY_ACTIVE, f"active.retrain={retrain}", "active.batch=stochastic"]
    whole, stopped = tmp_path / "whole", tmp_path / "stopped"
    assert run_bnnlv(monkeypatch, "active", *overrides, f"hydra.run.dir={whole}") == 0
    with monkeypatch.context() as patch:
        if retrain == "scratch":
            stop_in_round_1_fit(patch)
        else:
            acquire = loop.acquire

            def stop_in_round_1(*args: Any) -> Any:
                if args[-1] == 1:
                    raise KeyboardInterrupt
                return acquire(*args)

            patch.setattr(loop, "acquire", stop_in_round_1)
        code = run_bnnlv(patch, "active", *overrides, f"hydra.run.dir={stopped}")
    assert code == 130
    assert metrics_of(stopped)["status"] == "interrupted"
    assert len(pd.read_csv(stopped / "active.csv")) == 1  # round 0 was complete
    assert run_bnnlv(monkeypatch, "active", f"resume={stopped}") == 0
    pd.testing.assert_frame_equal(
        without_timings(pd.read_csv(stopped / "active.csv")),
        without_timings(pd.read_csv(whole / "active.csv")),
    )
    drop = lambda m: {k: v for k, v in m.items() if not k.endswith("_seconds")}  # noqa: E731
    assert drop(metrics_of(stopped)) == drop(metrics_of(whole))


def test_a_model_without_bayesian_weights_is_refused_unless_random(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code = run_bnnlv(monkeypatch, "active", *TINY_ACTIVE, "model=mlp",
                     f"hydra.run.dir={tmp_path / 'mlp'}")  # fmt: skip
    assert code == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert (
        len(err) == 1 and "active.acquisition=epistemic needs a model with a distribution" in err[0]
    )
    assert not (tmp_path / "mlp" / "active.csv").exists()
    code = run_bnnlv(monkeypatch, "active", *TINY_ACTIVE, "model=mlp", "active.acquisition=random",
                     f"hydra.run.dir={tmp_path / 'random'}")  # fmt: skip
    assert code == 0
    assert metrics_of(tmp_path / "random")["n_negative_epistemic"] is None
