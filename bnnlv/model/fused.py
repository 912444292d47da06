"""The training step with its gradient written out: the chain rule by hand instead of autograd.

A step of the default model is a few hundred small tensor operations, and on the CPU each costs a
few microseconds whatever its size; autograd records every one and replays a node per operation
backwards. The gradient of the energy (energy.bb_alpha_energy) with respect to its inputs is a
softmax over the K samples (:func:`energy_grads`), and from there back to the weights, the noise
and the per-point latents it is two matrix products per layer (:func:`fused_step`). Measured on one
CPU core for the default model (hidden [40, 40], K = 10, batch 140): forward and backward 1.7 ms
with autograd, 1.2 ms here (160 tensor operations, a third of them views).

It covers the factor form with one weight sample per k (``weight_sampler="shared"``), a per-point
or amortised q(z_n) or none (model.fused_latent carries ∂E'/∂z back to the table or the inference
network), either noise model (model.likelihood gives ∂LL/∂ of the network's output, the noise
head's columns included) and any mix of stochastic and deterministic layers; BNNLV uses it where
those hold in one process at full precision (BNNLV.fused_applies) and autograd everywhere else.
The value of the energy is still bb_alpha_energy's; tests check every gradient against autograd
in float64. Every tensor carries the replicas first (model.replicas): one batched matmul per layer
serves all R·K weight samples, and each replica's gradient is that of its own energy.

Notation as in energy.bb_alpha_energy; E' = E/N is the per-point energy the optimiser minimises.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor

from bnnlv.model.energy import bb_alpha_energy, check_alpha, check_sample_terms
from bnnlv.model.fused_latent import (
    inference_grads,
    latent_forward,
    posterior_grad,
    set_latent_grads,
)
from bnnlv.model.latent import AmortisedLatent, PerPointLatent, log_norm_prior
from bnnlv.model.layers import BayesianMLP
from bnnlv.model.likelihood import Noise
from bnnlv.model.replicas import Generators


class EnergyGrads(NamedTuple):
    """∂E/∂ of bb_alpha_energy's sample-dependent inputs (E itself, not E/N)."""

    log_lik: Tensor  # [R, K, S]
    log_ratio_w: Tensor  # [R, K]
    log_ratio_z: Tensor  # [R, K, S]


class FusedStep(NamedTuple):
    """Each replica's per-point energy on its minibatch and its gradient with respect to every
    parameter (the gradient of the replicas' summed energies)."""

    energy: Tensor  # [R]  E/N
    sq_error: Tensor  # [R]  Σ over the batch of ||y − mean_k F||²
    noise_std: Tensor  # [R]  mean σ over the batch's samples, points and outputs
    grad_mean: Tensor  # [R, P]  stochastic layers' means, joined as BayesianMLP.draw joins them
    grad_rho: Tensor  # [R, P]  their ρ
    grad_fixed: list[tuple[Tensor, Tensor]]  # (∂W, ∂b) of each deterministic layer, in order
    grad_log_noise_var: Tensor  # [R, D]  of a homoscedastic noise (unused for a noise head)
    grad_rows: Tensor | None  # [R, S, 2L]  ∂(μ_n, ρ_n): the table's rows or g_φ's output
    grad_inference: list[tuple[Tensor, Tensor]]  # (∂W, ∂b) of each layer of g_φ (amortised only)


def energy_grads(
    log_lik: Tensor, log_ratio_w: Tensor, log_ratio_z: Tensor, n_data: int, alpha: float
) -> EnergyGrads:
    r"""Partial derivatives of :func:`bnnlv.model.energy.bb_alpha_energy` (shapes as there, any
    leading replica axes).

    With :math:`a_{kn} = LL_{kn} − \log f(W_k) − \log f_n(z_{kn})` and the weights
    :math:`p_{kn} = \operatorname{softmax}_k(α a_{kn})` of the logsumexp over the K samples
    (:math:`p_{kn} = 1/K` at α = 0, the mean of the ELBO limit):

    .. math::
        ∂E/∂LL_{kn} = −\frac NS p_{kn}, \quad ∂E/∂(N\log f(W_k)) = \frac1S \sum_n p_{kn},
        \quad ∂E/∂\log f_n(z_{kn}) = \frac NS p_{kn}.

    The log-normalisers enter linearly: ∂E/∂log Z_q(W) = −1, ∂E/∂log Z_q(z_n) = −N/S.
    """
    n_samples, batch = check_sample_terms(log_lik, log_ratio_w, log_ratio_z)
    alpha = check_alpha(alpha)
    if alpha == 0.0:
        weights = torch.full_like(log_lik, 1.0 / n_samples)
    else:
        a = log_lik - log_ratio_w.unsqueeze(-1) / n_data - log_ratio_z
        weights = torch.softmax(alpha * a, dim=-2)  # [R, K, S]
    scale = n_data / batch
    grad_log_lik = weights * -scale
    return EnergyGrads(grad_log_lik, weights.sum(dim=-1) / batch, weights * scale)


