"""bnnlv.runs.interrupts: signals raise RunInterrupted, except inside deferred blocks."""

from __future__ import annotations

import os
import signal
import time

import pytest

from bnnlv.runs.interrupts import (
    RunInterrupted,
    as_run_interrupted,
    interrupts_deferred,
    interrupts_raised,
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
