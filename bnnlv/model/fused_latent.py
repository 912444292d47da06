r"""The latent posterior's share of the fused step (model.fused): the draw of q(z_n), kept with what
its backward needs, and the chain rule from ∂E'/∂z back to q's parameters, without autograd.

q(z_n) = N(μ_n, s_n²) with s² = γ sigmoid(ρ), and :math:`u_n = (μ_n, ρ_n)` [2L] either a row of
the per-point table or the output of the inference network :math:`g_φ(x_n, y_n)` (latent.py).
With :math:`z_{kn} = μ_n + s_n ε_{kn}` the energy E' = E/N depends on z through the likelihood and
the centred log-factor :math:`\log f_n(z) = Σ_l z_l²/(2γ) − ε_l²/2`, and on s through
:math:`\log Z_q(z_n) = Σ_l ½ \log(2π s_l²)`, whose ∂E'/∂ is −1/S (fused.energy_grads):

.. math::
    ∂E'/∂z_{kn} = ∂E'/∂z_{kn}\big|_{LL} + \frac{∂E'}{∂\log f_n(z_{kn})} \frac{z_{kn}}{γ}, \qquad
    ∂E'/∂μ_n = Σ_k ∂E'/∂z_{kn},

    ∂E'/∂ρ_n = \Big(Σ_k ∂E'/∂z_{kn} \frac{ε_{kn}}{2 s_n} − \frac{1}{2 S s_n²}\Big)
               \frac{∂s_n²}{∂ρ_n}
             = ½ \Big(Σ_k ∂E'/∂z_{kn}\, ε_{kn} s_n − \frac1S\Big)\Big(1 − \frac{s_n²}{γ}\Big)

using :math:`∂s²/∂ρ = s²(1 − s²/γ)`. For the table these are its rows' gradients. The inference
network is a ReLU MLP, :math:`h_0 = [x, y]`, :math:`h_j = \operatorname{relu}(h_{j−1} W_j + b_j)`,
:math:`u = h_{J−1} W_J + b_J`; from :math:`δ_J = ∂E'/∂u` [S, 2L] back through its layers,

.. math::
    ∂W_j = h_{j−1}ᵀ δ_j, \qquad ∂b_j = Σ_n δ_{j,n}, \qquad
    δ_{j−1} = (δ_j W_jᵀ) ⊙ 1[h_{j−1} > 0].

Every tensor carries the replicas first (model.replicas): batches [R, S, ·], draws [R, K, S, L].
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor

from bnnlv.model.latent import AmortisedLatent, LatentSample, PerPointLatent, draw_posterior
from bnnlv.model.replicas import Generators


class LatentPass(NamedTuple):
    """K draws of q(z_n) for a batch, and the inputs of each inference-network layer."""

    draw: LatentSample
    layer_inputs: list[Tensor]  # [R, S, d_in] per layer of g_φ, h_0 = [x, y] first; [] for a table


def latent_forward(
    latent: PerPointLatent | AmortisedLatent, index: Tensor, x: Tensor, y: Tensor, n_samples: int,
    generators: Generators | None = None,
) -> LatentPass:  # fmt: skip
    """The latent's forward (same draws as ``latent(index, x, y, n_samples, generators)``),
    keeping what :func:`inference_grads` needs. x [R, S, D_in], y [R, S, D_out], index [R, S]."""
    if isinstance(latent, PerPointLatent):
        return LatentPass(latent(index, x, y, n_samples, generators), [])
    h = torch.cat([x, y], dim=-1)  # [R, S, D_in + D_out]
    layer_inputs = []
    linears = latent.linears
    for j, (weight, bias) in enumerate(linears):
        layer_inputs.append(h)
        h = torch.baddbmm(bias.unsqueeze(1), h, weight)  # [R, S, d_out]
        if j < len(linears) - 1:
            h = h.clamp_min_(0.0)
    mean, rho = h.split(latent.latent_dim, dim=-1)  # [R, S, L] each
    var = latent.prior_var * torch.sigmoid(rho)
    draw = draw_posterior(mean, var, n_samples, latent.prior_var, generators)
    return LatentPass(draw, layer_inputs)


def posterior_grad(
    draw: LatentSample, grad_z: Tensor, grad_log_ratio: Tensor, prior_var: float, n_data: int
) -> Tensor:
    """∂E'/∂(μ_n, ρ_n) [R, S, 2L] from ∂E'/∂z through the likelihood, grad_z [R, K, S, L]
    (overwritten), and ∂E/∂log f_n(z_kn), grad_log_ratio [R, K, S] (fused.EnergyGrads.log_ratio_z,
    E not E')."""
    if grad_z.shape != draw.z.shape or grad_log_ratio.shape != draw.z.shape[:3]:
        raise ValueError(
            f"grad_z {tuple(grad_z.shape)} and grad_log_ratio {tuple(grad_log_ratio.shape)} must "
            f"be [R, K, S, L] and [R, K, S] for z {tuple(draw.z.shape)}"
        )
    batch = draw.z.shape[2]
    grad_z.addcmul_(grad_log_ratio.unsqueeze(-1), draw.z, value=1.0 / (prior_var * n_data))
    grad_rho = (grad_z * draw.noise).sum(1).mul_(draw.var.sqrt()).sub_(1.0 / batch)  # [R, S, L]
    grad_rho.mul_(torch.rsub(draw.var, 0.5, alpha=0.5 / prior_var))
    return torch.cat([grad_z.sum(1), grad_rho], dim=-1)  # [R, S, 2L]


def inference_grads(
    latent: AmortisedLatent, layer_inputs: list[Tensor], grad_out: Tensor
) -> list[tuple[Tensor, Tensor]]:
    """(∂W [R, d_in, d_out], ∂b [R, d_out]) of each layer of g_φ, in order, from ∂E'/∂u =
    grad_out [R, S, 2L] and the layer inputs of :func:`latent_forward`."""
    linears = latent.linears
    if len(layer_inputs) != len(linears):
        raise ValueError(f"need {len(linears)} layer inputs, got {len(layer_inputs)}")
    grads: list[tuple[Tensor, Tensor]] = []
    delta = grad_out  # [R, S, d_out] of layer j
    for j in range(len(linears) - 1, -1, -1):
        h_in = layer_inputs[j]  # [R, S, d_in]
        grads.append((torch.bmm(h_in.transpose(1, 2), delta), delta.sum(1)))
        if j > 0:  # h_in is a ReLU's output: it is > 0 exactly where the ReLU passed
            back = torch.bmm(delta, linears[j][0].transpose(1, 2))  # [R, S, d_in]
            delta = torch.ops.aten.threshold_backward(back, h_in, 0.0)
    grads.reverse()
    return grads


def set_latent_grads(
    latent: PerPointLatent | AmortisedLatent,
    index: Tensor,
    grad_rows: Tensor,
    grad_inference: list[tuple[Tensor, Tensor]],
) -> None:
    """Write the latent's gradient into ``.grad`` (replacing what was there): the table's rows of
    the points ``index`` [R, S] from grad_rows [R, S, 2L], or the inference network's layers from
    grad_inference.

    The table gets a sparse gradient when it is set up for one (``table.sparse``), otherwise a
    dense one that is zero outside those rows; repeated rows add up, as autograd's.
    """
    if isinstance(latent, AmortisedLatent):
        for (weight, bias), (grad_w, grad_b) in zip(latent.linears, grad_inference, strict=True):
            weight.grad, bias.grad = grad_w, grad_b
        return
    table = latent.table.weight
    rows, grads = latent.rows(index).flatten(), grad_rows.flatten(0, 1)  # [R·S], [R·S, 2L]
    if latent.table.sparse:
        # index_select in the step has already rejected rows outside the table
        table.grad = torch.sparse_coo_tensor(rows[None], grads, table.shape, check_invariants=False)
    else:
        table.grad = torch.zeros_like(table).index_add_(0, rows, grads)
