"""RegressionDataModule: batches already on the training device are not walked over again."""

from __future__ import annotations

import torch

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
