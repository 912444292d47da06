"""RowAdam: Adam for per-point tables that moves only the rows that received a gradient.

The per-point posteriors q(z_n) are two [N, L] tables of which a minibatch touches S rows. Plain
Adam would keep moving every absent row with its stale momentum; ``torch.optim.SparseAdam`` avoids
that but costs ≈ 10 ms a step in sparse-tensor bookkeeping even for N = 560. RowAdam keeps dense
moment tables and updates, with per-row bias correction, exactly the rows whose gradient is
non-zero (rows absent from the batch have an exactly zero gradient from ``index_select``).

A sparse gradient (``nn.Embedding(sparse=True)``) names its rows itself: the step then costs
O(S log S) for S looked-up rows instead of a scan of all N rows (≈ 6 ms a step at N = 10⁶ on
one CPU core, a third of a step at batch 1,000).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import torch
from torch import Tensor, nn

from bnnlv.model.lean_adam import LeanAdam


class RowAdam(torch.optim.Optimizer):
    """Lazy Adam over the rows (first axis) of 2-D parameters.

    For each row r with a non-zero gradient g_r, with its own step count t_r:
    m_r ← β₁m_r + (1−β₁)g_r,  v_r ← β₂v_r + (1−β₂)g_r²,
    θ_r ← θ_r − lr · (m_r/(1−β₁^t_r)) / (√(v_r/(1−β₂^t_r)) + ε). Other rows are untouched.
    """

    def __init__(
        self,
        params: Iterable[Tensor],
        lr: float = 1e-2,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
    ) -> None:
        if not lr > 0:
            raise ValueError(f"lr must be > 0, got {lr!r}")
        super().__init__(params, {"lr": lr, "betas": betas, "eps": eps})

    @torch.no_grad()
    def step(self, closure: Callable[[], float] | None = None) -> float | None:  # type: ignore[override]
        loss = closure() if closure is not None else None
        for group in self.param_groups:
            beta1, beta2 = group["betas"]
            for param in group["params"]:
                if param.grad is None:
                    continue
                if param.dim() != 2:
                    raise ValueError(f"RowAdam needs 2-D parameters, got {tuple(param.shape)}")
                state = self.state[param]
                if not state:
                    state["exp_avg"] = torch.zeros_like(param)
                    state["exp_avg_sq"] = torch.zeros_like(param)
                    state["step"] = torch.zeros(
                        param.shape[0], dtype=param.dtype, device=param.device
                    )
                if param.grad.is_sparse:  # rows as looked up, repeats summed by coalesce
                    sparse = param.grad.coalesce()
                    rows, grad = sparse.indices()[0], sparse.values()  # [R], [R, L]
                else:
                    rows = param.grad.ne(0).any(dim=1).nonzero().squeeze(1)  # [R]
                    grad = param.grad.index_select(0, rows)  # [R, L]
                step = state["step"].index_select(0, rows) + 1  # [R]
                exp_avg = state["exp_avg"].index_select(0, rows).lerp_(grad, 1 - beta1)
                exp_avg_sq = state["exp_avg_sq"].index_select(0, rows)
                exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
                correction1 = (1 - beta1**step).unsqueeze(1)  # [R, 1]
                correction2 = (1 - beta2**step).unsqueeze(1)
                denom = (exp_avg_sq / correction2).sqrt_().add_(group["eps"])
                update = exp_avg / correction1 / denom * group["lr"]
                param.index_add_(0, rows, -update)
                state["step"].index_copy_(0, rows, step)
                state["exp_avg"].index_copy_(0, rows, exp_avg)
                state["exp_avg_sq"].index_copy_(0, rows, exp_avg_sq)
        return loss


def model_optimisers(
    network: nn.Module, latent: nn.Module | None, noise: nn.Module, lr: float, noise_lr: float,
    latent_lr: float, per_point_table: bool,
) -> list[torch.optim.Optimizer]:  # fmt: skip
    """The optimisers of a model: one fused Adam over the network (a noise head included) at
    ``lr``, a homoscedastic noise at ``noise_lr`` and an amortised latent at ``lr``; and a
    RowAdam at ``latent_lr`` for a per-point latent table (``per_point_table``).

    torch's fused Adam (one kernel for every parameter; its per-tensor loop was ≈ 0.3 ms of a
    ≈ 3 ms step of the default model), stepped without Adam.step's set-up (model.lean_adam).
    """
    groups = _adam_groups(network, latent, noise, per_point_table)
    lrs = [lr, noise_lr, lr]
    adam_groups = [
        {"params": group, "lr": lr} for group, lr in zip(groups, lrs, strict=False) if group
    ]
    optimisers: list[torch.optim.Optimizer] = [LeanAdam(adam_groups, lr=lr)]
    if latent is not None and per_point_table:
        optimisers.append(RowAdam(list(latent.parameters()), lr=latent_lr))
    return optimisers


def optimiser_parameters(
    network: nn.Module, latent: nn.Module | None, noise: nn.Module, per_point_table: bool
) -> list[list[Tensor]]:
    """Each optimiser's parameters of :func:`model_optimisers`, in its groups' order (the order
    its saved state numbers them in)."""
    adam = [p for group in _adam_groups(network, latent, noise, per_point_table) for p in group]
    table: list[Tensor] = []
    if latent is not None and per_point_table:
        table = list(latent.parameters())
    return [adam, table] if table else [adam]


def _adam_groups(
    network: nn.Module, latent: nn.Module | None, noise: nn.Module, per_point_table: bool
) -> list[list[Tensor]]:
    """Adam's parameter groups: the network, the noise, an amortised latent (some empty)."""
    amortised: list[Tensor] = []
    if latent is not None and not per_point_table:
        amortised = list(latent.parameters())
    return [list(network.parameters()), list(noise.parameters()), amortised]
