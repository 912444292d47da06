"""Bayesian linear layers and the (partially) stochastic MLP built from them, for R replicas.

Shapes, replica axis first, then the sample axis (model.replicas): inputs ``[R, K, B, D_in]``,
outputs ``[R, K, B, D_out]``, log-factors ``[R, K]``, parameters ``[R, …]``. ``forward`` shares one
weight sample W_rk ~ q_r by all B rows of sample k of replica r and returns its log-factor
(method.md §2, factor form). ``cavity_forward`` samples the cavity q̃ ∝ q^{1−a} p^a instead, with
the same shared sampler or with flipout, and returns no log-factor (cavity form of the energy).
Every draw takes the replicas' generators (None: torch's global generator, for tests and tools).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import NamedTuple, cast

import torch
from torch import Tensor, nn

from bnnlv.model.choices import WEIGHT_SAMPLERS, layer_names, select_layers
from bnnlv.model.energy import (
    LOG_2PI,
    cavity_gaussian,
    centred_log_norm,
    centred_log_ratio,
    gaussian_renyi,
)
from bnnlv.model.joined import JoinedParameters
from bnnlv.model.replicas import Generators, randn, random_signs


class LayerOutput(NamedTuple):
    """What a forward pass returns: the activations and N·log f(W_rk) of the weights it used."""

    output: Tensor  # [R, K, B, D_out]
    log_ratio: Tensor  # [R, K]  centred, see energy.centred_log_ratio


class WeightDraw(NamedTuple):
    """K weight samples of each replica's network, layer by layer, with their log-factor and
    log Z_q(W).

    ``sample``, ``noise`` and ``var`` are the joined stochastic weights w = m + √v ε behind
    ``weights`` (P = 0 columns without stochastic layers): what a hand-written backward needs.
    A drawn layer's entry has the replicas' samples on one axis, sample k of replica r at r·K + k
    (what one batched matmul takes); a deterministic layer's is its (m_W [R, d_in, d_out],
    m_b [R, d_out]).
    """

    weights: list[tuple[Tensor, Tensor]]  # per layer (w [R·K, d_in, d_out], b [R·K, d_out])
    log_ratio: Tensor  # [R, K]  centred, see energy.centred_log_ratio
    log_norm_q: Tensor  # [R]  centred, see energy.centred_log_norm
    sample: Tensor  # [R, K, P]  w
    noise: Tensor  # [R, K, P]  ε
    var: Tensor  # [R, P]  v


class NetworkSample(NamedTuple):
    """A network's forward pass with its log-factor and centred log Z_q(W) (energy.py)."""

    output: Tensor  # [R, K, B, D_out]
    log_ratio: Tensor  # [R, K]
    log_norm_q: Tensor  # [R]


def _logit(p: float) -> float:
    return math.log(p) - math.log1p(-p)


