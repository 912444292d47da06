"""Runs trained together on the replica axis (runs.train.train_replicas, runs.replicas): each
run's folder holds what a run trained alone writes, to float rounding, and resumes alone."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import torch
from omegaconf import DictConfig

from bnnlv.model.lit_module import BNNLV
from bnnlv.runs.checkpoints import load_checkpoint
from bnnlv.runs.replicas import PER_RUN, split_checkpoint
from bnnlv.runs.state import KEY
from bnnlv.runs.train import train, train_replicas
from tests.cli_inprocess import TINY, run_bnnlv, stopping_at_epoch

LIGHTNING_FIT = pytest.mark.filterwarnings("ignore:.*LeafSpec.*:FutureWarning")
# 3 epochs of 5 updates (42 rows in batches of 10), validated every epoch, saved every epoch
SETTINGS = [*TINY, "trainer.max_epochs=3", "data.batch_size=10",
            "trainer.check_val_every_n_epoch=1", "checkpoint_every=1"]  # fmt: skip


def _metrics(folder: Path) -> dict[str, Any]:
    return dict(json.loads((folder / "metrics.json").read_text()))


def _assert_same_run(together: Path, alone: Path) -> None:
    """Every file of the folder the same, to float rounding: metrics.json but its timings,
    predictions.csv, the log and the checkpoint's model."""
    got, want = _metrics(together), _metrics(alone)
    assert got.keys() == want.keys() and got["status"] == "ok"
    for key, value in want.items():
        if isinstance(value, float) and not key.endswith("_seconds"):
            assert got[key] == pytest.approx(value, rel=1e-4, abs=1e-6), key
        elif not key.endswith("_seconds"):
            assert got[key] == value, key
    for name in ("predictions.csv", "logs/metrics.csv"):
        frame, expected = pd.read_csv(together / name), pd.read_csv(alone / name)
        assert list(frame.columns) == list(expected.columns), name
        pd.testing.assert_frame_equal(frame, expected, rtol=1e-4, atol=1e-6)
    got_ckpt = load_checkpoint(together / "checkpoints" / "last.ckpt")
    want_ckpt = load_checkpoint(alone / "checkpoints" / "last.ckpt")
    assert got_ckpt["hyper_parameters"] == want_ckpt["hyper_parameters"]
    for name, tensor in want_ckpt["state_dict"].items():
        torch.testing.assert_close(got_ckpt["state_dict"][name], tensor, rtol=1e-4, atol=1e-6)


@LIGHTNING_FIT
@pytest.mark.parametrize("model", ["model=bnn_lv", "model=ensemble"])
def test_runs_trained_together_write_what_runs_trained_alone_write(
    model: str, compose_train: Callable[..., DictConfig], tmp_path: Path
) -> None:
    """Seeds 0 and 1 of one config in one process: both folders as if each run had been alone
    (the ensemble: 2 runs × 2 members on one replica axis)."""
    extra = [model, "model.members=2"] if model == "model=ensemble" else [model]
    cfgs = [compose_train(*SETTINGS, *extra, f"seed={seed}") for seed in (0, 1)]
    together = [tmp_path / f"together{seed}" for seed in (0, 1)]
    results = train_replicas(cfgs, together)
    assert [r["status"] for r in results] == ["ok", "ok"]
    for seed, (cfg, folder) in enumerate(zip(cfgs, together, strict=True)):
        alone = tmp_path / f"alone{seed}"
        train(cfg, alone)
        _assert_same_run(folder, alone)
        assert (folder / "config.yaml").read_text() == (alone / "config.yaml").read_text()


