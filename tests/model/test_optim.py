"""RowAdam (lazy per-row Adam for the per-point latent tables) and LeanAdam (torch's fused Adam
with a shorter step)."""

from __future__ import annotations

import copy

import pytest
import torch

from bnnlv.model.optim import LeanAdam, RowAdam


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


def _adam_pair(dtype: torch.dtype) -> tuple[list[list[torch.nn.Parameter]], list[torch.optim.Adam]]:
    """The same three groups (lr 0.1, 0.01, 0.1: two share a kernel call in LeanAdam) twice."""
    torch.manual_seed(0)
    shapes = [[(3, 2), (2,)], [(4,)], [(2, 2)]]
    values = [[torch.randn(shape, dtype=dtype) for shape in group] for group in shapes]
    copies = [[[torch.nn.Parameter(v.clone()) for v in group] for group in values] for _ in "ab"]
    optimisers = [
        cls([{"params": groups[0]}, {"params": groups[1], "lr": 0.01}, {"params": groups[2]}],
            lr=0.1, **kwargs)
        for cls, kwargs, groups in ((LeanAdam, {}, copies[0]), (torch.optim.Adam, {"fused": True},
                                                                 copies[1]))
    ]  # fmt: skip
    return [[p for group in groups for p in group] for groups in copies], optimisers


def _step_both(params: list[list[torch.nn.Parameter]], optimisers: list, skip: int | None) -> None:
    grads = [torch.randn_like(p) for p in params[0]]
    for group, opt in zip(params, optimisers, strict=True):
        for i, (param, grad) in enumerate(zip(group, grads, strict=True)):
            param.grad = None if i == skip else grad.clone()
        opt.step()


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_lean_adam_is_torch_fused_adam_bit_for_bit(dtype: torch.dtype) -> None:
    """Same parameters and state after steps in which one parameter sometimes has no gradient."""
    params, optimisers = _adam_pair(dtype)
    for skip in (None, 1, None, 3, None):
        _step_both(params, optimisers, skip)
    for lean, ref in zip(*params, strict=True):
        assert torch.equal(lean, ref)
        lean_state, ref_state = optimisers[0].state[lean], optimisers[1].state[ref]
        assert lean_state.keys() == ref_state.keys()
        for key, value in ref_state.items():
            assert torch.equal(lean_state[key], value) and lean_state[key].dtype == value.dtype


def test_lean_adam_state_dict_loads_into_torch_adam_and_back() -> None:
    params, optimisers = _adam_pair(torch.float32)
    for _ in range(3):
        _step_both(params, optimisers, None)
    lean, ref = optimisers
    saved = copy.deepcopy(lean.state_dict())  # a checkpoint's copy: loading may alias tensors
    ref.load_state_dict(saved)
    lean.load_state_dict(copy.deepcopy(ref.state_dict()))
    for _ in range(3):
        _step_both(params, optimisers, None)
    for lean_param, ref_param in zip(*params, strict=True):
        assert torch.equal(lean_param, ref_param)


def test_lean_adam_calls_the_closure_and_returns_its_loss() -> None:
    param = torch.nn.Parameter(torch.ones(2))
    opt = LeanAdam([param], lr=0.1)

    def closure() -> float:
        param.grad = torch.ones(2)
        return 1.5

    assert opt.step(closure) == 1.5
    torch.testing.assert_close(param.detach(), torch.full((2,), 0.9))


@pytest.mark.parametrize("option", ["amsgrad", "maximize"])
def test_lean_adam_rejects_options_its_step_does_not_implement(option: str) -> None:
    with pytest.raises(ValueError, match=rf"^LeanAdam needs {option}=False, got True$"):
        LeanAdam([{"params": [torch.nn.Parameter(torch.ones(2))], option: True}])
