"""Parameters stored side by side: a model's tensors as views of one block, joined at no cost.

The fused step (model.fused) works on the stochastic layers' means and ρ as one row each: the draw
w = m + √v ε, its log-factor and the gradient are then a handful of operations however many layers
there are. Joining them with ``torch.cat`` and splitting the gradient back into every
parameter's ``.grad`` cost some 40 small operations an update. :class:`JoinedParameters` stores
them joined instead: each parameter's data is a view of one [1, P] block, and its ``.grad`` a view
of one gradient block, while the parameters (their names, the state dict, the optimiser's
per-parameter state) stay what they were.

Only a single replica is stored so: a parameter [R, …] is a contiguous slice of an [R, P] block
only at R = 1, and torch's fused Adam needs contiguous parameters. With more replicas, and where
autograd records (its graph must reach the parameters themselves), the row is joined by copying.
The parameters are passed on every call, so whatever gives them storage of their own
(``module.to``, ``.double()``, ``copy.deepcopy``, ``load_state_dict(assign=True)``) is seen there,
and the next :meth:`~JoinedParameters.row` stores them joined again.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor


class JoinedParameters:
    """The block behind parameters [R, …] read and given gradients as one [R, P] row, each
    flattened over its per-replica axes, in order (P = Σ their per-replica ``sizes``)."""

    def __init__(self, sizes: Sequence[int]) -> None:
        if not sizes or any(size <= 0 for size in sizes):
            raise ValueError(f"sizes must be one or more positive numbers, got {list(sizes)}")
        self.sizes = list(sizes)  # per replica
        self._offsets: list[int] = []  # each parameter's place in the block, in bytes
        self._block = self._grad_block = torch.empty(0)
        self._grads: list[Tensor] = []  # views of the gradient block, one per parameter

    def row(self, params: Sequence[Tensor]) -> Tensor:
        """``params`` joined, [R, P]: the block itself where they are stored joined (no copy;
        R = 1 outside autograd's recording and inference mode), else a new tensor."""
        if not _joinable(params):
            self._check(params)
            return torch.cat([param.flatten(1) for param in params], dim=1)
        if not self._stored(params):
            self._store(params)
        return self._block

    def set_grad(self, params: Sequence[Tensor], grad: Tensor) -> None:
        """Make ``grad`` [R, P], joined as :meth:`row`, the ``.grad`` of ``params`` (replacing
        what was there; copied, so ``grad`` may be reused)."""
        stored = self._stored(params)
        if not stored:
            self._check(params)
        if grad.shape != (params[0].shape[0], sum(self.sizes)):
            raise ValueError(
                f"grad must be [R, P]={(params[0].shape[0], sum(self.sizes))}, got "
                f"{tuple(grad.shape)}"
            )
        if not stored:
            for param, piece in zip(params, grad.split(self.sizes, dim=1), strict=True):
                param.grad = piece.reshape(param.shape).contiguous()
            return
        if not self._grads_held(params):
            self._grad_block = torch.empty_like(self._block)
            self._grads = self._views(self._grad_block, params)
            for param, view in zip(params, self._grads, strict=True):
                param.grad = view
        self._grad_block.copy_(grad)

    def _check(self, params: Sequence[Tensor]) -> None:
        """ValueError unless ``params`` fit ``sizes`` (parameters stored in the block do)."""
        sizes = [param.shape[1:].numel() for param in params]
        if sizes != self.sizes or len({param.shape[0] for param in params}) != 1:
            raise ValueError(
                f"params must share the replica axis and have sizes {self.sizes} per replica, "
                f"got shapes {[tuple(param.shape) for param in params]}"
            )

    def _stored(self, params: Sequence[Tensor]) -> bool:
        """Whether every parameter is its view of the block (which, alive, no other tensor's
        memory can overlap)."""
        start = self._block.data_ptr()
        return [param.data_ptr() - start for param in params] == self._offsets

    def _grads_held(self, params: Sequence[Tensor]) -> bool:
        """Whether every parameter's ``.grad`` is its view of the gradient block."""
        if not self._grads:
            return False
        return all(param.grad is view for param, view in zip(params, self._grads, strict=True))

    def _store(self, params: Sequence[Tensor]) -> None:
        """Copy the parameters into a new block and make each a view of it."""
        self._check(params)
        self._block = torch.cat([param.detach().flatten(1) for param in params], dim=1)
        for param, view in zip(params, self._views(self._block, params), strict=True):
            param.data = view
        self._offsets = [param.data_ptr() - self._block.data_ptr() for param in params]
        self._grads = []  # the gradient block follows at the next set_grad

    def _views(self, block: Tensor, params: Sequence[Tensor]) -> list[Tensor]:
        """Each parameter's slice of ``block`` [1, P], in its shape."""
        pieces = block.split(self.sizes, dim=1)
        return [piece.view(param.shape) for piece, param in zip(pieces, params, strict=True)]


def _joinable(params: Sequence[Tensor]) -> bool:
    """Whether the row may be the block: one replica, and nothing records or forbids views."""
    return (
        params[0].shape[0] == 1
        and not torch.is_grad_enabled()
        and not torch.is_inference_mode_enabled()
    )