class BayesianLinear(nn.Module):
    """y = x W_rk + b_rk with q(w_i) = N(m_i, v_i), v_i = λ·sigmoid(ρ_i) ≤ λ, prior N(0, λ).

    ``stochastic=False`` makes a point-estimate layer (no prior term, log-factor 0).
    ``posterior_std_init`` is the initial std √v of every weight (clamped below √λ). The means
    start at N(0, 1/(D_in + 1)), replica r's drawn from ``generators[r]`` (``replicas`` copies
    from torch's global generator when None).
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        prior_var: float,
        posterior_std_init: float,
        stochastic: bool = True,
        generators: Generators | None = None,
        replicas: int = 1,
    ) -> None:
        super().__init__()
        if in_features <= 0 or out_features <= 0:
            raise ValueError(f"layer sizes must be positive, got {in_features}x{out_features}")
        if prior_var <= 0:
            raise ValueError(f"prior_var must be > 0, got {prior_var!r}")
        if posterior_std_init <= 0:
            raise ValueError(f"posterior_std_init must be > 0, got {posterior_std_init!r}")
        self.prior_var = float(prior_var)
        self.stochastic = stochastic
        self.replicas = len(generators) if generators is not None else replicas
        # N(0, 1/(D_in + 1)) as in the authors' code: unit-scale activations at the start.
        init_std = 1.0 / math.sqrt(in_features + 1)
        like = torch.empty(())
        weight = randn(generators, self.replicas, (in_features, out_features), like) * init_std
        self.weight_mean = nn.Parameter(weight)  # [R, d_in, d_out]
        self.bias_mean = nn.Parameter(torch.zeros(self.replicas, out_features))  # [R, d_out]
        if stochastic:
            rho = _logit(min(posterior_std_init**2 / self.prior_var, 0.5))
            self.weight_rho = nn.Parameter(torch.full_like(weight, rho))
            self.bias_rho = nn.Parameter(torch.full((self.replicas, out_features), rho))

    @property
    def n_stochastic(self) -> int:
        """Number of weights and biases with a posterior per replica (P in log Z_p(W))."""
        per_replica = (self.weight_mean.numel() + self.bias_mean.numel()) // self.replicas
        return per_replica if self.stochastic else 0

    def means(self) -> tuple[Tensor, Tensor]:
        """(m_weight [R, d_in, d_out], m_bias [R, d_out])."""
        return self.weight_mean, self.bias_mean

    def rhos(self) -> tuple[Tensor, Tensor]:
        """(ρ_weight, ρ_bias): v = λ·sigmoid(ρ)."""
        return self.weight_rho, self.bias_rho

    def variances(self) -> tuple[Tensor, Tensor]:
        """(v_weight, v_bias) = λ·sigmoid(ρ)."""
        return (
            self.prior_var * torch.sigmoid(self.weight_rho),
            self.prior_var * torch.sigmoid(self.bias_rho),
        )

    def log_norm_q(self) -> Tensor:
        """Centred log Z_q(W) of this layer per replica [R]: Σ ½ log(2πv) (0 if deterministic)."""
        if not self.stochastic:
            return self.weight_mean.new_zeros(self.replicas)
        v_w, v_b = self.variances()
        return centred_log_norm(v_w, keep_dims=1) + centred_log_norm(v_b, keep_dims=1)

    def log_norm_p(self) -> float:
        """log Z_p(W) of this layer (each replica's): P · ½ log(2πλ)."""
        return self.n_stochastic * 0.5 * (LOG_2PI + math.log(self.prior_var))

    def forward(self, x: Tensor, generators: Generators | None = None) -> LayerOutput:
        """x: [R, K, B, D_in] → LayerOutput([R, K, B, D_out], [R, K]); draws K weight samples
        per replica (its weights, then its biases)."""
        replicas, n_samples = x.shape[:2]
        if not self.stochastic:
            out = _affine(x, self.weight_mean, self.bias_mean)
            return LayerOutput(out, x.new_zeros(replicas, n_samples))
        v_w, v_b = self.variances()
        eps_w = randn(generators, replicas, (n_samples, *self.weight_mean.shape[1:]), x)
        eps_b = randn(generators, replicas, (n_samples, *self.bias_mean.shape[1:]), x)
        w = self.weight_mean[:, None] + v_w.sqrt()[:, None] * eps_w  # [R, K, D_in, D_out]
        b = self.bias_mean[:, None] + v_b.sqrt()[:, None] * eps_b  # [R, K, D_out]
        log_ratio = centred_log_ratio(w, eps_w, self.prior_var, sample_dims=2)
        log_ratio = log_ratio + centred_log_ratio(b, eps_b, self.prior_var, sample_dims=2)
        return LayerOutput(_sampled_affine(x, w, b), log_ratio)

    def renyi_to_prior(self, beta: float) -> Tensor:
        """D_β(q‖p) summed over this layer's weights and biases, per replica [R]."""
        if not self.stochastic:
            return self.weight_mean.new_zeros(self.replicas)
        v_w, v_b = self.variances()
        return gaussian_renyi(self.weight_mean, v_w, 0.0, self.prior_var, beta).flatten(1).sum(
            1
        ) + gaussian_renyi(self.bias_mean, v_b, 0.0, self.prior_var, beta).sum(1)

    def cavity_forward(
        self, x: Tensor, power: float, sampler: str = "shared", generators: Generators | None = None
    ) -> Tensor:
        """x: [R, K, B, D_in] → [R, K, B, D_out] with weights from q̃ ∝ q^{1−a} p^a, a = ``power``.

        ``shared``: one W_rk per sample k for all B rows, as :meth:`forward`. ``flipout`` (Wen et
        al. 2018): W_kb = m̃ + (√ṽ ⊙ ε_k) ⊙ r_kb s_kbᵀ and b_kb = m̃_b + (√ṽ_b ⊙ ε_bk) ⊙ s_kb with
        random signs r [D_in], s [D_out] per row; q̃ is symmetric about m̃, so every row's
        weights are exactly q̃-distributed, and rows are decorrelated at the cost of a second
        matmul. No W_k exists then, hence no log-factor: use ``bb_alpha_energy_cavity``.
        """
        if sampler not in WEIGHT_SAMPLERS:
            raise ValueError(
                f"weight sampler must be one of {list(WEIGHT_SAMPLERS)}, got {sampler!r}"
            )
        if not self.stochastic:
            return _affine(x, self.weight_mean, self.bias_mean)
        v_w, v_b = self.variances()
        mean_w, var_w = cavity_gaussian(self.weight_mean, v_w, self.prior_var, power)
        mean_b, var_b = cavity_gaussian(self.bias_mean, v_b, self.prior_var, power)
        replicas, n_samples = x.shape[:2]
        eps_w = randn(generators, replicas, (n_samples, *mean_w.shape[1:]), x)
        eps_b = randn(generators, replicas, (n_samples, *mean_b.shape[1:]), x)
        delta_w = var_w.sqrt()[:, None] * eps_w  # [R, K, D_in, D_out]
        delta_b = var_b.sqrt()[:, None] * eps_b  # [R, K, D_out]
        if sampler == "shared":
            return _sampled_affine(x, mean_w[:, None] + delta_w, mean_b[:, None] + delta_b)
        sign_in = random_signs(generators, replicas, x.shape[1:], x)  # [R, K, B, D_in]
        sign_out = random_signs(generators, replicas, (*x.shape[1:-1], mean_w.shape[-1]), x)
        perturbation = _sampled_affine(x * sign_in, delta_w, delta_b)  # [R, K, B, D_out]
        return _affine(x, mean_w, mean_b) + perturbation * sign_out


def _affine(x: Tensor, w: Tensor, b: Tensor) -> Tensor:
    """x [R, K, B, d_in] → x w_r + b_r [R, K, B, d_out] for one (w [R, d_in, d_out], b [R, d_out])
    per replica: one matmul per replica for all its K·B rows."""
    rows = x.flatten(1, 2)  # [R, K·B, d_in]
    return torch.baddbmm(b.unsqueeze(1), rows, w).unflatten(1, x.shape[1:3])


def _sampled_affine(x: Tensor, w: Tensor, b: Tensor) -> Tensor:
    """x [R, K, B, d_in] → x w_rk + b_rk [R, K, B, d_out] for w [R, K, d_in, d_out], b [R, K,
    d_out]: one batched matmul for all R·K samples."""
    out = torch.baddbmm(b.flatten(0, 1).unsqueeze(1), x.flatten(0, 1), w.flatten(0, 1))
    return out.unflatten(0, x.shape[:2])  # [R, K, B, d_out]


class BayesianMLP(nn.Module):
    """ReLU MLP of BayesianLinear layers named ``layer0 … layerH`` (the last is the output).

    forward: x [R, K, B, D_in] → LayerOutput(F [R, K, B, D_out], N·log f(W_rk) [R, K]).
    Replica r's initial means come from ``generators[r]``, layer by layer.
    """

    def __init__(
        self,
        in_features: int,
        hidden: Sequence[int],
        out_features: int,
        prior_var: float,
        posterior_std_init: float,
        stochastic_layers: str | Sequence[int | str] | None = "all",
        generators: Generators | None = None,
        replicas: int = 1,
    ) -> None:
        super().__init__()
        sizes = [in_features, *hidden, out_features]
        if any(s <= 0 for s in sizes):
            raise ValueError(f"hidden sizes must be positive, got {list(hidden)}")
        names = layer_names(len(sizes) - 2)
        chosen = select_layers(stochastic_layers, names)
        self.layers = nn.ModuleList(
            BayesianLinear(
                d_in, d_out, prior_var, posterior_std_init, i in chosen, generators, replicas
            )
            for i, (d_in, d_out) in enumerate(zip(sizes[:-1], sizes[1:], strict=True))
        )
        self.replicas = self.bayesian_layers[0].replicas
        # the blocks the stochastic layers' means and ρ are stored in (model.joined)
        sizes = [t.shape[1:].numel() for t in self.stochastic_parameters()[0]]
        self.joined = (JoinedParameters(sizes), JoinedParameters(sizes)) if sizes else None

    @property
    def bayesian_layers(self) -> list[BayesianLinear]:
        """The layers, typed (``nn.ModuleList`` yields plain ``nn.Module``)."""
        return [cast(BayesianLinear, layer) for layer in self.layers]

    @property
    def n_stochastic(self) -> int:
        return sum(layer.n_stochastic for layer in self.bayesian_layers)

    def stochastic_parameters(self) -> tuple[list[Tensor], list[Tensor]]:
        """(means, ρ) of the stochastic layers, each layer's weights then biases: what
        :meth:`draw` reads as one [R, P] row each, in this order."""
        stochastic = [layer for layer in self.bayesian_layers if layer.stochastic]
        means = [t for layer in stochastic for t in layer.means()]
        return means, [t for layer in stochastic for t in layer.rhos()]

    def log_norm_p(self) -> float:
        return sum(layer.log_norm_p() for layer in self.bayesian_layers)

    def renyi_to_prior(self, beta: float) -> Tensor:
        """D_β(q(W)‖p(W)) of all stochastic layers per replica [R] (closed form; β = 1 − α/N)."""
        return torch.stack([layer.renyi_to_prior(beta) for layer in self.bayesian_layers]).sum(0)

    def cavity_forward(
        self, x: Tensor, power: float, sampler: str = "shared", generators: Generators | None = None
    ) -> Tensor:
        """x [R, K, B, D_in] → F [R, K, B, D_out], every layer's weights from its cavity q̃."""
        h = x
        for i, layer in enumerate(self.bayesian_layers):
            h = layer.cavity_forward(h, power, sampler, generators)
            if i < len(self.layers) - 1:
                h = torch.relu(h)
        return h

    def draw(
        self, n_samples: int, like: Tensor, generators: Generators | None = None
    ) -> WeightDraw:
        """K samples W_rk ~ q_r(W) of every layer, their log-factor [R, K] and log Z_q(W) [R].

        The stochastic layers are drawn together: their means and ρ are read as one [R, P] row
        each (stored so outside autograd, model.joined), so the draw w = m + √v ε [R, K, P],
        the log-factor and log Z_q are a handful of tensor operations however many layers there
        are (each layer on its own costs ≈ 30, which dominate a step of a small network). Each
        W_rk has the distribution :meth:`BayesianLinear.forward` draws from. ``like`` gives the
        device and dtype of ε, ``generators`` its source (one per replica; None: torch's global
        generator).
        """
        layers = self.bayesian_layers
        replicas = self.replicas
        if self.joined is None:
            zero, empty = like.new_zeros(replicas), like.new_zeros(replicas, n_samples, 0)
            means = [layer.means() for layer in layers]
            ratio = zero[:, None].expand(replicas, n_samples)
            return WeightDraw(means, ratio, zero, empty, empty, empty[:, 0])
        prior_var = next(layer for layer in layers if layer.stochastic).prior_var  # one prior
        (joined_means, joined_rhos), params = self.joined, self.stochastic_parameters()
        mean, rho = joined_means.row(params[0]), joined_rhos.row(params[1])  # [R, P] each
        var = prior_var * torch.sigmoid(rho)  # [R, P]
        eps = randn(generators, replicas, (n_samples, mean.shape[1]), like)  # [R, K, P]
        sample = torch.addcmul(mean.unsqueeze(1), var.sqrt().unsqueeze(1), eps)  # [R, K, P]
        # each stochastic layer's (w [R·K, d_in, d_out], b [R·K, d_out]), in the order joined above
        flat = sample.view(replicas * n_samples, -1)  # [R·K, P]
        parts = iter(flat.split_with_sizes(joined_means.sizes, dim=1))
        weights = [
            (next(parts).view(-1, *layer.weight_mean.shape[1:]), next(parts))
            if layer.stochastic
            else layer.means()
            for layer in layers
        ]
        log_ratio = centred_log_ratio(sample, eps, prior_var, sample_dims=2)  # [R, K]
        log_norm_q = centred_log_norm(var, keep_dims=1)  # [R]
        return WeightDraw(weights, log_ratio, log_norm_q, sample, eps, var)

    def apply_weights(
        self,
        x: Tensor,
        weights: Sequence[tuple[Tensor, Tensor]],
        inputs: list[Tensor] | None = None,
    ) -> Tensor:
        """x [R, K, B, D_in] → F [R, K, B, D_out] through the layers with ``weights`` (see
        :meth:`draw`): a drawn layer's (w [R·K, d_in, d_out], b [R·K, d_out]) in one batched
        matmul for all R·K samples, a deterministic one's (w [R, d_in, d_out], b [R, d_out]) in
        one per replica for its K·B rows. The activations stay [R·K, B, ·] between layers (no
        reshape but a view per deterministic layer); ``inputs``, when given, receives the input
        of every layer after the first in that shape (what a hand-written backward needs)."""
        replicas, n_samples, batch = x.shape[:3]
        h = x.reshape(replicas * n_samples, batch, x.shape[-1])  # [R·K, B, D_in]
        last = len(weights) - 1
        for i, (layer, (w, b)) in enumerate(zip(self.bayesian_layers, weights, strict=True)):
            if layer.stochastic:
                h = torch.baddbmm(b.unsqueeze(1), h, w)  # [R·K, B, d_out]
            else:
                rows = h.reshape(replicas, n_samples * batch, -1)  # [R, K·B, d_in]
                h = torch.baddbmm(b.unsqueeze(1), rows, w).view(replicas * n_samples, batch, -1)
            if i < last:
                h = h.relu_()  # in place on the fresh activation (its backward needs only h)
                if inputs is not None:
                    inputs.append(h)
        return h.view(replicas, n_samples, batch, -1)

    def sample_forward(self, x: Tensor, generators: Generators | None = None) -> NetworkSample:
        """x [R, K, B, D_in] → F [R, K, B, D_out], log-factor [R, K] and log Z_q(W) [R]: one
        draw, applied."""
        draw = self.draw(x.shape[1], x, generators)
        return NetworkSample(self.apply_weights(x, draw.weights), draw.log_ratio, draw.log_norm_q)

    def forward(self, x: Tensor, generators: Generators | None = None) -> LayerOutput:
        """x [R, K, B, D_in] → LayerOutput(F [R, K, B, D_out], N·log f(W_rk) [R, K])."""
        out = self.sample_forward(x, generators)
        return LayerOutput(out.output, out.log_ratio)
