"""What a checkpoint holds besides Lightning's own state: the run's standardiser, its column
names, and the exact point where training stopped, so that a resumed run continues exactly.

:class:`RunState` writes ``checkpoint["bnnlv"]``, every entry a tensor, number, string or list, so
the file loads with ``torch.load(weights_only=True)``:

    scaler          {x_mean, x_std, y_mean, y_std}: float64 tensors [D_in] / [D_out], raw units
    feature_names   list[str] (D_in), target_names list[str] (D_out)
    inputs          list[str]: the source columns behind the features (a categorical column
                    gives one feature per category, ``column=category``)
    categories      {column: list[str]}: the category list of each categorical input column
    position        where training stands (below)

A run can be stopped anywhere: mid-epoch, between two updates of one Lightning batch (a group of
minibatches, data.module.GroupedBatches), during validation, while a checkpoint is written. Updates
are never cut (the runner defers interrupts around each, bnnlv.runs.interrupts), so the state after
the last update is well defined, and ``position`` describes it:

    epoch           the epoch under way (or just ended: its validation and log row may be pending)
    updates         updates made before that epoch began
    done            updates made in it since (the finished minibatches of its order)
    shuffle         [uint8 tensor]: each replica's shuffling generator's state when the epoch
                    began (data.module.StackedBatches), from which the epoch's orders are drawn
                    again
    torch           [uint8 tensor]: each replica's generator after the last update
                    (BNNLV.generators: its weight and latent noise ε; validation draws from its
                    own), on the device training ran on
    epoch_totals    the epoch's running sums so far (BNNLV.epoch_totals), for its log row

Lightning's own loop state (``loops``) is left out: it records the stop with its own counters
(which batch of a group, which validation batch), and Lightning's restart from such a state re-runs
or skips parts of the epoch. Instead a resumed fit starts as a fresh one and :class:`RunState` puts
it where the position says: the epoch and update counters, the random streams, the epoch's order
with its ``done`` minibatches left out (their groups handed out empty), and the running sums. The
epoch's remaining updates, its validation and its log row then happen as in the run that was never
stopped.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

import lightning as L
import numpy as np
import torch

from bnnlv.data.columns import InputColumns
from bnnlv.data.module import GroupedBatches, RegressionDataModule, Standardiser
from bnnlv.data.replicas import ReplicaData
from bnnlv.model.lit_module import BNNLV, optimiser_updates

KEY = "bnnlv"
SCALER_FIELDS = ("x_mean", "x_std", "y_mean", "y_std")


class SavedData(NamedTuple):
    """The data facts a saved model needs to predict in original units."""

    scaler: Standardiser
    feature_names: list[str]
    target_names: list[str]
    inputs: InputColumns  # how new rows' columns become the features


def data_state(data: RegressionDataModule) -> dict[str, Any]:
    """The ``scaler`` / ``feature_names`` / ``target_names`` / ``inputs`` / ``categories``
    entries for a checkpoint."""
    scaler, inputs = data.scaler, data.splits.input_columns
    return {
        "scaler": {
            f: torch.as_tensor(np.asarray(getattr(scaler, f), dtype=np.float64))
            for f in SCALER_FIELDS
        },
        "feature_names": [str(n) for n in data.splits.feature_names],
        "target_names": [str(n) for n in data.splits.target_names],
        "inputs": [str(n) for n in inputs.names],
        "categories": {str(k): [str(c) for c in v] for k, v in inputs.categories.items()},
    }


def _data_states(datamodule: object) -> dict[str, Any]:
    """The checkpoint's data entries: :func:`data_state` of one run's data module, or of each
    run's, as ``runs``, for several trained together (bnnlv.runs.replicas splits them)."""
    if isinstance(datamodule, RegressionDataModule):
        return data_state(datamodule)
    if isinstance(datamodule, ReplicaData):
        return {"runs": [data_state(run) for run in datamodule.runs]}
    raise ValueError(f"RunState needs a bnnlv data module, got {type(datamodule)}")


def read_data_state(checkpoint: Mapping[str, Any]) -> SavedData:
    """The :class:`SavedData` stored by :class:`RunState`; ValueError if the checkpoint has none."""
    state = checkpoint.get(KEY)
    if not isinstance(state, Mapping) or "scaler" not in state:
        raise ValueError(
            "checkpoint has no bnnlv data state (standardiser and column names); it was not "
            "written by bnnlv train"
        )
    scaler = Standardiser(*(state["scaler"][f].numpy() for f in SCALER_FIELDS))
    features = list(state["feature_names"])
    # checkpoints written before categorical inputs: every feature is one numeric column
    inputs = InputColumns(list(state.get("inputs", features)), dict(state.get("categories", {})))
    return SavedData(scaler, features, list(state["target_names"]), inputs)


class EpochStart(NamedTuple):
    """Where the epoch under way began (see the module docstring)."""

    epoch: int
    updates: int
    shuffle: list[torch.Tensor]


