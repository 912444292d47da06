"""Why a run stopped, in one line: failures and interrupts as the user should read them.

Hydra wraps constructor errors (``InstantiationException``) and OmegaConf wraps key errors; the
user needs neither wrapper, only the innermost reason with the key, the value and, where there is
a fixed set, the allowed values. :func:`describe` produces that line for the CLI and for
``metrics.json``. Interrupts (SIGINT, SIGTERM) become :class:`RunInterrupted`, a
``KeyboardInterrupt`` that knows its signal, so that a run can save a checkpoint and say
``interrupted`` instead of dying mid-write.
"""

from __future__ import annotations

import functools
import pickle
import re
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import TypeVar

from hydra.errors import (
    ConfigCompositionException,
    InstantiationException,
    MissingConfigException,
    OverrideParseException,
)
from omegaconf import DictConfig
from omegaconf.errors import InterpolationResolutionError, OmegaConfBaseException

T = TypeVar("T")

# Run folders of the sweep jobs that failed in this process (a sweep carries on past them);
# the CLI reports them and exits 1 when the sweep ends.
FAILED_JOBS: list[Path] = []


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


def reported(task: Callable[[DictConfig], T]) -> Callable[[DictConfig], T]:
    """A Hydra task whose failure is one ``bnnlv: error:`` line on stderr and exit status 1
    (an interrupt: one line and 128 + signal), instead of Hydra's report and a traceback."""

    @functools.wraps(task)
    def run(cfg: DictConfig) -> T:
        try:
            return task(cfg)
        except KeyboardInterrupt as stop:
            interrupt = stop if isinstance(stop, RunInterrupted) else RunInterrupted("SIGINT")
            print(f"bnnlv: {describe(stop)}", file=sys.stderr)
            raise SystemExit(interrupt.exit_code) from None
        except Exception as error:
            print(f"bnnlv: error: {describe(error)}", file=sys.stderr)
            raise SystemExit(1) from None

    return run


@contextmanager
def sigterm_interrupts() -> Iterator[None]:
    """While inside, SIGTERM raises :class:`RunInterrupted` like Ctrl-C raises KeyboardInterrupt.

    Python's default for SIGTERM kills the process at once, leaving ``status: running`` and no
    checkpoint behind. Signal handlers can only be set from the main thread; elsewhere this is a
    no-op.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: FrameType | None) -> None:
        raise RunInterrupted(signal.Signals(signum).name)

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextmanager
def interrupts_deferred() -> Iterator[None]:
    """SIGINT and SIGTERM wait until the block ends (then are handled as usual).

    For work that must not be cut in two: a checkpoint save (a signal between creating the
    temporary file and the ``try`` that removes it would leave the file behind) and the optimiser
    steps of one update (a checkpoint taken between them would hold a half-made update); both take
    milliseconds, so deferring an interrupt that long is harmless. The Python handlers are
    swapped for a recorder and the recorded signals raised again afterwards: Python runs
    handlers in the main thread whichever thread the kernel picked (a blocked signal mask would
    cover the calling thread only, and torch's worker threads take process signals). Outside the
    main thread: no deferral.
    """
    signals = (signal.SIGINT, signal.SIGTERM)
    previous = [signal.getsignal(s) for s in signals]
    if threading.current_thread() is not threading.main_thread() or None in previous:
        yield  # handlers can only be set from the main thread; None: not set from Python
        return
    caught: list[int] = []
    for s in signals:
        signal.signal(s, lambda signum, frame: caught.append(signum))
    try:
        yield
    finally:
        for s, handler in zip(signals, previous, strict=True):
            signal.signal(s, handler)
        for signum in caught:
            signal.raise_signal(signum)


def describe(error: BaseException) -> str:
    """One line saying what went wrong, without the wrappers of Hydra and OmegaConf."""
    if isinstance(error, KeyboardInterrupt) and not isinstance(error, RunInterrupted):
        return "interrupted by SIGINT"
    if isinstance(error, MissingConfigException) and error.missing_cfg_file:
        return _unknown_option(error)
    if isinstance(error, ConfigCompositionException) and isinstance(
        error.__cause__, OmegaConfBaseException
    ):
        return _unknown_key(error, error.__cause__)
    if isinstance(error, OverrideParseException):
        return f"cannot parse the override: {_first_line(error)}"
    if isinstance(error, InstantiationException) and error.__cause__ is not None:
        inner = describe(error.__cause__)
        match = re.search(r"^full_key: (\S+)$", str(error), flags=re.MULTILINE)
        key = match.group(1) if match else ""
        return inner if not key or inner.startswith(key) else f"{key}: {inner}"
    if isinstance(error, InterpolationResolutionError) and root_cause(error) is not error:
        return describe(root_cause(error))
    if isinstance(error, pickle.UnpicklingError):
        found = re.search(r"GLOBAL (\S+)", str(error))
        return (
            "refused to unpickle a file that holds objects other than tensors and plain data"
            + (f" ({found.group(1)})" if found else "")
            + "; bnnlv loads checkpoints with weights_only=True only"
        )
    if isinstance(error, OSError) and error.filename is not None:
        return f"{error.strerror or type(error).__name__}: {error.filename}"
    return _first_line(error)


def root_cause(error: BaseException) -> BaseException:
    """The error inside Hydra's instantiation and OmegaConf's resolver wrappers.

    OmegaConf drops ``__cause__`` (unless OC_CAUSE=1) but keeps the chain in ``__context__``.
    """
    inner: BaseException | None = error
    while isinstance(inner, (InstantiationException, InterpolationResolutionError)):
        inner = inner.__cause__ or inner.__context__
    return inner if inner is not None else error


def _first_line(error: BaseException) -> str:
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return lines[0] if lines else type(error).__name__


def _unknown_option(error: MissingConfigException) -> str:
    """``model=foo``: Hydra lists the options of the group from the config search path."""
    group, _, option = (error.missing_cfg_file or "").rpartition("/")
    if not group:
        return _first_line(error)
    options = ", ".join(error.options or []) or "(none)"
    return f"{group}={option}: no such option in configs/{group}/; choose from {options}"


def _unknown_key(error: ConfigCompositionException, cause: OmegaConfBaseException) -> str:
    """``foo=1`` or ``model.fooo=1``: name the key and list the keys that do exist there."""
    key = getattr(cause, "full_key", None)
    override = re.search(r"use \+(\S+)", str(error))
    if not key:
        return _first_line(error)
    parent = getattr(cause, "parent_node", None)
    where = key.rpartition(".")[0] or "the root config"
    text = f"unknown key {key}" + (f" (in {override.group(1)})" if override else "")
    if isinstance(parent, DictConfig):
        known = sorted(k for k in parent if isinstance(k, str) and k != "hydra" and k[0] != "_")
        text += f"; {where} has keys: {', '.join(known)}"
    return text
