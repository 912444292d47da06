"""A run's figures per epoch, as rows of its log: the training energy, RMSE and noise, and the
validation NLL and RMSE.

:class:`EpochFigures` sums them per replica (training) or per run (validation) on the device
during an epoch; at the epoch's end each run's row, its members averaged, goes to that run's
logger: a model of G runs logs to G loggers (bnnlv.runs gives every run of a group its own
``logs/metrics.csv``), one run to its one logger. Rows go to the loggers directly, not through
``self.log``, which costs ≈ 1 ms of bookkeeping a call on the CPU (measured: 3 calls were 2.6 ms of
a 5.7 ms epoch of a tiny model).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import torch
from lightning.fabric.loggers import Logger as FabricLogger
from lightning.pytorch.loggers import Logger
from torch import Tensor, nn

Reduce = Callable[[Tensor], Tensor]  # the sum over the processes of a distributed run


class EpochFigures(nn.Module):
    """The running sums behind the log rows, in buffers on the model's device: over a training
    epoch each replica's (S·E/N, squared error, S·σ), over a validation each run's (−log p,
    squared error); the points they cover counted on the host. A run resumed mid-epoch carries
    on from the sums it had (:meth:`totals`, :meth:`continue_epoch`)."""

    train_sums: Tensor  # [R, 3]  buffers, see __init__
    val_sums: Tensor  # [G, 2]

    def __init__(self, replicas: int, members: int, out_features: int) -> None:
        super().__init__()
        self.members, self.out_features = members, out_features
        self.register_buffer("train_sums", torch.zeros(replicas, 3), persistent=False)
        self.register_buffer("val_sums", torch.zeros(replicas // members, 2), persistent=False)
        self.train_rows = self.val_rows = 0
        self._resumed: dict[str, Any] | None = None

    def start_epoch(self) -> None:
        """Zero the training sums, or take a resumed epoch's (:meth:`continue_epoch`)."""
        totals, self._resumed = self._resumed, None
        if totals is None:
            self.train_sums.zero_()
            self.train_rows = 0
        else:
            self.train_sums.copy_(totals["sums"])
            self.train_rows = int(totals["rows"])

    def add_training(self, energy: Tensor, sq_error: Tensor, noise_std: Tensor, rows: int) -> None:
        """One update's figures, each replica's [R]: E/N, Σ squared error, mean σ over its rows."""
        figures = torch.stack([energy.detach() * rows, sq_error, noise_std * rows], dim=1)
        self.train_sums.add_(figures)
        self.train_rows += rows

    def totals(self) -> dict[str, Any]:
        """The epoch's running sums so far (for a checkpoint taken mid-epoch): ``sums`` [R, 3]
        on the CPU and ``rows``."""
        return {"sums": self.train_sums.detach().cpu().clone(), "rows": self.train_rows}

    def continue_epoch(self, totals: dict[str, Any]) -> None:
        """Start the next training epoch from ``totals`` (:meth:`totals`) instead of zero."""
        self._resumed = totals

    def training_rows(self, reduce: Reduce) -> list[dict[str, float]]:
        """Each run's training row of the epoch; none when this process trained nothing (a
        distributed share too small)."""
        if self.train_rows == 0:
            return []
        return training_rows(*_reduced(reduce, self.train_sums, self.train_rows),
                             self.members, self.out_features)  # fmt: skip

    def start_validation(self) -> None:
        self.val_sums.zero_()
        self.val_rows = 0

    def add_validation(self, nll_sums: Tensor, sq_errors: Tensor, rows: int) -> None:
        """Each run's Σ −log p and Σ squared error [G] over ``rows`` more validation points."""
        self.val_sums.add_(torch.stack([nll_sums, sq_errors], dim=1))
        self.val_rows += rows

    def validation_rows(self, reduce: Reduce) -> list[dict[str, float]]:
        """Each run's validation row."""
        return validation_rows(*_reduced(reduce, self.val_sums, self.val_rows), self.out_features)


def _reduced(reduce: Reduce, sums: Tensor, rows: int) -> tuple[Tensor, int]:
    """(sums, rows) added over the processes of a distributed run (one all-reduce)."""
    both = reduce(torch.cat([sums.flatten(), sums.new_tensor([rows])]))
    return both[:-1].view_as(sums), int(both[-1].item())


def training_rows(
    sums: Tensor, rows: int, members: int, out_features: int
) -> list[dict[str, float]]:
    """One row per run from sums [R, 3] over an epoch's ``rows`` points of each replica's
    (S·E/N, squared error, S·σ): energy per point, RMSE of the mean over the K samples and mean
    noise σ (standardised units), each the average of the run's members."""
    per_run = sums.unflatten(0, (-1, members)).mean(dim=1)  # [G, 3]
    return [
        {
            "train/energy_per_point": energy / rows,
            "train/rmse": math.sqrt(sq_error / (rows * out_features)),
            "train/noise_std": noise / rows,
        }
        for energy, sq_error, noise in per_run.tolist()
    ]


def validation_rows(sums: Tensor, rows: int, out_features: int) -> list[dict[str, float]]:
    """One row per run from sums [G, 2] over ``rows`` validation points of each run's
    (−log p(y|x), squared error of the predictive mean): mean NLL and RMSE (standardised)."""
    return [
        {"val/nll": nll / rows, "val/rmse": math.sqrt(sq_error / (rows * out_features))}
        for nll, sq_error in sums.tolist()
    ]


def write_rows(
    loggers: Sequence[Logger] | Sequence[FabricLogger],
    rows: Sequence[dict[str, Any]],
    step: int,
    epoch: int,
) -> None:
    """Run g's row, with its ``epoch``, to logger g at ``step``; nothing without loggers."""
    if loggers and len(loggers) != len(rows):
        raise ValueError(
            f"a model of {len(rows)} run(s) logs to one logger per run, got {len(loggers)}"
        )
    for logger, row in zip(loggers, rows, strict=False):
        logger.log_metrics(row | {"epoch": epoch}, step=step)
