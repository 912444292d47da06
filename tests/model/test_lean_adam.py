"""LeanAdam: torch's fused Adam with a shorter step, bit for bit."""

from __future__ import annotations

import copy

import pytest
import torch

from bnnlv.model.lean_adam import LeanAdam


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
@pytest.mark.parametrize("skips", [(None, 1, None, 3, None, None), (2, None, None, 0, 0, None)])
def test_lean_adam_is_torch_fused_adam_bit_for_bit(
    dtype: torch.dtype, skips: tuple[int | None, ...]
) -> None:
    """Same parameters and state after steps in which one parameter sometimes has no gradient
    (the second pattern: one has none at the first step, so its state starts late)."""
    params, optimisers = _adam_pair(dtype)
    for skip in skips:
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


def test_lean_adam_counts_steps_on_one_buffer_per_set_of_hyperparameters() -> None:
    params, optimisers = _adam_pair(torch.float32)
    for _ in range(2):
        _step_both(params, optimisers, None)
    counts = [optimisers[0].state[p]["step"] for p in params[0]]  # lr 0.1, 0.1, 0.01, 0.1
    bases = [count._base for count in counts]
    assert bases[0] is bases[1] is bases[3] is not None and bases[2] is not None
    assert bases[2] is not bases[0]
    assert [float(count) for count in counts] == [2.0] * 4
