"""RowAdam: lazy per-row Adam for the per-point latent tables."""

from __future__ import annotations

import pytest
import torch

from bnnlv.model.optim import RowAdam


def test_a_row_present_every_step_follows_plain_adam_exactly() -> None:
    torch.manual_seed(0)
    table = torch.nn.Parameter(torch.randn(5, 2, dtype=torch.float64))
    reference = torch.nn.Parameter(table.detach().clone())
    row_adam, adam = RowAdam([table], lr=0.1), torch.optim.Adam([reference], lr=0.1)
    for _ in range(7):
        target = torch.randn(5, 2, dtype=torch.float64)
        for param, opt in ((table, row_adam), (reference, adam)):
            opt.zero_grad()
            (param - target).square().sum().backward()
            opt.step()
    torch.testing.assert_close(table, reference, rtol=1e-12, atol=1e-12)


def test_absent_rows_do_not_move_and_present_rows_use_their_own_step_count() -> None:
    table = torch.nn.Parameter(torch.zeros(4, 1, dtype=torch.float64))
    opt = RowAdam([table], lr=0.5)
    for rows in ([0, 1], [0], [0, 2]):
        opt.zero_grad()
        table.index_select(0, torch.tensor(rows)).sum().neg().backward()
        before = table.detach().clone()
        opt.step()
        moved = (table.detach() != before).squeeze(1).nonzero().squeeze(1).tolist()
        assert moved == rows
    # Row 2 moved once: its first Adam step is exactly lr (bias-corrected m/√v = 1).
    assert table[2, 0].item() == pytest.approx(0.5, abs=1e-7)
    assert table[3, 0].item() == 0.0
    assert opt.state[table]["step"].tolist() == [3.0, 1.0, 1.0, 0.0]


def test_a_sparse_gradient_gives_the_same_updates_as_the_dense_one() -> None:
    """Embedding(sparse=True): rows named by the gradient (repeats summed), same steps."""
    torch.manual_seed(1)
    dense = torch.nn.Embedding(6, 2, dtype=torch.float64)
    sparse = torch.nn.Embedding(6, 2, sparse=True, dtype=torch.float64)
    sparse.weight.data.copy_(dense.weight.data)
    optimisers = [RowAdam(dense.parameters(), lr=0.1), RowAdam(sparse.parameters(), lr=0.1)]
    for rows in ([0, 3, 3], [1], [3, 5, 0, 0]):
        index = torch.tensor(rows)
        for table, opt in zip((dense, sparse), optimisers, strict=True):
            opt.zero_grad()
            table(index).square().sum().backward()
            opt.step()
        assert sparse.weight.grad is not None and sparse.weight.grad.is_sparse
    torch.testing.assert_close(sparse.weight, dense.weight, rtol=1e-12, atol=1e-12)
    assert optimisers[1].state[sparse.weight]["step"].tolist() == [2.0, 1.0, 0.0, 2.0, 0.0, 1.0]


def test_rejects_bad_values() -> None:
    with pytest.raises(ValueError, match="lr must be > 0, got -1"):
        RowAdam([torch.nn.Parameter(torch.zeros(2, 1))], lr=-1)
    vector = torch.nn.Parameter(torch.zeros(3))
    opt = RowAdam([vector])
    vector.sum().backward()
    with pytest.raises(ValueError, match="2-D"):
        opt.step()
