"""bnnlv.runs.interrupts: signals raise RunInterrupted, except inside deferred blocks."""

from __future__ import annotations

import contextlib
import importlib
import os
import signal
import time
from pathlib import Path

import pytest

from bnnlv.runs.interrupts import (
    RunInterrupted,
    as_run_interrupted,
    interrupt_behind,
    interrupts_deferred,
    interrupts_raised,
    interrupts_surfaced,
    update_deferred,
)


def send(signum: signal.Signals) -> None:
    """A real signal to this process; the handler runs at the next bytecode."""
    os.kill(os.getpid(), signum)
    time.sleep(0.01)


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_raises_run_interrupted_and_the_handlers_are_restored_after(
    signum: signal.Signals, code: int
) -> None:
    before = [signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)]
    with pytest.raises(RunInterrupted) as stop, interrupts_raised():
        send(signum)
        time.sleep(5)  # never reached
    assert stop.value.signal_name == signum.name and stop.value.exit_code == code
    assert str(stop.value) == f"interrupted by {signum.name}"
    assert [signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)] == before


def test_a_signal_inside_a_deferred_block_is_raised_when_the_block_ends() -> None:
    finished = []
    with pytest.raises(RunInterrupted, match="SIGTERM"), interrupts_raised():
        with interrupts_deferred():
            with interrupts_deferred():  # nested: raised at the outermost end only
                send(signal.SIGTERM)
                finished.append("inner")
            finished.append("outer")
        finished.append("after")  # never reached
    assert finished == ["inner", "outer"]


def test_signals_after_the_first_interrupt_are_ignored() -> None:
    """A second Ctrl-C must not cut the shutdown (the interrupt checkpoint, metrics.json)."""
    with pytest.raises(RunInterrupted, match="SIGINT"), interrupts_raised():
        try:
            send(signal.SIGINT)
        finally:
            send(signal.SIGTERM)  # during the clean-up: ignored
            with interrupts_deferred():
                send(signal.SIGINT)  # recorded, but not raised again


def test_deferral_without_the_gate_swaps_the_handlers_for_the_block() -> None:
    received: list[int] = []
    previous = signal.signal(signal.SIGTERM, lambda signum, frame: received.append(signum))
    try:
        with interrupts_deferred():
            send(signal.SIGTERM)
            assert received == []
        assert received == [signal.SIGTERM]
    finally:
        signal.signal(signal.SIGTERM, previous)


def test_nested_interrupts_raised_keeps_the_outer_handlers() -> None:
    with interrupts_raised():
        outer = signal.getsignal(signal.SIGTERM)
        with interrupts_raised():
            assert signal.getsignal(signal.SIGTERM) is outer
        assert signal.getsignal(signal.SIGTERM) is outer


@pytest.mark.parametrize(("name", "code"), [("SIGINT", 130), ("SIGTERM", 143)])
def test_run_interrupted_exit_codes(name: str, code: int) -> None:
    stop = RunInterrupted(name, epoch=3, step=6)
    assert stop.exit_code == code
    assert str(stop) == f"interrupted by {name} at epoch 3, step 6"
    assert isinstance(stop, KeyboardInterrupt)
    assert as_run_interrupted(KeyboardInterrupt()).signal_name == "SIGINT"
    assert as_run_interrupted(stop) is stop


class HalfMade:
    """A library object whose cleanup fails when an interrupt cut its set-up short (OmegaConf's
    nodes do: ``'NoneType' object has no attribute '_invalidate_flags_cache'``)."""

    def __init__(self) -> None:
        self.parent = None
        try:
            send(signal.SIGINT)  # the interrupt lands before the parent is set
            self.parent = object()
        finally:
            self.parent.invalidate()  # type: ignore[attr-defined]


def test_an_error_from_cleanup_cut_short_by_an_interrupt_is_raised_as_the_interrupt() -> None:
    with pytest.raises(RunInterrupted) as stop, interrupts_raised(), interrupts_surfaced():
        HalfMade()
    assert str(stop.value) == "interrupted by SIGINT" and stop.value.exit_code == 130
    assert isinstance(stop.value.__cause__, AttributeError)


def test_an_error_whose_chain_was_cut_still_counts_once_the_handler_has_raised() -> None:
    with pytest.raises(RunInterrupted, match="SIGTERM"), interrupts_raised(), interrupts_surfaced():
        with contextlib.suppress(KeyboardInterrupt):  # a library swallowed it ...
            send(signal.SIGTERM)
        raise ValueError("bad state") from None  # ... and failed later, with no chain


def test_errors_without_an_interrupt_pass_through_unchanged() -> None:
    with pytest.raises(ValueError, match="plain"), interrupts_raised(), interrupts_surfaced():
        raise ValueError("plain")
    assert interrupt_behind(ValueError("outside")) is None
    chained = ValueError("after a Ctrl-C")
    chained.__context__ = KeyboardInterrupt()
    assert str(interrupt_behind(chained)) == "interrupted by SIGINT"


def test_a_signal_during_an_import_is_raised_once_the_import_is_over(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Raised inside an import, the interrupt could reach C++ that imports Python (torch's
    start-up), which aborts the process; so it waits until the import is over."""
    (tmp_path / "slow_to_import.py").write_text(
        "import os, signal, time\nos.kill(os.getpid(), signal.SIGINT)\ntime.sleep(0.3)\n"
        "FINISHED = True\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    imported = []
    with pytest.raises(RunInterrupted, match="SIGINT"), interrupts_raised():
        imported.append(importlib.import_module("slow_to_import").FINISHED)
        time.sleep(5)  # the signal, sent again, lands here
    assert imported == [True]


def test_an_update_after_a_swallowed_interrupt_raises_it_again() -> None:
    with pytest.raises(RunInterrupted, match="SIGTERM"), interrupts_raised():
        with contextlib.suppress(KeyboardInterrupt):  # e.g. raised in a finaliser: only printed
            send(signal.SIGTERM)
        with update_deferred():
            pytest.fail("an update ran after the interrupt")
    with update_deferred():  # outside bnnlv's handlers: an ordinary deferred block
        pass
