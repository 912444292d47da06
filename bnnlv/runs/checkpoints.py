"""A run's checkpoint ``checkpoints/last.ckpt``: saved atomically, kept at the last good state.

:class:`RunCheckpoints` saves every ``every_n_epochs`` epochs and, when a signal interrupts the
run (SIGINT, SIGTERM), at the moment it stops, so that ``resume=<dir>`` can finish it. A run that
diverges (non-finite energy) does NOT save: the file keeps the last periodic state, which was
finite. A save writes a temporary sibling and renames it, so a kill mid-write cannot leave a
truncated ``last.ckpt``.

Checkpoints are read back with torch's safe unpickler only (``weights_only=True``): tensors,
numbers, strings and containers; a file from a stranger cannot run code when loaded.
"""

from __future__ import annotations

import os
import pickle
import re
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.utilities.exceptions import SIGTERMException

from bnnlv.model.lit_module import BNNLV, optimiser_updates
from bnnlv.report.files import file_mode, temporary_sibling
from bnnlv.runs.interrupts import RunInterrupted, interrupts_deferred
from bnnlv.runs.replicas import split_checkpoint
from bnnlv.runs.results import write_torch

LAST = "last.ckpt"


def save_checkpoint(trainer: L.Trainer, path: Path) -> None:
    """``trainer.save_checkpoint(path)`` through a temporary sibling and an atomic rename, with
    interrupts deferred until it is done (no temporary file is ever left behind)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with interrupts_deferred():
        fd, tmp = temporary_sibling(path)
        os.close(fd)
        try:
            trainer.save_checkpoint(tmp)
            if trainer.is_global_zero:  # Lightning writes on global rank 0 only (DDP)
                # Lightning's fsspec commit sets a mode of its own (seen: 0644 under umask 077)
                os.chmod(tmp, file_mode())
                os.replace(tmp, path)
            else:
                Path(tmp).unlink()
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise


def save_run_checkpoints(trainer: L.Trainer, paths: Sequence[Path | None]) -> None:
    """The model's checkpoint as each run's (bnnlv.runs.replicas.split_checkpoint), atomically,
    at ``paths[g]`` for run g (None: leave run g's file as it is); one run: save_checkpoint."""
    if len(paths) == 1:
        if paths[0] is not None:
            save_checkpoint(trainer, paths[0])
        return
    first = next(path for path in paths if path is not None)
    whole = first.parent / f".{LAST}.group"
    save_checkpoint(trainer, whole)
    try:
        parts = split_checkpoint(load_checkpoint(whole), len(paths))
        with interrupts_deferred():
            for path, part in zip(paths, parts, strict=True):
                if path is not None:
                    write_torch(path, part)
    finally:
        whole.unlink(missing_ok=True)


def load_checkpoint(path: Path) -> dict[str, Any]:
    """The checkpoint dict at ``path`` on the CPU, unpickled safely (``weights_only=True``).

    ``ValueError`` naming the file if it holds anything else (code, arbitrary classes) or is not
    a torch checkpoint at all.
    """
    if not Path(path).is_file():
        raise ValueError(f"{path}: no such checkpoint file")
    if not zipfile.is_zipfile(path):
        raise ValueError(f"{path}: not a torch checkpoint (not a zip archive)")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        found = re.search(r"GLOBAL (\S+)", str(error))
        what = f": {found.group(1)}" if found else ""
        raise ValueError(
            f"{path}: refused: the file holds objects other than tensors and plain data{what}; "
            "bnnlv loads checkpoints with weights_only=True only"
        ) from None
    except (RuntimeError, EOFError) as error:
        raise ValueError(f"{path}: not a readable torch checkpoint ({error})") from None
    if not isinstance(checkpoint, dict):
        raise ValueError(f"{path}: not a checkpoint (holds a {type(checkpoint).__name__})")
    return checkpoint


class RunCheckpoints(L.Callback):
    """Periodic and on-interrupt saves of ``directory/last.ckpt``; remembers where a run stopped.

    With several directories, one per run trained together (bnnlv.runs.replicas), each run's own
    checkpoint goes to its directory; a run whose replicas have diverged (model.divergence) keeps
    its last good one. ``every_n_epochs=None`` saves only on interrupt (the runner saves the final
    state itself).
    An interrupt saves only once the fit has made an update: before that, the checkpoint already
    there (a resumed run's) or none (nothing was trained) stands. After an exception,
    ``stopped_at`` is (epoch, updates) and ``interrupt`` is the :class:`RunInterrupted` to report
    when a signal was the cause.
    """

    def __init__(self, directory: Path | Sequence[Path], every_n_epochs: int | None) -> None:
        directories = [directory] if isinstance(directory, Path) else list(directory)
        self.paths = [Path(d) / LAST for d in directories]
        self.every_n_epochs = every_n_epochs
        self.stopped_at: tuple[int, int] | None = None
        self.interrupt: RunInterrupted | None = None
        self._first_update: int | None = None  # the fit's update count when it began training

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self._first_update is None:
            self._first_update = optimiser_updates(trainer)

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        every = self.every_n_epochs
        if every and (trainer.current_epoch + 1) % every == 0:
            self.save(trainer, pl_module)

    def on_exception(
        self, trainer: L.Trainer, pl_module: L.LightningModule, exception: BaseException
    ) -> None:
        epoch, step = trainer.current_epoch, optimiser_updates(trainer)
        self.stopped_at = (epoch, step)
        if isinstance(exception, (KeyboardInterrupt, SIGTERMException)):
            name = getattr(exception, "signal_name", None)
            if name is None:
                name = "SIGTERM" if isinstance(exception, SIGTERMException) else "SIGINT"
            self.interrupt = RunInterrupted(name, epoch, step)
            if self._first_update is not None and step > self._first_update:
                self.save(trainer, pl_module)

    def keep(self, runs: Sequence[int]) -> None:
        """From now on save only the checkpoints of ``runs`` (indices into the current runs),
        the runs a model holds once the others stopped (a diverged run of bnnlv active)."""
        self.paths = [self.paths[g] for g in runs]

    @property
    def path(self) -> Path:
        """The first run's checkpoint (the only one of a run alone)."""
        return self.paths[0]

    def save(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """Every run's checkpoint, but a diverged run's (its last good one stands)."""
        diverged = set(pl_module.diverged.by_run()) if isinstance(pl_module, BNNLV) else set()
        save_run_checkpoints(
            trainer, [None if g in diverged else path for g, path in enumerate(self.paths)]
        )

    @property
    def saved(self) -> Path | None:
        return self.path if self.path.is_file() else None

    def run(self, run: int) -> RunStop:
        """Where run ``run`` (of those trained together) stopped and the checkpoint it has."""
        return RunStop(self, run)


class RunStop:
    """One run's view of the :class:`RunCheckpoints` of runs trained together: the shared
    ``stopped_at``, and its own saved checkpoint."""

    def __init__(self, checkpoints: RunCheckpoints, run: int) -> None:
        self.checkpoints, self.path = checkpoints, checkpoints.paths[run]

    @property
    def stopped_at(self) -> tuple[int, int] | None:
        return self.checkpoints.stopped_at

    @property
    def saved(self) -> Path | None:
        return self.path if self.path.is_file() else None
