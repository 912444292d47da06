"""Checkpoints: atomic saves, the last good state kept on divergence, safe loading only."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import torch
from lightning.pytorch.utilities.exceptions import SIGTERMException

from bnnlv.model.divergence import DivergenceError
from bnnlv.runs.checkpoints import LAST, RunCheckpoints, load_checkpoint, save_checkpoint
from bnnlv.runs.interrupts import RunInterrupted


class FakeTrainer:
    """Stands in for ``L.Trainer``: ``save_checkpoint`` writes a dict with the epoch."""

    def __init__(self, epoch: int = 0, step: int = 0, fail_after_bytes: int | None = None):
        self.current_epoch, self.global_step = epoch, step
        self.optimizers = [object()]  # one optimiser: updates = global_step
        self.fail_after_bytes = fail_after_bytes
        self.is_global_zero = True

    def save_checkpoint(self, path: str) -> None:
        torch.save({"epoch": self.current_epoch, "weights": torch.ones(1000)}, path)
        if self.fail_after_bytes is not None:  # a crash mid-write: a truncated file
            with open(path, "r+b") as handle:
                handle.truncate(self.fail_after_bytes)
            raise OSError("disk full")


def save(trainer: FakeTrainer, path: Path) -> None:
    save_checkpoint(trainer, path)  # type: ignore[arg-type]


def test_save_then_load_round_trip(tmp_path: Path) -> None:
    save(FakeTrainer(epoch=7), tmp_path / "c" / LAST)
    loaded = load_checkpoint(tmp_path / "c" / LAST)
    assert loaded["epoch"] == 7 and torch.equal(loaded["weights"], torch.ones(1000))


def test_a_failed_save_keeps_the_previous_file_and_leaves_no_temporary(tmp_path: Path) -> None:
    path = tmp_path / LAST
    save(FakeTrainer(epoch=1), path)
    with pytest.raises(OSError, match="disk full"):
        save(FakeTrainer(epoch=2, fail_after_bytes=100), path)
    assert load_checkpoint(path)["epoch"] == 1
    assert os.listdir(tmp_path) == [LAST]


class Payload:
    """Unpickling this would create ``marker``: what a hostile checkpoint could do."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (Path.touch, (self.marker,))


def _save_signalled_mid_save(path: Path, send: Callable[[], None]) -> list[int]:
    """save_checkpoint with ``send()`` raising SIGTERM inside the trainer's save; the SIGTERMs a
    recording handler received, checking that none arrived before the save finished."""
    received: list[int] = []

    class SignalledTrainer(FakeTrainer):
        def save_checkpoint(self, filepath: Any, weights_only: bool = False) -> None:
            send()
            assert not received  # still deferred inside the save
            super().save_checkpoint(filepath)

    previous = signal.signal(signal.SIGTERM, lambda signum, frame: received.append(signum))
    try:
        save_checkpoint(SignalledTrainer(), path)  # type: ignore[arg-type]
    finally:
        signal.signal(signal.SIGTERM, previous)
    return received


POSIX_SIGNALS = pytest.mark.skipif(not hasattr(signal, "pthread_kill"), reason="POSIX signals")


@POSIX_SIGNALS
def test_a_signal_during_a_save_waits_until_the_file_is_in_place(tmp_path: Path) -> None:
    """SIGTERM arriving mid-save is handled after the rename: last.ckpt is complete and no
    temporary file is left (the interrupt's own save then replaces it cleanly)."""
    path = tmp_path / LAST
    received = _save_signalled_mid_save(path, lambda: os.kill(os.getpid(), signal.SIGTERM))
    assert received == [signal.SIGTERM]
    assert load_checkpoint(path)["epoch"] == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == [LAST]


@POSIX_SIGNALS
def test_a_signal_landing_on_another_thread_during_a_save_also_waits(tmp_path: Path) -> None:
    """The kernel may hand a process signal to any thread (torch's workers too): the deferral
    must hold whichever thread receives it."""
    release = threading.Event()
    worker = threading.Thread(target=release.wait)
    worker.start()

    def send() -> None:
        assert worker.ident is not None
        signal.pthread_kill(worker.ident, signal.SIGTERM)
        time.sleep(0.05)  # room for the main thread to run a handler if one were due

    try:
        received = _save_signalled_mid_save(tmp_path / LAST, send)
    finally:
        release.set()
        worker.join()
    assert received == [signal.SIGTERM]
    assert sorted(p.name for p in tmp_path.iterdir()) == [LAST]


def test_a_checkpoint_holding_code_is_refused_without_running_it(tmp_path: Path) -> None:
    marker = tmp_path / "code_ran"
    path = tmp_path / "hostile.ckpt"
    torch.save({"state_dict": Payload(marker)}, path)
    with pytest.raises(ValueError, match=r"hostile.ckpt: refused.*weights_only=True"):
        load_checkpoint(path)
    assert not marker.exists()
    torch.load(path, weights_only=False)  # the unsafe load does run it: the payload is real
    assert marker.exists()


