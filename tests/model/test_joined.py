"""Parameters stored joined: the row is the parameters, their gradient lands in .grad, and
whatever gives them new storage joins them again."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from bnnlv.model.joined import JoinedParameters
from bnnlv.model.layers import BayesianMLP
from bnnlv.model.lean_adam import LeanAdam

SIZES = [12, 4, 8]  # per replica, of _params' tensors


def _params(replicas: int = 1) -> list[nn.Parameter]:
    torch.manual_seed(0)
    return [nn.Parameter(torch.randn(replicas, *shape)) for shape in [(3, 4), (4,), (4, 2)]]


def _cat(params: list[nn.Parameter] | list[torch.Tensor]) -> torch.Tensor:
    return torch.cat([p.detach().flatten(1) for p in params], dim=1)


def _network(std: float = 0.1) -> BayesianMLP:
    return BayesianMLP(2, [5], 1, prior_var=1.0, posterior_std_init=std)


def test_row_is_the_parameters_joined_and_shares_their_storage() -> None:
    params, joined = _params(), JoinedParameters(SIZES)
    expected = _cat(params)
    with torch.no_grad():
        row = joined.row(params)  # [1, 12 + 4 + 8]
        assert torch.equal(row, expected)
        assert joined.row(params) is row  # stored once, then handed out as it is
        row[0, 12] = 7.0  # the first bias is a view of the block
    assert params[1][0, 0].item() == 7.0
    assert [p.shape for p in params] == [(1, 3, 4), (1, 4), (1, 4, 2)]


def test_row_under_autograd_is_a_copy_with_a_graph_to_the_parameters() -> None:
    params = _params()
    JoinedParameters(SIZES).row(params).square().sum().backward()
    for param in params:
        assert param.grad is not None
        assert torch.allclose(param.grad, 2 * param.detach())


@pytest.mark.parametrize("replicas", [1, 3])
def test_set_grad_gives_each_parameter_its_slice(replicas: int) -> None:
    params, joined = _params(replicas), JoinedParameters(SIZES)
    with torch.no_grad():
        joined.row(params)
    first: list[torch.Tensor | None] = []
    for step in range(2):  # at R = 1 the second writes into the gradients the first set up
        grad = torch.arange(replicas * 24.0).view(replicas, 24) + step
        joined.set_grad(params, grad)
        grad.zero_()  # copied: the caller may reuse it
        if step == 1 and replicas == 1:
            assert all(p.grad is g for p, g in zip(params, first, strict=True))
        first = [p.grad for p in params]
        expected = torch.arange(replicas * 24.0).view(replicas, 24) + step
        for param, piece in zip(params, expected.split(SIZES, dim=1), strict=True):
            assert param.grad is not None and param.grad.is_contiguous()
            assert torch.equal(param.grad, piece.reshape(param.shape))


def test_new_storage_is_joined_again() -> None:
    network = _network()
    assert network.joined is not None
    with torch.no_grad():
        network.joined[0].row(network.stochastic_parameters()[0])
    for moved in (copy.deepcopy(network), network.double()):
        assert moved.joined is not None
        means = moved.stochastic_parameters()[0]
        with torch.no_grad():
            row = moved.joined[0].row(means)
        assert row.dtype == means[0].dtype
        assert torch.equal(row, _cat(means))
        assert row.data_ptr() == means[0].data_ptr()


@pytest.mark.parametrize("assign", [False, True])
def test_loading_a_state_dict_is_seen_by_the_row(assign: bool) -> None:
    network, other = _network(), _network(std=0.2)
    assert network.joined is not None
    with torch.no_grad():
        before = network.joined[1].row(network.stochastic_parameters()[1])
    network.load_state_dict(other.state_dict(), assign=assign)
    with torch.no_grad():
        after = network.joined[1].row(network.stochastic_parameters()[1])
    assert (after is before) != assign  # copied into the block, or new tensors joined anew
    assert torch.equal(after, _cat(other.stochastic_parameters()[1]))


def test_adam_steps_joined_parameters_as_separate_ones() -> None:
    separate, joined_params = _params(), _params()
    joined = JoinedParameters(SIZES)
    optimisers = [LeanAdam(separate, lr=0.1), LeanAdam(joined_params, lr=0.1)]
    for step in range(3):
        grad = torch.linspace(-1.0, 1.0, 24).view(1, 24) * (step + 1)
        for param, piece in zip(separate, grad.split(SIZES, dim=1), strict=True):
            param.grad = piece.reshape(param.shape).contiguous()
        with torch.no_grad():
            joined.row(joined_params)
        joined.set_grad(joined_params, grad)
        for optimiser in optimisers:
            optimiser.step()
    for mine, theirs in zip(joined_params, separate, strict=True):
        assert torch.equal(mine, theirs)


def test_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="sizes must be one or more positive"):
        JoinedParameters([])
    with pytest.raises(ValueError, match="replica axis"):
        JoinedParameters([2, 2]).row([torch.zeros(1, 2), torch.zeros(2, 2)])
    with pytest.raises(ValueError, match=r"sizes \[12, 4, 8\]"):
        JoinedParameters(SIZES).row(_params()[:2])
    with pytest.raises(ValueError, match=r"grad must be \[R, P\]"):
        JoinedParameters(SIZES).set_grad(_params(), torch.zeros(1, 23))