@LIGHTNING_FIT
def test_a_run_of_a_group_stopped_midway_resumes_alone_to_where_it_would_have_ended(
    compose_train: Callable[..., DictConfig], tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    """The group's periodic checkpoint is split into each run's own: after a stop in epoch 2,
    ``resume=`` of run 1's folder, alone, ends at the metrics of run 1 never stopped."""
    cfgs = [compose_train(*SETTINGS, f"seed={seed}") for seed in (3, 4)]
    folders = [tmp_path / f"run{seed}" for seed in (3, 4)]
    with monkeypatch.context() as patch:
        patch.setattr(BNNLV, "on_train_epoch_start", stopping_at_epoch(2))
        with pytest.raises(RuntimeError, match="machine went away"):
            train_replicas(cfgs, folders)
    for folder, seed in zip(folders, (3, 4), strict=True):
        record = _metrics(folder)
        assert record["status"] == "failed" and record["epoch"] == 2
        assert record["checkpoint"] == "checkpoints/last.ckpt"
        assert load_checkpoint(folder / "checkpoints" / "last.ckpt")["hyper_parameters"][
            "seeds"
        ] == [seed]
    assert run_bnnlv(monkeypatch, "train", f"resume={folders[1]}") == 0
    alone = tmp_path / "alone"
    train(cfgs[1], alone)
    got, want = _metrics(folders[1]), _metrics(alone)
    for key, value in want.items():
        if isinstance(value, float) and not key.endswith("_seconds"):
            assert got[key] == pytest.approx(value, rel=1e-4, abs=1e-6), key


@LIGHTNING_FIT
def test_a_diverged_run_fails_alone_and_keeps_its_last_good_checkpoint(
    compose_train: Callable[..., DictConfig], tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    """Run 1's noise turns NaN at the start of epoch 1: it is recorded as failed there, with
    its epoch-0 checkpoint; run 0 trains on to the metrics of a run trained alone."""
    cfgs = [compose_train(*SETTINGS, f"seed={seed}") for seed in (0, 1)]
    folders = [tmp_path / f"run{seed}" for seed in (0, 1)]
    start_epoch = BNNLV.on_train_epoch_start

    def break_run_1(self: BNNLV) -> None:
        if self.current_epoch == 1 and self.replicas == 2:
            with torch.no_grad():
                self.noise.log_var[1].fill_(math.nan)
        start_epoch(self)

    with monkeypatch.context() as patch:
        patch.setattr(BNNLV, "on_train_epoch_start", break_run_1)
        results = train_replicas(cfgs, folders)
    assert results[0]["status"] == "ok"
    failed = _metrics(folders[1])
    assert failed["status"] == "failed" and failed["error_type"] == "DivergenceError"
    assert failed["error"] == "non-finite energy nan at epoch 1, step 5"
    assert (failed["epoch"], failed["step"]) == (1, 5)
    assert load_checkpoint(folders[1] / "checkpoints" / "last.ckpt")["epoch"] == 0
    alone = tmp_path / "alone"
    train(cfgs[0], alone)
    _assert_same_run(folders[0], alone)


def test_as_many_run_folders_as_run_configs(compose_train: Callable[..., DictConfig]) -> None:
    with pytest.raises(ValueError, match=r"^2 run configs but 1 run folders$"):
        train_replicas([compose_train(), compose_train()], [Path("one")])


def test_a_per_run_entry_splits_into_each_runs_own_value() -> None:
    """checkpoint[PER_RUN] = {name: [value of run 0, of run 1]}: run g's checkpoint holds its
    value as ``name``, no PER_RUN, and the shared entries as they are."""
    whole = {
        "hyper_parameters": {"seeds": [4, 5]},
        "state_dict": {"w": torch.arange(4.0).reshape(2, 2)},
        "optimizer_states": [],
        KEY: {"runs": [{"scaler": 0}, {"scaler": 1}],
              "position": {"shuffle": ["s4", "s5"], "torch": ["t4", "t5"]}},
        PER_RUN: {"bnnlv_active": [{"rows": [0]}, {"rows": [1]}]},
        "epoch": 3,
    }  # fmt: skip
    parts = split_checkpoint(whole, 2)
    for g, part in enumerate(parts):
        assert part["bnnlv_active"] == {"rows": [g]} and PER_RUN not in part
        assert part["epoch"] == 3 and part["hyper_parameters"]["seeds"] == [4 + g]
        assert part[KEY]["scaler"] == g and part[KEY]["position"]["torch"] == [f"t{4 + g}"]
        assert torch.equal(part["state_dict"]["w"], torch.tensor([[2.0 * g, 2.0 * g + 1]]))
    whole[PER_RUN] = {"bnnlv_active": [{"rows": [0]}]}
    with pytest.raises(ValueError, match="bnnlv_per_run entry of another length"):
        split_checkpoint(whole, 2)
