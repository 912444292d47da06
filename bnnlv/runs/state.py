"""What a checkpoint holds besides Lightning's own state: the run's standardiser, its column
names, and the random-number states that make a resumed run continue exactly.

:class:`RunState` writes ``checkpoint["bnnlv"]``, every entry a tensor, string or list of strings,
so the file loads with ``torch.load(weights_only=True)``:

    scaler          {x_mean, x_std, y_mean, y_std}: float64 tensors [D_in] / [D_out], raw units
    feature_names   list[str] (D_in), target_names list[str] (D_out)
    rng             {torch: uint8 tensor, shuffle: uint8 tensor | absent}

``torch`` is the global CPU generator (weight and latent noise ε); ``shuffle`` is the generator
that orders the minibatches (:class:`~bnnlv.data.module.TensorBatches`). Both are captured when a
checkpoint is saved and restored when a resumed fit starts its first epoch, so the resumed run
draws the same numbers the uninterrupted one would have drawn. CUDA generators are not restored:
a resumed GPU run is statistically, not bitwise, the same.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

import lightning as L
import numpy as np
import torch

from bnnlv.data.module import GroupedBatches, RegressionDataModule, Standardiser, TensorBatches

KEY = "bnnlv"
SCALER_FIELDS = ("x_mean", "x_std", "y_mean", "y_std")


class SavedData(NamedTuple):
    """The data facts a saved model needs to predict in original units."""

    scaler: Standardiser
    feature_names: list[str]
    target_names: list[str]


def data_state(data: RegressionDataModule) -> dict[str, Any]:
    """The ``scaler`` / ``feature_names`` / ``target_names`` entries for a checkpoint."""
    scaler = data.scaler
    return {
        "scaler": {
            f: torch.as_tensor(np.asarray(getattr(scaler, f), dtype=np.float64))
            for f in SCALER_FIELDS
        },
        "feature_names": [str(n) for n in data.splits.feature_names],
        "target_names": [str(n) for n in data.splits.target_names],
    }


def read_data_state(checkpoint: Mapping[str, Any]) -> SavedData:
    """The :class:`SavedData` stored by :class:`RunState`; ValueError if the checkpoint has none."""
    state = checkpoint.get(KEY)
    if not isinstance(state, Mapping) or "scaler" not in state:
        raise ValueError(
            "checkpoint has no bnnlv data state (standardiser and column names); it was not "
            "written by bnnlv train"
        )
    scaler = Standardiser(*(state["scaler"][f].numpy() for f in SCALER_FIELDS))
    return SavedData(scaler, list(state["feature_names"]), list(state["target_names"]))


def _shuffle_generator(trainer: L.Trainer) -> torch.Generator | None:
    loader = trainer.train_dataloader
    return loader.generator if isinstance(loader, TensorBatches | GroupedBatches) else None


class RunState(L.Callback):
    """Saves :func:`data_state` and the RNG states into each checkpoint; restores the RNG states
    at the start of a fit resumed from one."""

    def __init__(self) -> None:
        self._pending_rng: Mapping[str, torch.Tensor] | None = None

    def on_save_checkpoint(
        self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict[str, Any]
    ) -> None:
        datamodule = trainer.datamodule  # type: ignore[attr-defined]
        if not isinstance(datamodule, RegressionDataModule):
            raise ValueError(f"RunState needs a RegressionDataModule, got {type(datamodule)}")
        rng = {"torch": torch.get_rng_state()}
        generator = _shuffle_generator(trainer)
        if generator is not None:
            rng["shuffle"] = generator.get_state()
        checkpoint[KEY] = data_state(datamodule) | {"rng": rng}

    def on_load_checkpoint(
        self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict[str, Any]
    ) -> None:
        state = checkpoint.get(KEY)
        self._pending_rng = state.get("rng") if isinstance(state, Mapping) else None

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self._pending_rng is None:
            return
        rng, self._pending_rng = self._pending_rng, None
        torch.set_rng_state(rng["torch"])
        generator = _shuffle_generator(trainer)
        if generator is not None and "shuffle" in rng:
            generator.set_state(rng["shuffle"])
