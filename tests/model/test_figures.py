"""The log rows of a model's runs: sums over an epoch, members averaged, one logger per run."""

from __future__ import annotations

import math
from typing import Any

import pytest
import torch

from bnnlv.model.figures import EpochFigures, write_rows


class _Logger:
    def __init__(self) -> None:
        self.rows: list[tuple[dict[str, Any], int]] = []

    def log_metrics(self, metrics: dict[str, Any], step: int) -> None:
        self.rows.append((metrics, step))


def test_training_rows_average_a_runs_members_over_the_epochs_points() -> None:
    figures = EpochFigures(replicas=4, members=2, out_features=1)  # 2 runs × 2 members
    figures.start_epoch()
    for rows in (10, 6):  # two updates: E/N, squared error, σ per replica
        figures.add_training(torch.tensor([1.0, 3.0, 2.0, 2.0]), torch.tensor([4.0, 0.0, 8.0, 8.0]),
                             torch.tensor([0.5, 0.5, 1.0, 3.0]), rows)  # fmt: skip
    first, second = figures.training_rows(lambda t: t)
    assert first["train/energy_per_point"] == pytest.approx(2.0)
    assert first["train/rmse"] == pytest.approx(math.sqrt(2 * 4.0 / 2 / 16))
    assert second["train/noise_std"] == pytest.approx(2.0)


def test_a_resumed_epoch_carries_on_from_its_sums_and_the_next_starts_from_zero() -> None:
    figures = EpochFigures(replicas=1, members=1, out_features=1)
    figures.start_epoch()
    figures.add_training(torch.tensor([1.0]), torch.tensor([2.0]), torch.tensor([3.0]), 8)
    resumed = EpochFigures(replicas=1, members=1, out_features=1)
    resumed.continue_epoch(figures.totals())
    resumed.start_epoch()
    assert torch.equal(resumed.train_sums, figures.train_sums) and resumed.train_rows == 8
    resumed.start_epoch()
    assert torch.equal(resumed.train_sums, torch.zeros(1, 3)) and resumed.train_rows == 0


def test_validation_rows_and_one_logger_per_run() -> None:
    figures = EpochFigures(replicas=2, members=1, out_features=2)
    figures.start_validation()
    figures.add_validation(torch.tensor([3.0, 6.0]), torch.tensor([12.0, 0.0]), 3)
    rows = figures.validation_rows(lambda t: t)
    assert rows == [{"val/nll": 1.0, "val/rmse": math.sqrt(2.0)}, {"val/nll": 2.0, "val/rmse": 0.0}]
    loggers = [_Logger(), _Logger()]
    write_rows(loggers, rows, step=9, epoch=4)  # type: ignore[arg-type]
    assert loggers[1].rows == [({"val/nll": 2.0, "val/rmse": 0.0, "epoch": 4}, 9)]
    write_rows([], rows, step=9, epoch=4)  # no logger: nothing to write
    with pytest.raises(ValueError, match=r"^a model of 2 run\(s\) logs to one logger per run"):
        write_rows([_Logger()], rows, step=9, epoch=4)  # type: ignore[list-item]
    assert figures.training_rows(lambda t: t) == []  # no training rows this epoch
