"""What an active-learning run keeps in ``checkpoints/last.ckpt`` to continue where it stopped.

The checkpoint is the one ``bnnlv train`` writes (model, optimisers, random streams and the
standardiser, :mod:`bnnlv.runs.state`), saved atomically, plus ``checkpoint["bnnlv_active"]``:

    fitted_round   int          the round whose fit the Lightning state belongs to
    labelled       int tensor   the pool indices of the labelled set now, in row order
    rows           list[dict]   active.csv's rows of the rounds completed so far

A checkpoint is saved when a round's fit stops (finished, interrupted, or every
``checkpoint_every`` epochs) and again when the round is complete. So, reading it back:
``fitted_round == len(rows)`` means round ``len(rows)`` had begun its fit (continue it from the
checkpoint); ``fitted_round == len(rows) − 1`` means that round is complete and the next one
starts afresh (warm-started from the checkpoint's model). Every entry loads with
``torch.load(weights_only=True)``. Runs trained together (bnnlv.active.loop) save one checkpoint
each, the one a run alone would have saved, so that ``resume=`` continues a run alone.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import lightning as L
import torch
from torch import Tensor

from bnnlv.runs.checkpoints import load_checkpoint
from bnnlv.runs.replicas import PER_RUN

KEY = "bnnlv_active"


@dataclass
class LoopState:
    """Where the loop stands; the saved checkpoints describe it (:class:`ActiveState`)."""

    labelled: list[int]
    rows: list[dict[str, Any]] = field(default_factory=list)
    fitted_round: int = -1

    @property
    def next_round(self) -> int:
        return len(self.rows)

    @property
    def fit_in_progress(self) -> bool:
        """The checkpoint holds a fit of the next round, begun (maybe finished) but not scored."""
        return self.fitted_round == self.next_round


class ActiveState(L.Callback):
    """Writes the :class:`LoopState` of each run trained into every checkpoint its trainer
    saves (several: one per run, split into the runs' checkpoints by
    bnnlv.runs.replicas.split_checkpoint)."""

    def __init__(self, states: list[LoopState]) -> None:
        self.states = states

    def on_save_checkpoint(
        self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict[str, Any]
    ) -> None:
        entries = [_entry(state) for state in self.states]
        if len(entries) == 1:
            checkpoint[KEY] = entries[0]
        else:
            checkpoint[PER_RUN] = checkpoint.get(PER_RUN, {}) | {KEY: entries}


def _entry(state: LoopState) -> dict[str, Any]:
    return {
        "fitted_round": state.fitted_round,
        "labelled": torch.tensor(state.labelled, dtype=torch.int64),
        "rows": [dict(row) for row in state.rows],
    }


class SavedLoop:
    """A run's saved loop: its :class:`LoopState` and the model's parameters."""

    def __init__(self, path: Path) -> None:
        checkpoint = load_checkpoint(path)
        saved = checkpoint.get(KEY)
        if not isinstance(saved, Mapping):
            raise ValueError(f"{path}: no active-learning state (not written by bnnlv active)")
        rows = list(saved["rows"])
        fitted = int(saved["fitted_round"])
        if fitted not in (len(rows), len(rows) - 1):
            raise ValueError(f"{path}: inconsistent state: fit of round {fitted}, {len(rows)} rows")
        self.state = LoopState([int(i) for i in saved["labelled"].tolist()], rows, fitted)
        self.parameters: Mapping[str, Tensor] = checkpoint["state_dict"]
        self.path = path
