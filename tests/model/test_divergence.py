"""Diverged replicas: recorded where they stop, the fit stopped once every run has one."""

from __future__ import annotations

import math

import pytest
import torch

from bnnlv.model.divergence import DivergenceError, Divergences


def test_a_diverged_replica_is_recorded_once_with_where_it_stopped() -> None:
    watch = Divergences(runs=3, members=2)  # replicas 0-1, 2-3, 4-5
    watch.record(torch.zeros(6), epoch=0, step=0)
    assert watch.replicas == {}
    watch.record(torch.tensor([0.0, 0.0, math.inf, 0.0, 0.0, 0.0]), epoch=2, step=11)
    watch.record(torch.tensor([0.0, 0.0, math.nan, math.nan, 0.0, 0.0]), epoch=3, step=15)
    assert watch.replicas[2].reason == "non-finite energy inf at epoch 2, step 11"
    assert (watch.replicas[3].epoch, watch.replicas[3].step) == (3, 15)
    assert watch.by_run() == {1: watch.replicas[2]}  # run 1, its first member's divergence


def test_the_fit_stops_once_every_run_has_a_diverged_replica() -> None:
    watch = Divergences(runs=2, members=1)
    watch.record(torch.tensor([math.nan, 0.0]), epoch=0, step=4)
    with pytest.raises(DivergenceError, match=r"^non-finite energy nan at epoch 0, step 4$"):
        watch.record(torch.tensor([math.nan, math.nan]), epoch=0, step=5)
