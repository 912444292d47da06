"""RegressionDataModule: batches already on the training device are not walked over again;
training minibatches come in groups."""

from __future__ import annotations

import pytest
import torch

from bnnlv.data.module import TRAIN_GROUP, GroupedBatches, StackedBatches, TensorBatches
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
    parts = [TensorBatches(x, y, 5, True, torch.Generator().manual_seed(3))]
    grouped = GroupedBatches(StackedBatches(parts), 2)
    groups = list(grouped)
    assert len(grouped) == len(groups) == 3 and [len(g) for g in groups] == [2, 2, 1]
    flat = [batch for group in groups for batch in group]
    assert len(flat) == len(plain) == 5
    for (xa, ya, ia), (xb, yb, ib) in zip(plain, flat, strict=True):  # one replica: [1, S, ·]
        assert torch.equal(xa, xb[0]) and torch.equal(ya, yb[0]) and torch.equal(ia, ib[0])
    assert grouped.generators == [parts[0].generator]
    with pytest.raises(ValueError, match="group size"):
        GroupedBatches(grouped.batches, 0)


def test_stacked_batches_put_each_replica_in_its_own_order() -> None:
    """Replica r's minibatches are those of its own TensorBatches, stacked on a leading axis;
    replicas must have as many rows and the same batch size."""
    x, y = torch.arange(12.0)[:, None], -torch.arange(12.0)[:, None]
    parts = [TensorBatches(x + 100 * r, y, 5, True, torch.Generator().manual_seed(r))
             for r in range(3)]  # fmt: skip
    alone = [list(TensorBatches(x + 100 * r, y, 5, True, torch.Generator().manual_seed(r)))
             for r in range(3)]  # fmt: skip
    stacked = list(StackedBatches(parts))
    assert len(stacked) == 3 and stacked[0][0].shape == (3, 5, 1) and stacked[2][2].shape == (3, 2)
    for step, (xs, _, index) in enumerate(stacked):
        for r in range(3):
            assert torch.equal(xs[r], alone[r][step][0]) and torch.equal(
                index[r], alone[r][step][2]
            )
    assert not torch.equal(stacked[0][2][0], stacked[0][2][1])  # their own orders
    with pytest.raises(ValueError, match=r"^replicas must have as many rows and the same batch"):
        StackedBatches([parts[0], TensorBatches(x[:10], y[:10], 5, True, torch.Generator())])


def test_the_training_loader_groups_and_the_validation_loader_does_not() -> None:
    data = ToyHeteroscedastic(n_points=800, batch_size=50)
    data.setup()
    train = data.train_dataloader()
    assert isinstance(train, GroupedBatches) and train.size == TRAIN_GROUP
    assert len(train) == -(-len(train.batches) // TRAIN_GROUP)
    assert isinstance(data.val_dataloader(), StackedBatches)
    data.shuffle_seeds = [4, 5]  # an ensemble's members: one order each
    first = next(iter(data.train_dataloader()))[0]
    assert first[0].shape == (2, 50, 1) and not torch.equal(first[2][0], first[2][1])


def test_a_resumed_pass_leaves_out_the_trained_minibatches_and_keeps_its_groups() -> None:
    """skip=7 of 12 minibatches in groups of 5: the first group comes out empty, the second holds
    its last 3 minibatches, the third is whole; the order is the one drawn from the same state."""
    x, y = torch.arange(24.0)[:, None], torch.arange(24.0)[:, None]
    parts = [TensorBatches(x, y, 2, True, torch.Generator().manual_seed(4))]
    whole = GroupedBatches(StackedBatches(parts), 5)
    state = whole.generators[0].get_state()
    resumed_generator = torch.Generator()
    resumed_generator.set_state(state)
    resumed_parts = [TensorBatches(x, y, 2, True, resumed_generator)]
    resumed = GroupedBatches(StackedBatches(resumed_parts), 5, skip=7)
    first, again = list(whole), list(resumed)
    assert [len(g) for g in first] == [5, 5, 2] and [len(g) for g in again] == [0, 3, 2]
    for a, b in zip([batch for g in first for batch in g][7:], [b for g in again for b in g],
                    strict=True):  # fmt: skip
        assert torch.equal(a[2], b[2])
    assert torch.equal(resumed.generators[0].get_state(), whole.generators[0].get_state())
    assert resumed.skip == 0 and [len(g) for g in resumed] == [5, 5, 2]  # later passes are whole
    with pytest.raises(ValueError, match="skip"):
        GroupedBatches(whole.batches, 5, skip=-1)


def test_resume_training_sets_the_first_pass_of_the_next_training_loader() -> None:
    data = ToyHeteroscedastic(n_points=100, batch_size=10)
    data.setup()
    first = data.train_dataloader()
    list(first)  # one epoch: the generator now holds the second epoch's state
    state = first.generators[0].get_state()
    second = [b[2] for g in first for b in g]
    data.resume_training([state], done=3)
    resumed = data.train_dataloader()
    assert resumed.skip == 3 and torch.equal(resumed.generators[0].get_state(), state)
    assert all(torch.equal(a, b[2]) for a, b in
               zip(second[3:], [b for g in resumed for b in g], strict=True))  # fmt: skip
    assert data.train_dataloader().skip == 0  # used once


def test_data_prepared_with_a_trained_models_statistics_is_only_scored(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """No statistics of its own, and no warning about a batch larger than its training split."""
    trained = ToyHeteroscedastic(n_points=200)
    trained.prepare()
    scored = ToyHeteroscedastic(n_points=60, noise_seed=3, batch_size=5000)
    caplog.clear()
    with caplog.at_level("WARNING", logger="bnnlv"):
        scored.prepare(scaler=trained.scaler)
    assert caplog.text == "" and scored.batch_size == 5000
    assert scored.scaler is trained.scaler
