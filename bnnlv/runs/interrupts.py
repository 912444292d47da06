"""Interrupts (SIGINT, SIGTERM) as an exception that knows its signal, raised only where a run can
stop cleanly.

While :func:`interrupts_raised` is active (the whole ``bnnlv`` command), both signals raise
:class:`RunInterrupted`, a ``KeyboardInterrupt``, in the main thread: Python's default for SIGTERM
would kill the process at once, leaving ``status: running`` and no checkpoint behind. Inside an
:func:`interrupts_deferred` block (one training update, a checkpoint save) a signal is recorded
and raised when the block ends, so that an update is made whole or not at all and no file is left
half-written. The first interrupt stops the command; signals after it are ignored, so that a second
Ctrl-C cannot cut the shutdown (the interrupt checkpoint, ``metrics.json``) short.

This module imports only the standard library: the CLI installs it before importing anything
heavy, so that Ctrl-C during ``import torch`` is one line too.
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from types import FrameType

SIGNALS = (signal.SIGINT, signal.SIGTERM)
IMPORT_FILES = ("<frozen importlib._bootstrap>", "<frozen importlib._bootstrap_external>")
RETRY_SECONDS = 0.05  # a signal that arrived during an import is sent again this much later


class RunInterrupted(KeyboardInterrupt):
    """A signal stopped the run; ``exit_code`` is the shell's 128 + signal number."""

    def __init__(self, signal_name: str, epoch: int | None = None, step: int | None = None):
        where = "" if epoch is None else f" at epoch {epoch}, step {step}"
        super().__init__(f"interrupted by {signal_name}{where}")
        self.signal_name = signal_name
        self.epoch, self.step = epoch, step

    @property
    def exit_code(self) -> int:
        return 128 + int(signal.Signals[self.signal_name])


def as_run_interrupted(stop: KeyboardInterrupt) -> RunInterrupted:
    """``stop`` itself, or a plain KeyboardInterrupt (Python's own SIGINT handler) as SIGINT."""
    return stop if isinstance(stop, RunInterrupted) else RunInterrupted("SIGINT")


class _Gate:
    """The SIGINT / SIGTERM handler while :func:`interrupts_raised` is active, and the context
    manager of :func:`interrupts_deferred` then: entering and leaving it costs two integer updates,
    cheap enough to wrap every training update (the handlers are never swapped per block)."""

    def __init__(self) -> None:
        self.active = False
        self.depth = 0  # nesting of deferred blocks
        self.caught: list[int] = []  # signals received inside a deferred block
        self.raised: RunInterrupted | None = None  # the interrupt raised: ignore later signals

    def __call__(self, signum: int, frame: FrameType | None) -> None:
        if self.raised is not None:
            return
        if self.depth:
            self.caught.append(signum)
            return
        if _importing(frame):
            _send_later(signum)
            return
        self._raise(signum)

    def _raise(self, signum: int) -> None:
        self.raised = RunInterrupted(signal.Signals(signum).name)
        raise self.raised

    def __enter__(self) -> None:
        self.depth += 1

    def __exit__(self, *exc_info: object) -> None:
        self.depth -= 1
        if self.depth == 0 and self.caught and self.raised is None:
            signum = self.caught[0]
            self.caught.clear()
            self._raise(signum)


_GATE = _Gate()


def _importing(frame: FrameType | None) -> bool:
    """Whether ``frame`` runs inside an import. An exception raised there can reach C++ that
    imports Python modules (torch's start-up), which then aborts the process
    (``terminate called after throwing an instance of 'pybind11::error_already_set'``)."""
    while frame is not None:
        if frame.f_code.co_filename in IMPORT_FILES:
            return True
        frame = frame.f_back
    return False


def _send_later(signum: int) -> None:
    """Send ``signum`` to this process again in RETRY_SECONDS, while the handler is still ours."""

    def send() -> None:
        if _GATE.active:
            os.kill(os.getpid(), signum)

    timer = threading.Timer(RETRY_SECONDS, send)
    timer.daemon = True
    timer.start()


def _main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


