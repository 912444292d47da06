"""bnnlv.runs.resume: the resumed config, the training log joined across the stop, and a resumed
run that ends exactly as the run that was never stopped."""

from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import lightning as L
import pandas as pd
import pytest
from omegaconf import OmegaConf

from bnnlv.model.lit_module import BNNLV
from bnnlv.runs.checkpoints import load_checkpoint
from bnnlv.runs.resume import LOG_BEFORE, LOG_FILE, join_logs, resume_config, set_aside_logs
from tests.cli_inprocess import TINY, run_bnnlv


@pytest.fixture
def run(tmp_path: Path) -> Path:
    (tmp_path / "checkpoints").mkdir()
    (tmp_path / "checkpoints" / "last.ckpt").write_bytes(b"")
    cfg = {"seed": 3, "resume": None, "trainer": {"max_epochs": 10}, "model": {"lr": 0.1}}
    OmegaConf.save(OmegaConf.create(cfg), tmp_path / "config.yaml")
    return tmp_path


def test_resume_config_is_the_saved_config_with_plain_overrides(run: Path) -> None:
    cfg = resume_config(str(run), [f"resume={run}", "trainer.max_epochs=20"])
    assert cfg.seed == 3 and cfg.model.lr == 0.1
    assert cfg.trainer.max_epochs == 20 and cfg.resume == str(run)


@pytest.mark.parametrize("override", ["model=mlp", "+extra=1", "~seed", "hydra.verbose=true"])
def test_resume_config_rejects_edits_of_the_config(run: Path, override: str) -> None:
    with pytest.raises(ValueError, match="cannot be combined with resume="):
        resume_config(str(run), [override])


def test_resume_config_rejects_an_unknown_key(run: Path) -> None:
    with pytest.raises(Exception, match="max_epoch"):
        resume_config(str(run), ["trainer.max_epoch=20"])


def test_resume_config_needs_a_checkpoint(run: Path) -> None:
    (run / "checkpoints" / "last.ckpt").unlink()
    with pytest.raises(ValueError, match="no checkpoint"):
        resume_config(str(run), [])


def log(epochs: range, value: float) -> pd.DataFrame:
    return pd.DataFrame({"epoch": list(epochs), "train/rmse": [value] * len(epochs)})


def test_logs_before_the_stop_are_joined_with_the_resumed_ones(tmp_path: Path) -> None:
    (tmp_path / "logs").mkdir()
    log(range(4), 1.0).to_csv(tmp_path / LOG_FILE, index=False)  # epochs 0-3 logged, then stop
    (tmp_path / "logs" / "hparams.yaml").write_text("{}\n")
    set_aside_logs(tmp_path)
    assert (tmp_path / LOG_BEFORE).is_file() and not (tmp_path / LOG_FILE).exists()
    # Lightning warns "Previous log files in this directory will be deleted" unless it is empty
    assert not list((tmp_path / "logs").iterdir())
    log(range(2, 6), 2.0).to_csv(tmp_path / LOG_FILE, index=False)  # resumed from epoch 2
    join_logs(tmp_path)
    joined = pd.read_csv(tmp_path / LOG_FILE)
    assert list(joined["epoch"]) == [0, 1, 2, 3, 4, 5]
    assert list(joined["train/rmse"]) == [1.0, 1.0, 2.0, 2.0, 2.0, 2.0]
    assert not (tmp_path / LOG_BEFORE).exists()
    join_logs(tmp_path)  # nothing set aside: unchanged
    assert pd.read_csv(tmp_path / LOG_FILE).equals(joined)


# ---------------------------------------------------------------------------------------------
# Exact resume: stopped anywhere, a resumed run ends as the uninterrupted one, bit for bit (CPU)

# 42 training points in minibatches of 2: 21 updates an epoch, in Lightning batches (groups) of
# 16 and 5; validation and a checkpoint after every epoch.
EXACT = [*TINY, "data.n_points=60", "data.batch_size=2", "trainer.max_epochs=3",
         "trainer.check_val_every_n_epoch=1", "checkpoint_every=1"]  # fmt: skip
PER_EPOCH = 21


def stop_on_call(
    monkeypatch: pytest.MonkeyPatch, owner: object, name: str, call: int,
    signum: signal.Signals = signal.SIGINT,
) -> None:  # fmt: skip
    """A real signal to this process at the ``call``-th call of ``owner.name``."""
    original = getattr(owner, name)
    calls = itertools.count(1)

    def signalled(*args: Any, **kwargs: Any) -> Any:
        if next(calls) == call:
            os.kill(os.getpid(), signum)
        return original(*args, **kwargs)

    monkeypatch.setattr(owner, name, signalled)


def outcome(run_dir: Path) -> tuple[dict[str, Any], bytes]:
    """metrics.json without its timings, and the training log's bytes."""
    metrics = json.loads((run_dir / "metrics.json").read_text())
    timeless = {key: value for key, value in metrics.items() if not key.endswith("_seconds")}
    return timeless, (run_dir / LOG_FILE).read_bytes()


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], bytes]:
    run_dir = tmp_path_factory.mktemp("uninterrupted") / "run"
    with pytest.MonkeyPatch.context() as patch:
        assert run_bnnlv(patch, "train", *EXACT, f"hydra.run.dir={run_dir}") == 0
    return outcome(run_dir)


