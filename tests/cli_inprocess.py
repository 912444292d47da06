"""Run ``bnnlv`` in this process (faster than a subprocess): argv and environment restored."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from bnnlv.model.lit_module import BNNLV
from bnnlv.runs.cli import COMMAND_ENV, main

# A run of a few seconds: 2 epochs on 60 points, a small network, few predictive samples.
TINY = ["trainer.max_epochs=2", "data.n_points=60", "model.hidden=[8]", "threads=1",
        "model.n_samples_test=5", "model.n_latent_test=2", "checkpoint_every=null",
        "plots=false", "progress_bar=false"]  # fmt: skip


def run_bnnlv(monkeypatch: pytest.MonkeyPatch, *args: str) -> int:
    """``bnnlv ARGS…`` in-process; the exit code it would have."""
    with monkeypatch.context() as patch:
        patch.setattr(sys, "argv", list(sys.argv))
        patch.setenv(COMMAND_ENV, "")
        try:
            main(list(args))
        except SystemExit as stop:
            return stop.code if isinstance(stop.code, int) else 1
    return 0


def stopping_at_epoch(epoch: int) -> Callable[[BNNLV], None]:
    """A BNNLV.on_train_epoch_start that stops the fit (RuntimeError) when ``epoch`` begins: a
    machine going away, for the resume tests."""
    start_epoch = BNNLV.on_train_epoch_start

    def stop(self: BNNLV) -> None:
        if self.current_epoch == epoch:
            raise RuntimeError("machine went away")
        start_epoch(self)

    return stop


def run_fresh(cwd: Path, *args: str) -> tuple[int, list[str], str]:
    """``bnnlv ARGS…`` in a fresh interpreter in ``cwd``: its exit code, which of torch,
    Lightning, pandas and matplotlib it imported by the end, and its stderr."""
    code = (
        f"import sys\nfrom bnnlv.runs.cli import main\ntry:\n    main({list(args)!r})\n"
        "except SystemExit as stop:\n    print(stop.code, *[m for m in ('torch', 'lightning', "
        "'pandas', 'matplotlib') if m in sys.modules])\n"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=cwd, capture_output=True,
                            text=True, timeout=120)  # fmt: skip
    status, *imported = result.stdout.split() or ["0"]
    return int(status), imported, result.stderr