@pytest.mark.parametrize(
    ("content", "words"),
    [(None, "no such checkpoint file"), (b"a,b\n1,2\n", "not a torch checkpoint")],
    ids=["missing", "csv"],
)
def test_not_a_checkpoint(tmp_path: Path, content: bytes | None, words: str) -> None:
    path = tmp_path / "x.ckpt"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(ValueError, match=words):
        load_checkpoint(path)


def test_a_checkpoint_holding_a_tensor_only_is_rejected(tmp_path: Path) -> None:
    torch.save(torch.zeros(2), tmp_path / "t.ckpt")
    with pytest.raises(ValueError, match=r"not a checkpoint.*Tensor"):
        load_checkpoint(tmp_path / "t.ckpt")


# ---------------------------------------------------------------------------------------------
# RunCheckpoints


def hook(callback: RunCheckpoints, name: str, trainer: FakeTrainer, *args: Any) -> None:
    getattr(callback, name)(trainer, SimpleNamespace(), *args)


@pytest.mark.parametrize(("every", "saved_epochs"), [(3, [2, 5, 8]), (1, list(range(10)))])
def test_periodic_saves(tmp_path: Path, every: int, saved_epochs: list[int]) -> None:
    callback = RunCheckpoints(tmp_path, every)
    seen = []
    for epoch in range(10):
        hook(callback, "on_train_epoch_end", FakeTrainer(epoch))
        if callback.saved and load_checkpoint(callback.path)["epoch"] == epoch:
            seen.append(epoch)
    assert seen == saved_epochs


def test_no_periodic_saves_when_disabled(tmp_path: Path) -> None:
    callback = RunCheckpoints(tmp_path, None)
    for epoch in range(5):
        hook(callback, "on_train_epoch_end", FakeTrainer(epoch))
    assert callback.saved is None


def test_divergence_keeps_the_last_periodic_save(tmp_path: Path) -> None:
    callback = RunCheckpoints(tmp_path, 2)
    for epoch in range(5):
        hook(callback, "on_train_epoch_end", FakeTrainer(epoch))
    hook(callback, "on_exception", FakeTrainer(5, 10), DivergenceError("non-finite energy"))
    assert load_checkpoint(callback.path)["epoch"] == 3
    assert callback.stopped_at == (5, 10) and callback.interrupt is None


@pytest.mark.parametrize(
    ("exception", "name"),
    [
        (KeyboardInterrupt(), "SIGINT"),
        (RunInterrupted("SIGTERM"), "SIGTERM"),
        (SIGTERMException(), "SIGTERM"),  # Lightning's own SIGTERM flag
    ],
    ids=["ctrl-c", "our-sigterm", "lightning-sigterm"],
)
def test_an_interrupt_saves_where_it_stopped(
    tmp_path: Path, exception: BaseException, name: str
) -> None:
    callback = RunCheckpoints(tmp_path, 100)
    hook(callback, "on_train_epoch_start", FakeTrainer(0, 0))
    hook(callback, "on_exception", FakeTrainer(4, 8), exception)
    assert load_checkpoint(callback.path)["epoch"] == 4
    assert callback.interrupt is not None
    assert (callback.interrupt.signal_name, callback.interrupt.epoch) == (name, 4)
    assert str(callback.interrupt) == f"interrupted by {name} at epoch 4, step 8"


@pytest.mark.parametrize("began_at", [None, 8], ids=["before-training", "no-update-yet"])
def test_an_interrupt_before_the_fits_first_update_saves_nothing(
    tmp_path: Path, began_at: int | None
) -> None:
    """Nothing new to keep: a resumed run's checkpoint stands as it is, a fresh run has none."""
    callback = RunCheckpoints(tmp_path, 100)
    if began_at is not None:  # a fit resumed at update 8 begins its epoch, then is stopped
        hook(callback, "on_train_epoch_start", FakeTrainer(4, began_at))
    hook(callback, "on_exception", FakeTrainer(4, 8), KeyboardInterrupt())
    assert callback.saved is None and callback.interrupt is not None
    assert callback.stopped_at == (4, 8)


def test_keep_narrows_the_saved_runs_to_those_still_training(tmp_path: Path) -> None:
    checkpoints = RunCheckpoints([tmp_path / "a", tmp_path / "b", tmp_path / "c"], None)
    checkpoints.keep([0, 2])
    assert checkpoints.paths == [tmp_path / "a" / LAST, tmp_path / "c" / LAST]
    checkpoints.keep([1])  # indices into the runs kept before
    assert checkpoints.paths == [tmp_path / "c" / LAST] and checkpoints.path == checkpoints.paths[0]