@contextmanager
def interrupts_raised() -> Iterator[None]:
    """While inside, SIGINT and SIGTERM raise :class:`RunInterrupted` (deferred inside
    :func:`interrupts_deferred` blocks); the previous handlers are restored on leaving.

    Nested use is a no-op. Signal handlers can only be set from the main thread; elsewhere this
    is a no-op too.
    """
    if _GATE.active or not _main_thread():
        yield
        return
    previous = [signal.getsignal(s) for s in SIGNALS]
    _GATE.depth, _GATE.caught, _GATE.raised = 0, [], None
    _GATE.active = True
    for s in SIGNALS:
        signal.signal(s, _GATE)
    try:
        yield
    finally:
        for s, handler in zip(SIGNALS, previous, strict=True):
            signal.signal(s, handler if handler is not None else signal.SIG_DFL)
        _GATE.active = False


def interrupt_behind(error: BaseException) -> RunInterrupted | None:
    """The interrupt that ``error`` comes from, if any: one in its chain of causes, or the one
    this command's handler raised.

    An interrupt can cut a library halfway through a ``try``/``finally`` whose cleanup then fails
    on the half-made state (OmegaConf: ``'NoneType' object has no attribute
    '_invalidate_flags_cache'``), replacing the interrupt by its own error, possibly with the
    chain cut. Once the handler has raised, any error is the stop's doing.
    """
    seen: set[int] = set()
    cause: BaseException | None = error
    while cause is not None and id(cause) not in seen:
        if isinstance(cause, KeyboardInterrupt):
            return as_run_interrupted(cause)
        seen.add(id(cause))
        cause = cause.__cause__ or cause.__context__
    return _raised_in_this_command()


def _raised_in_this_command() -> RunInterrupted | None:
    return _GATE.raised if _GATE.active else None


def _again(stop: RunInterrupted) -> RunInterrupted:
    """A fresh exception for ``stop``, to raise it a second time."""
    return RunInterrupted(stop.signal_name, stop.epoch, stop.step)


@contextmanager
def interrupts_surfaced() -> Iterator[None]:
    """Raise an error that an interrupt caused (:func:`interrupt_behind`) as that interrupt, so
    that the user reads one ``interrupted by SIGINT`` line and the exit is 128 + signal."""
    try:
        yield
    except Exception as error:
        stop = interrupt_behind(error)
        if stop is None:
            raise
        raise _again(stop) from error


def update_deferred() -> AbstractContextManager[object]:
    """:func:`interrupts_deferred` for one training update, after raising again an interrupt that
    was raised and then swallowed: no update follows an interrupt. (Python only prints an
    exception raised in a finaliser, and a library may catch BaseException.)"""
    stop = _raised_in_this_command()
    if stop is not None:
        raise _again(stop)
    return interrupts_deferred()


def interrupts_deferred() -> AbstractContextManager[object]:
    """A block that SIGINT and SIGTERM do not cut: a signal arriving inside is handled when the
    block ends.

    For work that must not be cut in two: one training update (drawing the noise, the gradient,
    every optimiser's step and the epoch's running sums: a checkpoint taken in between would hold a
    half-made update) and a checkpoint save (a signal between creating the temporary file and the
    ``try`` that removes it would leave the file behind); both take milliseconds. Under
    :func:`interrupts_raised` this is the cheap gate; otherwise the Python handlers are swapped for
    a recorder and the recorded signals raised again afterwards. Python runs handlers in the main
    thread whichever thread the kernel picked (a blocked signal mask would cover the calling thread
    only, and torch's worker threads take process signals). Outside the main thread: no deferral.
    """
    if not _main_thread():
        return nullcontext()
    if _GATE.active:
        return _GATE
    return _swapped_handlers()


@contextmanager
def _swapped_handlers() -> Iterator[None]:
    previous = [signal.getsignal(s) for s in SIGNALS]
    if None in previous:  # a handler not set from Python: leave it alone
        yield
        return
    caught: list[int] = []
    for s in SIGNALS:
        signal.signal(s, lambda signum, frame: caught.append(signum))
    try:
        yield
    finally:
        for s, handler in zip(SIGNALS, previous, strict=True):
            signal.signal(s, handler)
        for signum in caught:
            signal.raise_signal(signum)
