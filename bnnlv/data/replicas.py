"""The data of several runs trained together on one replica axis (bnnlv.model.replicas).

Run g holds M replicas (its members, one but for an ensemble), each with its own data order;
all runs' training sets must have as many rows, and their validation sets too, so that every
minibatch stacks to [R, S, ·]. Each run keeps its own data module: its rows, its standardiser,
its test split (scored by the run alone after training).
"""

from __future__ import annotations

from collections.abc import Sequence

import lightning as L
import torch
from torch import Tensor

from bnnlv.data.module import (
    GroupedBatches,
    Minibatch,
    RegressionDataModule,
    StackedBatches,
    on_device,
    training_loader,
)


class ReplicaData(L.LightningDataModule):
    """The training and validation minibatches of ``runs``, replica axis first: run g's members'
    training rows in the orders of its ``shuffle_seeds``, and its validation rows."""

    def __init__(self, runs: Sequence[RegressionDataModule]) -> None:
        super().__init__()
        self.runs = list(runs)
        sizes = {(run.n_train, run.batch_size, len(run.splits.x_val)) for run in self.runs}
        if len(sizes) != 1:
            raise ValueError(
                "runs trained together need as many training rows, the same batch size and as "
                f"many validation rows; got (training rows, batch, validation rows) {sorted(sizes)}"
            )
        self._resume: tuple[list[Tensor], int] | None = None

    @property
    def device(self) -> torch.device:
        return self.runs[0].device

    @device.setter
    def device(self, device: torch.device) -> None:
        for run in self.runs:
            run.device = device

    def setup(self, stage: str | None = None) -> None:
        for run in self.runs:
            run.setup(stage)

    def resume_training(self, shuffle_states: Sequence[Tensor], done: int) -> None:
        """As RegressionDataModule.resume_training, with every run's replicas' states in order."""
        self._resume = (list(shuffle_states), done)

    def train_dataloader(self) -> GroupedBatches:
        parts = [part for run in self.runs for part in run.train_batches()]
        loader = training_loader(parts, self._resume)
        self._resume = None
        return loader

    def val_dataloader(self) -> StackedBatches | list[StackedBatches]:
        """Each run's validation points, [G, B, ·] a batch; none if the runs have none."""
        if len(self.runs[0].splits.x_val) == 0:
            return []
        return StackedBatches([run.val_batches() for run in self.runs])

    def transfer_batch_to_device(
        self, batch: Minibatch | list[Minibatch], device: torch.device, dataloader_idx: int
    ) -> Minibatch | list[Minibatch]:
        """As RegressionDataModule.transfer_batch_to_device."""
        if on_device(batch, device):
            return batch
        return super().transfer_batch_to_device(batch, device, dataloader_idx)