@torch.no_grad()
def fused_step(
    network: BayesianMLP,
    latent: PerPointLatent | AmortisedLatent | None,
    noise: Noise,
    x: Tensor,
    y: Tensor,
    index: Tensor,
    n_samples: int,
    n_data: int,
    alpha: float,
    generators: Generators | None = None,
) -> FusedStep:
    """BNNLV.model_step's energies (shared weight sampler) and their gradient, without autograd.

    x [R, S, D_in], y [R, S, D_out], index [R, S] into each replica's training set. Draws z then
    W from the replicas' ``generators`` in the order model_step does, so both see the same
    samples.
    """
    k = n_samples
    replicas, batch, d_in = x.shape
    inputs = x.unsqueeze(1).expand(replicas, k, batch, d_in)  # [R, K, S, D_in]
    # q(z_n): the draw z = μ + s ε, kept with its noise (and g_φ's activations) for the backward
    if latent is not None:
        latent_pass = latent_forward(latent, index, x, y, k, generators)
        z_draw = latent_pass.draw
        inputs = torch.cat([inputs, z_draw.z], dim=-1)  # [R, K, S, D_in + L]
        log_ratio_z, log_norm_q_z = z_draw.log_ratio, z_draw.log_norm_q
        log_norm_p_z = log_norm_prior(latent.latent_dim, latent.prior_var)
    else:
        log_ratio_z = x.new_zeros(replicas, k, batch)
        log_norm_q_z, log_norm_p_z = x.new_zeros(replicas, batch), 0.0
    # q(W): the pooled draw of BayesianMLP.draw, kept with its noise for the backward pass
    draw = network.draw(k, x, generators)
    layers = network.bayesian_layers
    hidden = [inputs.reshape(replicas * k, batch, -1)]  # each layer's input: [R·K, S, d_in]
    out = network.apply_weights(inputs, draw.weights, hidden)  # [R, K, S, D_out + head]
    terms = noise.terms(out, y)
    energy = bb_alpha_energy(
        terms.log_lik, draw.log_ratio, log_ratio_z, draw.log_norm_q, network.log_norm_p(),
        log_norm_q_z, log_norm_p_z, n_data, alpha,
    )  # fmt: skip
    g = energy_grads(terms.log_lik, draw.log_ratio, log_ratio_z, n_data, alpha)
    # ∂E'/∂·, E' = E/N: ∂E'/∂out = ∂E/∂LL · ∂LL/∂out / N (model.likelihood has ∂LL/∂out)
    g_log_lik = g.log_lik.unsqueeze(-1) / n_data  # [R, K, S, 1]
    grad_log_noise_var = (g_log_lik * terms.grad_log_var).sum((1, 2))  # [R, D_out]
    # back through the layers: ∂W = hᵀ ∂out, ∂b = Σ_S ∂out, ∂h = ∂out Wᵀ masked by the ReLU;
    # activations and their gradients stay [R·K, S, ·] (apply_weights' shape)
    grads: list[tuple[Tensor, Tensor]] = []
    grad_out = terms.grad_out.mul_(g_log_lik).view(replicas * k, batch, -1)  # [R·K, S, ·]
    grad_z = None
    for i in range(len(layers) - 1, -1, -1):
        w, _ = draw.weights[i]
        h_in = hidden[i]  # [R·K, S, d_in]
        rows_out = grad_out.view(replicas, k * batch, -1)  # [R, K·S, d_out]
        if layers[i].stochastic:  # w [R·K, d_in, d_out]: one matmul for all R·K samples
            grads.append((torch.bmm(h_in.transpose(1, 2), grad_out), grad_out.sum(1)))
        else:  # deterministic: one W per replica, its gradient summed over the samples
            # reshape: with one replica and no latent, the inputs are x expanded over K (a
            # stride-0 axis, which no view merges with S)
            rows_in = h_in.reshape(replicas, k * batch, -1)  # [R, K·S, d_in]
            grads.append((torch.bmm(rows_in.transpose(1, 2), rows_out), rows_out.sum(1)))
        if i == 0 and latent is None:
            break
        # the first layer's input gradient is needed only for its latent columns
        w_back = (w[..., d_in:, :] if i == 0 else w).transpose(-1, -2)  # [·, d_out, ·]
        # with one output (d_out = 1) ∂out Wᵀ is an outer product: no sums, so a broadcast
        # product gives the matmul's numbers exactly, and faster (memory-bound at many replicas)
        product = torch.mul if grad_out.shape[-1] == 1 else torch.bmm
        if layers[i].stochastic:
            back = product(grad_out, w_back)  # [R·K, S, ·]
        else:
            back = product(rows_out, w_back).view(replicas * k, batch, -1)  # [R·K, S, ·]
        if i > 0:
            grad_out = torch.ops.aten.threshold_backward(back, h_in, 0.0)
        else:
            grad_z = back.view(replicas, k, batch, -1)  # [R, K, S, L]
    grads.reverse()
    stochastic = [pair for pair, layer in zip(grads, layers, strict=True) if layer.stochastic]
    fixed = [pair for pair, layer in zip(grads, layers, strict=True) if not layer.stochastic]
    grad_mean = grad_rho = x.new_zeros(replicas, 0)
    if stochastic:
        # w = m + √v ε, v = λ sigmoid(ρ); N·log f(W_k) adds w/λ, −log Z_q(W) adds −1/(2v), so
        # ∂E'/∂ρ = (Σ_k ∂E'/∂w ε/(2√v) − 1/(2Nv)) · ∂v/∂ρ, ∂v/∂ρ = v(1 − v/λ)
        #        = ½ (Σ_k ∂E'/∂w ε √v − 1/N)(1 − v/λ)
        prior_var = layers[0].prior_var
        flat = [t.view(replicas, k, -1) for pair in stochastic for t in pair]  # [R, K, ·]
        grad_w = torch.cat(flat, dim=2)  # [R, K, P]
        grad_w.addcmul_(g.log_ratio_w.unsqueeze(-1), draw.sample, value=1.0 / (prior_var * n_data))
        grad_mean = grad_w.sum(1)  # [R, P]
        grad_rho = (grad_w * draw.noise).sum(1).mul_(draw.var.sqrt()).sub_(1.0 / n_data)
        grad_rho.mul_(torch.rsub(draw.var, 0.5, alpha=0.5 / prior_var))
    grad_rows, grad_inference = None, []
    if latent is not None and grad_z is not None:  # model.fused_latent's docstring has the math
        grad_rows = posterior_grad(z_draw, grad_z, g.log_ratio_z, latent.prior_var, n_data)
        if isinstance(latent, AmortisedLatent):
            grad_inference = inference_grads(latent, latent_pass.layer_inputs, grad_rows)
    mean_residual = terms.residual.mean(dim=1).flatten(1)  # y − mean_k F, [R, S·D_out]
    sq_error = torch.linalg.vecdot(mean_residual, mean_residual)  # [R]
    noise_std = terms.log_var.mul(0.5).exp_().mean((1, 2, 3))  # [R]: its broadcast axes too
    return FusedStep(
        energy / n_data, sq_error, noise_std, grad_mean, grad_rho, fixed, grad_log_noise_var,
        grad_rows, grad_inference,
    )  # fmt: skip


def set_grads(
    network: BayesianMLP,
    latent: PerPointLatent | AmortisedLatent | None,
    noise: Noise,
    index: Tensor,
    step: FusedStep,
) -> None:
    """Write a FusedStep's gradient into the parameters' ``.grad`` (replacing what was there);
    the latent's as fused_latent.set_latent_grads writes it."""
    layers = network.bayesian_layers
    for layer, (grad_w, grad_b) in zip(
        [layer for layer in layers if not layer.stochastic], step.grad_fixed, strict=True
    ):
        layer.weight_mean.grad, layer.bias_mean.grad = grad_w, grad_b
    if network.joined is not None:  # the means' and ρ's [R, P] rows, joined as draw joins them
        params, grads = network.stochastic_parameters(), (step.grad_mean, step.grad_rho)
        for joined, group, grad in zip(network.joined, params, grads, strict=True):
            joined.set_grad(group, grad)
    for param in noise.parameters():  # a homoscedastic noise's log σ² [R, D]
        param.grad = step.grad_log_noise_var
    if latent is not None and step.grad_rows is not None:
        set_latent_grads(latent, index, step.grad_rows, step.grad_inference)
