"""RegressionDataModule: batches already on the training device are not walked over again;
training minibatches come in groups."""

from __future__ import annotations

import pytest
import torch

from bnnlv.data.module import TRAIN_GROUP, GroupedBatches, TensorBatches
from bnnlv.data.toy import ToyHeteroscedastic


def test_batch_on_the_device_is_passed_through_as_it_is() -> None:
    data = ToyHeteroscedastic(n_points=50, batch_size=10)
    batch = (torch.zeros(3, 1), torch.zeros(3, 1), torch.arange(3))
    assert data.transfer_batch_to_device(batch, torch.device("cpu"), 0) is batch


def test_batch_elsewhere_is_moved() -> None:
    data = ToyHeteroscedastic(n_points=50, batch_size=10)
    batch = (torch.zeros(3, 1), torch.zeros(3, 1), torch.arange(3))
    moved = data.transfer_batch_to_device(batch, torch.device("meta"), 0)
    assert [t.device.type for t in moved] == ["meta"] * 3


def test_a_group_of_minibatches_on_the_device_is_passed_through_as_it_is() -> None:
    data = ToyHeteroscedastic(n_points=50, batch_size=10)
    group = [(torch.zeros(3, 1), torch.zeros(3, 1), torch.arange(3))] * 2
    assert data.transfer_batch_to_device(group, torch.device("cpu"), 0) is group


def test_training_minibatches_come_in_groups_in_the_same_order() -> None:
    x, y = torch.arange(23.0)[:, None], -torch.arange(23.0)[:, None]
    plain = list(TensorBatches(x, y, 5, True, torch.Generator().manual_seed(3)))
    grouped = GroupedBatches(TensorBatches(x, y, 5, True, torch.Generator().manual_seed(3)), 2)
    groups = list(grouped)
    assert len(grouped) == len(groups) == 3 and [len(g) for g in groups] == [2, 2, 1]
    flat = [batch for group in groups for batch in group]
    assert len(flat) == len(plain) == 5
    for (xa, ya, ia), (xb, yb, ib) in zip(plain, flat, strict=True):
        assert torch.equal(xa, xb) and torch.equal(ya, yb) and torch.equal(ia, ib)
    assert grouped.generator is grouped.batches.generator
    with pytest.raises(ValueError, match="group size"):
        GroupedBatches(grouped.batches, 0)


def test_the_training_loader_groups_and_the_validation_loader_does_not() -> None:
    data = ToyHeteroscedastic(n_points=800, batch_size=50)
    data.setup()
    train = data.train_dataloader()
    assert isinstance(train, GroupedBatches) and train.size == TRAIN_GROUP
    assert len(train) == -(-len(train.batches) // TRAIN_GROUP)
    assert isinstance(data.val_dataloader(), TensorBatches)