def _train_batches(trainer: L.Trainer) -> GroupedBatches:
    loader = trainer.train_dataloader
    if not isinstance(loader, GroupedBatches):
        raise ValueError(f"RunState needs GroupedBatches for training, got {type(loader)}")
    return loader


def _model(pl_module: L.LightningModule) -> BNNLV:
    if not isinstance(pl_module, BNNLV):
        raise ValueError(f"RunState needs a BNNLV model, got {type(pl_module)}")
    return pl_module


def continue_counts(trainer: L.Trainer, epoch: int, updates: int) -> None:
    """Move a fresh fit's counters to ``epoch`` (``trainer.current_epoch``) and ``updates``
    (``trainer.global_step`` counts each optimiser's steps)."""
    loop = trainer.fit_loop
    if loop.epoch_progress.current.completed or trainer.global_step:
        raise ValueError("continue_counts needs a fit that has not trained yet")
    loop.epoch_progress.increment_by(epoch)
    steps = loop.epoch_loop.manual_optimization.optim_step_progress
    steps.increment_by(updates * len(trainer.optimizers))


def legacy_position(checkpoint: Mapping[str, Any]) -> dict[str, Any]:
    """The position of a checkpoint written by bnnlv 0.1, which kept Lightning's loop state and
    the random streams' states at the save (``rng``): the start of the epoch after the last one
    Lightning had finished (exact for the saves made at an epoch's end or after the fit)."""
    state = checkpoint.get(KEY)
    rng = state.get("rng") if isinstance(state, Mapping) else None
    loops = checkpoint.get("loops")
    if not isinstance(rng, Mapping) or "torch" not in rng or not isinstance(loops, Mapping):
        raise ValueError(
            "the checkpoint holds no training position (bnnlv writes one into every checkpoint): "
            "it can be evaluated (bnnlv evaluate), not resumed"
        )
    epoch = loops["fit_loop"]["epoch_progress"]["current"]["processed"]
    updates = checkpoint["global_step"] // max(1, len(checkpoint["optimizer_states"]))
    shuffle = [rng["shuffle"]] if "shuffle" in rng else []
    return {"epoch": epoch, "updates": updates, "done": 0, "shuffle": shuffle,
            "torch": [rng["torch"]]}  # fmt: skip


class RunState(L.Callback):
    """Saves :func:`data_state` and the training position into each checkpoint; puts a fit
    resumed from one at that position (see the module docstring)."""

    def __init__(self) -> None:
        self._epoch_start = EpochStart(0, 0, [])
        self._resumed: Mapping[str, Any] | None = None  # a loaded position, applied at train start

    def on_save_checkpoint(
        self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict[str, Any]
    ) -> None:
        data = _data_states(trainer.datamodule)  # type: ignore[attr-defined]
        checkpoint.pop("loops", None)
        if self._resumed is not None:  # the fit has not moved from the loaded position yet
            checkpoint[KEY] = data | {"position": dict(self._resumed)}
            return
        model = _model(pl_module)
        start = self._epoch_start
        position = {
            "epoch": start.epoch,
            "updates": start.updates,
            "done": optimiser_updates(trainer) - start.updates,
            "shuffle": start.shuffle,
            "torch": [generator.get_state() for generator in model.generators],
            "epoch_totals": model.epoch_totals(),
        }
        checkpoint[KEY] = data | {"position": position}

    def on_load_checkpoint(
        self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict[str, Any]
    ) -> None:
        state = checkpoint.get(KEY)
        position = state.get("position") if isinstance(state, Mapping) else None
        if position is None:
            position = legacy_position(checkpoint)
        checkpoint.pop("loops", None)  # see the module docstring
        trainer.datamodule.resume_training(position["shuffle"], position["done"])  # type: ignore[attr-defined]
        if position["done"]:
            _model(pl_module).continue_epoch(position["epoch_totals"])
        self._resumed = position

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        position, self._resumed = self._resumed, None
        if position is None:
            return
        continue_counts(trainer, position["epoch"], position["updates"] + position["done"])
        saved = position["torch"]  # one tensor from a bnnlv that drew from torch's global stream
        states = [saved] if isinstance(saved, torch.Tensor) else saved
        for generator, state in zip(_model(pl_module).generators, states, strict=True):
            generator.set_state(state)

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """Record where the epoch begins. Lightning fetches the first group of a loader that has a
        length after this hook (it prefetches only loaders without one), so the shuffling
        generator still holds the state the epoch's order will be drawn from."""
        self._epoch_start = _epoch_start(trainer)

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """The fit is over: a checkpoint now stands at the start of the next epoch."""
        self._epoch_start = _epoch_start(trainer)


def _epoch_start(trainer: L.Trainer) -> EpochStart:
    """The next epoch's start: its order's generator state; its updates before the first pass's
    skipped minibatches (a resumed epoch counts the updates made before the stop)."""
    loader = _train_batches(trainer)
    updates = optimiser_updates(trainer) - loader.skip
    return EpochStart(trainer.current_epoch, updates, [g.get_state() for g in loader.generators])
