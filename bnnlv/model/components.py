"""The trained model at new inputs: the predictive mixture's components, and the network with K
weight draws held fixed (a differentiable map for roll-outs).

Both draw the weights W ~ q(W) and, at new inputs, the latent z ~ N(0, γ) (method.md §1: a new
point has no y, so q(z_n) cannot be used). A run's M members (model.replicas; one for every
model but the ensemble) all contribute: the mixture of a run has M·n_w weight draws, member m's
n_w draws being the W axis's block m, so the decompositions treat the member as part of W.
Shapes, sample axes first: weight draws M·n_w (or K), latent draws L, points B, outputs D.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence
from typing import NamedTuple

import torch
from torch import Tensor

from bnnlv.model.entropy import BLOCK_ELEMENTS, NOISE_NODES
from bnnlv.model.layers import BayesianMLP
from bnnlv.model.likelihood import Noise
from bnnlv.model.predictive import Prediction, predict_in_chunks
from bnnlv.model.replicas import randn

# Rows per predict chunk when entropies are requested: 3·S·M·L·rows·D ≤ this many floats (64 MiB).
ENTROPY_CHUNK_ELEMENTS = 2**24


class Components(NamedTuple):
    """The Gaussian components of the predictive mixture (1/(ML)) Σ N(y | mean_ml, noise_var_ml)."""

    mean: Tensor  # [M, L, B, D]  f(x_b, z_ml; W_m)
    noise_var: Tensor  # [M, L, B, D]  σ²_ml


def sample_components(
    network: BayesianMLP,
    noise: Noise,
    latent_dim: int,
    latent_var: float,
    x: Tensor,
    n_weights: int,
    n_latent: int,
    generators: Sequence[torch.Generator] | None = None,
) -> tuple[Tensor, Tensor]:
    """Component means and noise log σ², [G, M·n_w, L, B, D] each, of G runs at x [G, B, D_in]
    (run g's points: x[g]); the network holds G·M replicas, run g's members g·M … g·M + M − 1.

    Run g's draws come from ``generators[g]`` (None: torch's global generator), in this order:
    z ~ N(0, γ) [n_w, L·B, L_z] for each member (none when ``latent_dim`` is 0), then each
    member's W_m ~ q(W) [n_w, P]. The network runs on BLOCK_ELEMENTS / (R·n_w·widest layer) of
    the L·B rows at a time: the activations of the whole chunk would not fit in cache (twice as
    slow on a 2-core CPU), and the rows do not interact.
    """
    runs, batch, d_in = x.shape
    replicas = network.replicas
    members = replicas // runs
    by_replica = None if generators is None else [g for g in generators for _ in range(members)]
    x_rep = x.repeat_interleave(members, dim=0)  # [R, B, D_in]
    x_rep = x_rep[:, None, None].expand(replicas, n_weights, n_latent, batch, d_in)
    x_rep = x_rep.reshape(replicas, n_weights, n_latent * batch, d_in)  # [R, n_w, L·B, D_in]
    if latent_dim:
        z = randn(by_replica, replicas, (n_weights, n_latent * batch, latent_dim), x)
        x_rep = torch.cat([x_rep, z * math.sqrt(latent_var)], dim=-1)  # [R, n_w, L·B, ·]
    draw = network.draw(n_weights, x, by_replica)
    widest = max(layer.weight_mean.shape[-1] for layer in network.bayesian_layers)
    rows = max(1, BLOCK_ELEMENTS // (replicas * n_weights * widest))  # activations in cache
    blocks = range(0, x_rep.shape[2], rows)
    outs = [network.apply_weights(x_rep[:, :, s : s + rows], draw.weights) for s in blocks]
    out = torch.cat(outs, dim=2)  # [R, n_w, L·B, D + head]
    f, log_var = noise.split(out)  # [R, n_w, L·B, D], broadcastable to it
    shape = (runs, members * n_weights, n_latent, batch, f.shape[-1])
    return f.reshape(shape), log_var.expand_as(f).reshape(shape)


class Predictor:
    """The predictive of a model of G runs of M members at new inputs, each run at its own points.

    ``n_weights`` (n_w) and ``n_latent`` (L) are the default draws per member and point;
    ``chunk_rows`` points are predicted at a time. The methods without ``_runs`` serve a model
    of one run (BNNLV's public interface: its components, predictive and drawn dynamics).
    """

    def __init__(
        self, network: BayesianMLP, noise: Noise, latent_dim: int, latent_var: float,
        members: int, n_weights: int, n_latent: int, chunk_rows: int,
    ) -> None:  # fmt: skip
        self.network, self.noise, self.members = network, noise, members
        self.latent_dim, self.latent_var = latent_dim, latent_var
        self.n_weights, self.n_latent, self.chunk_rows = n_weights, n_latent, chunk_rows

    @torch.no_grad()
    def components(
        self, x: Tensor, n_weights: int | None = None, n_latent: int | None = None,
        generator: torch.Generator | None = None,
    ) -> Components:  # fmt: skip
        """The mixture's components at x [B, D_in]: means and noise variances [M·n_w, L, B, D]
        each, W ~ q(W) and z ~ N(0, γ) drawn from ``generator`` (None: torch's global one)."""
        f, log_var = self.sample_runs(self._one_run(x), n_weights, n_latent, _one(generator))
        return Components(f[0], log_var[0].exp())

    def predict(
        self, x: Tensor, y: Tensor | None = None, n_weights: int | None = None,
        n_latent: int | None = None, entropy_draws: int = 0,
        generator: torch.Generator | None = None, quantile_probs: Sequence[float] = (),
    ) -> Prediction:  # fmt: skip
        """:meth:`predict_runs` of the one run at x [B, D_in] (targets y [B, D] if given)."""
        y_run = None if y is None else y[None]  # [1, B, D]
        return self.predict_runs(
            self._one_run(x), y_run, n_weights, n_latent, entropy_draws, _one(generator),
            quantile_probs,
        )[0]  # fmt: skip

    def draw_dynamics(
        self, n_weights: int, generator: torch.Generator | None = None
    ) -> DrawnDynamics:
        """:class:`DrawnDynamics` of the one run with M·``n_weights`` weight draws."""
        self._one_run(None)
        return DrawnDynamics(self.network, self.noise, self.latent_dim, n_weights, generator)

    def _one_run(self, x: Tensor | None) -> Tensor:
        """x [B, D_in] as one run's points [1, B, D_in]; ValueError for a model of several runs."""
        runs = self.network.replicas // self.members
        if runs != 1:
            raise ValueError(f"this model holds {runs} runs; use one of split_runs()")
        return x[None] if x is not None else self.network.bayesian_layers[0].weight_mean

    def sample_runs(
        self, x: Tensor, n_weights: int | None = None, n_latent: int | None = None,
        generators: Sequence[torch.Generator] | None = None,
    ) -> tuple[Tensor, Tensor]:  # fmt: skip
        """:func:`sample_components` with the default draws."""
        return sample_components(
            self.network, self.noise, self.latent_dim, self.latent_var, x,
            n_weights or self.n_weights, n_latent or self.n_latent, generators,
        )  # fmt: skip

    @torch.no_grad()
    def predict_runs(
        self, x: Tensor, y: Tensor | None = None, n_weights: int | None = None,
        n_latent: int | None = None, entropy_draws: int = 0,
        generators: Sequence[torch.Generator] | None = None, quantile_probs: Sequence[float] = (),
    ) -> list[Prediction]:  # fmt: skip
        """Each run's mixture predictive at x [G, B, D_in] (its targets y [G, B, D] if given),
        model.predictive.predict_in_chunks; with ``entropy_draws`` > 0 in smaller chunks, to
        bound the entropy estimator's memory."""
        n_weights, n_latent = n_weights or self.n_weights, n_latent or self.n_latent
        rows = self.chunk_rows
        if entropy_draws:
            members = self.network.replicas // x.shape[0]
            per_row = entropy_draws * len(NOISE_NODES) * members * n_weights * n_latent
            per_row *= self.noise_outputs
            rows = max(1, min(rows, ENTROPY_CHUNK_ELEMENTS // per_row))
        return predict_in_chunks(
            lambda rows_x: self.sample_runs(rows_x, n_weights, n_latent, generators),
            x, y, rows, entropy_draws, generators, quantile_probs,
        )  # fmt: skip

    @property
    def noise_outputs(self) -> int:
        """D, the number of outputs."""
        return self.network.bayesian_layers[-1].weight_mean.shape[-1] - self.noise.head_width


def _one(generator: torch.Generator | None) -> list[torch.Generator] | None:
    """A run's generator as the one-element list of per-run generators (None: torch's global)."""
    return None if generator is None else [generator]


class DrawnDynamics:
    """The network with K weight draws W_k ~ q(W) held fixed: (x, z) → (mean, noise variance).

    For roll-outs (model-based policy search): call it once per time step with that step's
    inputs x [K, B, D_in] and latents z [K, B, L] (L = the model's latent dimension, 0 without a
    latent; the caller draws z ~ N(0, γ)); sample k of every step uses the same W_k. With M
    members (an ensemble), K = M·n_w: member m's n_w draws are block m of the K axis. The result
    is differentiable with respect to x and z, never with respect to the model: it holds copies
    of the drawn weights and of the noise model, none of which requires a gradient, so training
    the model further does not change them either.
    """

    def __init__(
        self, network: BayesianMLP, noise: Noise, latent_dim: int, n_weights: int,
        generator: torch.Generator | None = None,
    ) -> None:  # fmt: skip
        members = network.replicas
        with torch.no_grad():
            like = network.bayesian_layers[0].weight_mean
            generators = None if generator is None else [generator] * members
            drawn = network.draw(n_weights, like, generators).weights
            self.weights = [(w.detach().clone(), b.detach().clone()) for w, b in drawn]
        self.network = network
        self.noise = copy.deepcopy(noise).requires_grad_(False)
        self.latent_dim = latent_dim
        self.n_draws = members * n_weights

    def __call__(self, x: Tensor, z: Tensor) -> tuple[Tensor, Tensor]:
        """x [K, B, D_in], z [K, B, L] → (mean [K, B, D], noise variance σ² [K, B, D])."""
        if x.shape[0] != self.n_draws or z.shape != (*x.shape[:-1], self.latent_dim):
            raise ValueError(
                f"x and z must be [K, B, D_in] and [K, B, L] with K = {self.n_draws} weight "
                f"draws and L = {self.latent_dim}, got {tuple(x.shape)} and {tuple(z.shape)}"
            )
        inputs = torch.cat([x, z], dim=-1)  # [K, B, D_in + L]
        members = self.network.replicas
        inputs = inputs.unflatten(0, (members, -1))  # [M, n_w, B, D_in + L]
        out = self.network.apply_weights(inputs, self.weights)  # [M, n_w, B, ·]
        mean, log_var = self.noise.split(out)
        return mean.flatten(0, 1), log_var.expand_as(mean).exp().flatten(0, 1)
