"""The trained model at new inputs: the predictive mixture's components, and the network with K
weight draws held fixed (a differentiable map for roll-outs).

Both draw the weights W ~ q(W) and, at new inputs, the latent z ~ N(0, γ) (method.md §1: a new
point has no y, so q(z_n) cannot be used). Shapes, sample axes first: weight draws M (or K), latent
draws L, points B, outputs D.
"""

from __future__ import annotations

import copy
from typing import NamedTuple

import torch
from torch import Tensor

from bnnlv.model.latent import sample_prior
from bnnlv.model.layers import BayesianMLP
from bnnlv.model.likelihood import Noise


class Components(NamedTuple):
    """The Gaussian components of the predictive mixture (1/(ML)) Σ N(y | mean_ml, noise_var_ml)."""

    mean: Tensor  # [M, L, B, D]  f(x_b, z_ml; W_m)
    noise_var: Tensor  # [M, L, B, D]  σ²_ml (a broadcast view of [D] for homoscedastic noise)


def sample_components(
    network: BayesianMLP,
    noise: Noise,
    latent_dim: int,
    latent_var: float,
    x: Tensor,
    n_weights: int,
    n_latent: int,
    generator: torch.Generator | None = None,
) -> tuple[Tensor, Tensor]:
    """Component means F [M, L, B, D] and noise log σ² ([D] or [M, L, B, D]) at x [B, D_in].

    Draws z ~ N(0, γ) [M, L·B, L_z] (none when ``latent_dim`` is 0), then W_m ~ q(W), from
    ``generator`` (None: torch's global generator), in that order.
    """
    batch, d_in = x.shape
    x_rep = x.expand(n_weights, n_latent, batch, d_in)  # [M, L, B, D_in]
    x_rep = x_rep.reshape(n_weights, n_latent * batch, d_in)  # [M, L·B, D_in]
    if latent_dim:
        z = sample_prior(n_weights, n_latent * batch, latent_dim, latent_var, x, generator)
        x_rep = torch.cat([x_rep, z], dim=-1)  # [M, L·B, D_in + L_z]
    draw = network.draw(n_weights, x, generator)
    out = network.apply_weights(x_rep, draw.weights)  # [M, L·B, D + head]
    out = out.reshape(n_weights, n_latent, batch, -1)  # [M, L, B, D + head]
    return noise.split(out)


class DrawnDynamics:
    """The network with K weight draws W_k ~ q(W) held fixed: (x, z) → (mean, noise variance).

    For roll-outs (model-based policy search): call it once per time step with that step's
    inputs x [K, B, D_in] and latents z [K, B, L] (L = the model's latent dimension, 0 without a
    latent; the caller draws z ~ N(0, γ)); sample k of every step uses the same W_k. The result
    is differentiable with respect to x and z, never with respect to the model: it holds copies
    of the drawn weights and of the noise model, none of which requires a gradient, so training
    the model further does not change them either.
    """

    def __init__(
        self, network: BayesianMLP, noise: Noise, latent_dim: int, n_weights: int,
        generator: torch.Generator | None = None,
    ) -> None:  # fmt: skip
        with torch.no_grad():
            like = network.bayesian_layers[0].weight_mean
            drawn = network.draw(n_weights, like, generator).weights
            self.weights = [(w.detach().clone(), b.detach().clone()) for w, b in drawn]
        self.network = network
        self.noise = copy.deepcopy(noise).requires_grad_(False)
        self.latent_dim = latent_dim

    def __call__(self, x: Tensor, z: Tensor) -> tuple[Tensor, Tensor]:
        """x [K, B, D_in], z [K, B, L] → (mean [K, B, D], noise variance σ² [K, B, D])."""
        if z.shape != (*x.shape[:-1], self.latent_dim):
            raise ValueError(
                f"z must be [K, B, L]={(*x.shape[:-1], self.latent_dim)} for x of shape "
                f"{tuple(x.shape)}, got {tuple(z.shape)}"
            )
        out = self.network.apply_weights(torch.cat([x, z], dim=-1), self.weights)  # [K, B, ·]
        mean, log_var = self.noise.split(out)  # [K, B, D], [D] or [K, B, D]
        return mean, log_var.exp().expand_as(mean)