# (where the signal is sent, the position the checkpoint then records: epoch, updates done in it)
STOPS = [
    pytest.param(BNNLV, "_update", PER_EPOCH + 6, (1, 6), id="mid-group"),
    pytest.param(BNNLV, "_update", PER_EPOCH + 18, (1, 18), id="mid-second-group"),
    pytest.param(BNNLV, "_update", 2 * PER_EPOCH, (1, 21), id="after-the-epochs-last-update"),
    pytest.param(BNNLV, "training_step", 3, (1, 0), id="between-groups-at-an-epoch-boundary"),
    pytest.param(BNNLV, "on_train_epoch_start", 2, (1, 0), id="in-the-epoch-start-hook"),
    pytest.param(BNNLV, "validation_step", 2, (1, 21), id="during-validation"),
    pytest.param(L.Trainer, "save_checkpoint", 2, (1, 21), id="during-a-checkpoint-save"),
    pytest.param(BNNLV, "on_train_epoch_end", 2, (1, 21), id="before-the-epochs-log-row"),
]


@pytest.mark.parametrize(("owner", "name", "call", "position"), STOPS)
def test_a_run_stopped_anywhere_resumes_exactly(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    uninterrupted: tuple[dict[str, Any], bytes],
    owner: object,
    name: str,
    call: int,
    position: tuple[int, int],
) -> None:
    """A signal inside an update is handled once the update is made; anywhere else at once."""
    run_dir = tmp_path / "run"
    with monkeypatch.context() as patch:
        stop_on_call(patch, owner, name, call)
        assert run_bnnlv(patch, "train", *EXACT, f"hydra.run.dir={run_dir}") == 130
    assert json.loads((run_dir / "metrics.json").read_text())["status"] == "interrupted"
    saved = load_checkpoint(run_dir / "checkpoints" / "last.ckpt")["bnnlv"]["position"]
    assert (saved["epoch"], saved["done"]) == position
    assert run_bnnlv(monkeypatch, "train", f"resume={run_dir}") == 0
    assert outcome(run_dir) == uninterrupted


def test_a_resumed_run_stopped_again_and_sigterm_resume_exactly(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, uninterrupted: tuple[dict[str, Any], bytes]
) -> None:
    run_dir = tmp_path / "run"
    with monkeypatch.context() as patch:
        stop_on_call(patch, BNNLV, "_update", 5, signal.SIGTERM)  # in the first epoch
        assert run_bnnlv(patch, "train", *EXACT, f"hydra.run.dir={run_dir}") == 143
    with monkeypatch.context() as patch:
        stop_on_call(patch, BNNLV, "_update", 30)  # the resumed fit's 30th update: epoch 1
        assert run_bnnlv(patch, "train", f"resume={run_dir}") == 130
    with monkeypatch.context() as patch:  # stopped before its first update: the checkpoint stands
        stop_on_call(patch, BNNLV, "training_step", 1)
        assert run_bnnlv(patch, "train", f"resume={run_dir}") == 130
    assert run_bnnlv(monkeypatch, "train", f"resume={run_dir}") == 0
    assert outcome(run_dir) == uninterrupted
    assert not (run_dir / LOG_BEFORE).exists()


@pytest.mark.slow
@pytest.mark.parametrize("delay", [0.05, 0.4, 1.3])
def test_a_real_sigint_at_an_arbitrary_moment_resumes_exactly(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, delay: float
) -> None:
    """Ctrl-C to a real ``bnnlv train``, ``delay`` seconds after its first checkpoint: wherever it
    lands, the resumed run matches the uninterrupted one."""
    longer = [*EXACT, "trainer.max_epochs=30"]
    whole, cut = tmp_path / "whole", tmp_path / "cut"
    assert run_bnnlv(monkeypatch, "train", *longer, f"hydra.run.dir={whole}") == 0
    process = subprocess.Popen(
        [sys.executable, "-m", "bnnlv.runs.cli", "train", *longer, f"hydra.run.dir={cut}"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )  # fmt: skip
    deadline = time.monotonic() + 120
    while not (cut / "checkpoints" / "last.ckpt").exists() and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(delay)
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=120)
    assert process.returncode == 130, err
    assert len(err.strip().splitlines()) == 1 and "interrupted by SIGINT" in err
    assert run_bnnlv(monkeypatch, "train", f"resume={cut}") == 0
    assert outcome(cut) == outcome(whole)


def test_a_command_may_resume_without_a_checkpoint_and_name_its_own_groups(run: Path) -> None:
    (run / "checkpoints" / "last.ckpt").unlink()
    cfg = resume_config(str(run), ["seed=4"], groups=("policy",), need_checkpoint=False)
    assert cfg.seed == 4 and cfg.resume == str(run)
    with pytest.raises(ValueError, match="cannot be combined with resume="):
        resume_config(str(run), ["policy=other"], groups=("policy",), need_checkpoint=False)
