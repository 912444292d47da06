"""Bayesian linear layers and the (partially) stochastic MLP built from them.

Shapes, sample axis first: inputs ``[K, B, D_in]``, outputs ``[K, B, D_out]``, log-factors ``[K]``.
``forward`` shares one weight sample W_k ~ q by all B rows of sample k and returns its log-factor
(method.md §2, factor form). ``cavity_forward`` samples the cavity q̃ ∝ q^{1−a} p^a instead, with
the same shared sampler or with flipout, and returns no log-factor (cavity form of the energy).
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


class LayerOutput(NamedTuple):
    """What a forward pass returns: the activations and N·log f(W_k) of the weights it used."""

    output: Tensor  # [K, B, D_out]
    log_ratio: Tensor  # [K]  centred, see energy.centred_log_ratio


class WeightDraw(NamedTuple):
    """K weight samples of a network, layer by layer, with their log-factor and log Z_q(W).

    ``sample``, ``noise`` and ``var`` are the joined stochastic weights w = m + √v ε behind
    ``weights`` (P = 0 columns without stochastic layers): what a hand-written backward needs.
    """

    weights: list[tuple[Tensor, Tensor]]  # per layer (w [K, d_in, d_out], b [K, d_out])
    log_ratio: Tensor  # [K]  centred, see energy.centred_log_ratio
    log_norm_q: Tensor  # []  centred, see energy.centred_log_norm
    sample: Tensor  # [K, P]  w
    noise: Tensor  # [K, P]  ε
    var: Tensor  # [P]  v


class NetworkSample(NamedTuple):
    """A network's forward pass with its log-factor and centred log Z_q(W) (energy.py)."""

    output: Tensor  # [K, B, D_out]
    log_ratio: Tensor  # [K]
    log_norm_q: Tensor  # []


def _logit(p: float) -> float:
    return math.log(p) - math.log1p(-p)


class BayesianLinear(nn.Module):
    """y = x W_k + b_k with q(w_i) = N(m_i, v_i), v_i = λ·sigmoid(ρ_i) ≤ λ, prior N(0, λ).

    ``stochastic=False`` makes a point-estimate layer (no prior term, log-factor 0).
    ``posterior_std_init`` is the initial std √v of every weight (clamped below √λ).
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        prior_var: float,
        posterior_std_init: float,
        stochastic: bool = True,
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
        # N(0, 1/(D_in + 1)) as in the authors' code: unit-scale activations at the start.
        init_std = 1.0 / math.sqrt(in_features + 1)
        self.weight_mean = nn.Parameter(torch.randn(in_features, out_features) * init_std)
        self.bias_mean = nn.Parameter(torch.zeros(out_features))
        if stochastic:
            frac = min(posterior_std_init**2 / self.prior_var, 0.5)
            rho = torch.full((in_features, out_features), _logit(frac))
            self.weight_rho = nn.Parameter(rho)
            self.bias_rho = nn.Parameter(torch.full((out_features,), _logit(frac)))

    @property
    def n_stochastic(self) -> int:
        """Number of weights and biases with a posterior (P in log Z_p(W))."""
        return self.weight_mean.numel() + self.bias_mean.numel() if self.stochastic else 0

    def means(self) -> tuple[Tensor, Tensor]:
        """(m_weight, m_bias)."""
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
        """Centred log Z_q(W) of this layer: Σ ½ log(2πv) (0 for a deterministic layer)."""
        if not self.stochastic:
            return self.weight_mean.new_zeros(())
        v_w, v_b = self.variances()
        return centred_log_norm(v_w) + centred_log_norm(v_b)

    def log_norm_p(self) -> float:
        """log Z_p(W) of this layer: P · ½ log(2πλ)."""
        return self.n_stochastic * 0.5 * (LOG_2PI + math.log(self.prior_var))

    def forward(self, x: Tensor) -> LayerOutput:
        """x: [K, B, D_in] → LayerOutput([K, B, D_out], [K]); draws K weight samples."""
        n_samples = x.shape[0]
        if not self.stochastic:
            out = torch.matmul(x, self.weight_mean) + self.bias_mean
            return LayerOutput(out, x.new_zeros(n_samples))
        v_w, v_b = self.variances()
        eps_w = torch.randn((n_samples, *self.weight_mean.shape), device=x.device, dtype=x.dtype)
        eps_b = torch.randn((n_samples, *self.bias_mean.shape), device=x.device, dtype=x.dtype)
        w = self.weight_mean + v_w.sqrt() * eps_w  # [K, D_in, D_out]
        b = self.bias_mean + v_b.sqrt() * eps_b  # [K, D_out]
        out = torch.baddbmm(b.unsqueeze(1), x, w)  # [K, B, D_out]
        log_ratio = centred_log_ratio(w, eps_w, self.prior_var) + centred_log_ratio(
            b, eps_b, self.prior_var
        )
        return LayerOutput(out, log_ratio)

    def renyi_to_prior(self, beta: float) -> Tensor:
        """D_β(q‖p) summed over this layer's weights and biases (0 for a deterministic layer)."""
        if not self.stochastic:
            return self.weight_mean.new_zeros(())
        v_w, v_b = self.variances()
        return (
            gaussian_renyi(self.weight_mean, v_w, 0.0, self.prior_var, beta).sum()
            + gaussian_renyi(self.bias_mean, v_b, 0.0, self.prior_var, beta).sum()
        )

    def cavity_forward(self, x: Tensor, power: float, sampler: str = "shared") -> Tensor:
        """x: [K, B, D_in] → [K, B, D_out] with weights from q̃ ∝ q^{1−a} p^a, a = ``power``.

        ``shared``: one W_k per sample k for all B rows, as :meth:`forward`. ``flipout`` (Wen et
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
            return torch.matmul(x, self.weight_mean) + self.bias_mean
        v_w, v_b = self.variances()
        mean_w, var_w = cavity_gaussian(self.weight_mean, v_w, self.prior_var, power)
        mean_b, var_b = cavity_gaussian(self.bias_mean, v_b, self.prior_var, power)
        n_samples = x.shape[0]
        eps_w = torch.randn((n_samples, *mean_w.shape), device=x.device, dtype=x.dtype)
        eps_b = torch.randn((n_samples, *mean_b.shape), device=x.device, dtype=x.dtype)
        delta_w = var_w.sqrt() * eps_w  # [K, D_in, D_out]
        delta_b = var_b.sqrt() * eps_b  # [K, D_out]
        if sampler == "shared":
            return torch.baddbmm((mean_b + delta_b).unsqueeze(1), x, mean_w + delta_w)
        sign_in = torch.randint(0, 2, x.shape, device=x.device).to(x.dtype) * 2 - 1  # [K, B, D_in]
        out_shape = (*x.shape[:-1], mean_w.shape[1])
        sign_out = (
            torch.randint(0, 2, out_shape, device=x.device).to(x.dtype) * 2 - 1
        )  # [K,B,D_out]
        perturbation = torch.baddbmm(delta_b.unsqueeze(1), x * sign_in, delta_w)  # [K, B, D_out]
        return torch.matmul(x, mean_w) + mean_b + perturbation * sign_out


class BayesianMLP(nn.Module):
    """ReLU MLP of BayesianLinear layers named ``layer0 … layerH`` (the last is the output).

    forward: x [K, B, D_in] → LayerOutput(F [K, B, D_out], N·log f(W_k) summed over layers [K]).
    """

    def __init__(
        self,
        in_features: int,
        hidden: Sequence[int],
        out_features: int,
        prior_var: float,
        posterior_std_init: float,
        stochastic_layers: str | Sequence[int | str] | None = "all",
    ) -> None:
        super().__init__()
        sizes = [in_features, *hidden, out_features]
        if any(s <= 0 for s in sizes):
            raise ValueError(f"hidden sizes must be positive, got {list(hidden)}")
        names = layer_names(len(sizes) - 2)
        chosen = select_layers(stochastic_layers, names)
        self.layers = nn.ModuleList(
            BayesianLinear(d_in, d_out, prior_var, posterior_std_init, stochastic=i in chosen)
            for i, (d_in, d_out) in enumerate(zip(sizes[:-1], sizes[1:], strict=True))
        )

    @property
    def bayesian_layers(self) -> list[BayesianLinear]:
        """The layers, typed (``nn.ModuleList`` yields plain ``nn.Module``)."""
        return [cast(BayesianLinear, layer) for layer in self.layers]

    @property
    def n_stochastic(self) -> int:
        return sum(layer.n_stochastic for layer in self.bayesian_layers)

    def log_norm_p(self) -> float:
        return sum(layer.log_norm_p() for layer in self.bayesian_layers)

    def renyi_to_prior(self, beta: float) -> Tensor:
        """D_β(q(W)‖p(W)) of all stochastic layers (closed form; β = 1 − α/N in the energy)."""
        return torch.stack([layer.renyi_to_prior(beta) for layer in self.bayesian_layers]).sum()

    def cavity_forward(self, x: Tensor, power: float, sampler: str = "shared") -> Tensor:
        """x [K, B, D_in] → F [K, B, D_out] with every layer's weights from its cavity q̃."""
        h = x
        for i, layer in enumerate(self.bayesian_layers):
            h = layer.cavity_forward(h, power, sampler)
            if i < len(self.layers) - 1:
                h = torch.relu(h)
        return h

    def draw(
        self, n_samples: int, like: Tensor, generator: torch.Generator | None = None
    ) -> WeightDraw:
        """K samples W_k ~ q(W) of every layer, their log-factor [K] and log Z_q(W).

        The stochastic layers are drawn together: their means and variances are joined into one
        vector of P entries, so the draw w = m + √v ε [K, P], the log-factor and log Z_q are a
        handful of tensor operations however many layers there are (each layer on its own costs
        ≈ 30, which dominate a step of a small network). Each W_k has the distribution
        :meth:`BayesianLinear.forward` draws from. A deterministic layer's entry is its (m_W, m_b).
        ``like`` gives the device and dtype of ε, ``generator`` its source (None: torch's global).
        """
        layers = self.bayesian_layers
        stochastic = [layer for layer in layers if layer.stochastic]
        if not stochastic:
            zero, empty = like.new_zeros(()), like.new_zeros(n_samples, 0)
            means = [layer.means() for layer in layers]
            return WeightDraw(means, zero.expand(n_samples), zero, empty, empty, empty[0])
        prior_var = stochastic[0].prior_var  # one prior for the whole network
        mean_tensors = [t for layer in stochastic for t in layer.means()]
        mean = torch.cat([t.reshape(-1) for t in mean_tensors])  # [P]
        rho = torch.cat([t.reshape(-1) for layer in stochastic for t in layer.rhos()])
        var = prior_var * torch.sigmoid(rho)  # [P]
        eps = torch.randn(
            (n_samples, mean.shape[0]), device=like.device, dtype=like.dtype, generator=generator
        )
        sample = torch.addcmul(mean, var.sqrt(), eps)  # [K, P]
        # each stochastic layer's (w [K, d_in, d_out], b [K, d_out]), in the order joined above
        parts = iter(sample.split([t.numel() for t in mean_tensors], dim=1))
        weights = [
            (next(parts).view(n_samples, *layer.weight_mean.shape), next(parts))
            if layer.stochastic
            else layer.means()
            for layer in layers
        ]
        log_ratio = centred_log_ratio(sample, eps, prior_var)
        return WeightDraw(weights, log_ratio, centred_log_norm(var), sample, eps, var)

    def apply_weights(self, x: Tensor, weights: Sequence[tuple[Tensor, Tensor]]) -> Tensor:
        """x [K, B, D_in] → F [K, B, D_out] through the layers with ``weights`` (see :meth:`draw`).

        A layer's (w, b) is ([K, d_in, d_out], [K, d_out]) when drawn, ([d_in, d_out], [d_out])
        when deterministic.
        """
        h = x
        for i, (w, b) in enumerate(weights):
            drawn = w.dim() == 3  # [K, d_in, d_out]
            h = torch.baddbmm(b.unsqueeze(1), h, w) if drawn else torch.matmul(h, w) + b
            if i < len(weights) - 1:
                h = torch.relu(h)
        return h

    def sample_forward(self, x: Tensor) -> NetworkSample:
        """x [K, B, D_in] → F [K, B, D_out], log-factor [K] and log Z_q(W): one draw, applied."""
        draw = self.draw(x.shape[0], x)
        return NetworkSample(self.apply_weights(x, draw.weights), draw.log_ratio, draw.log_norm_q)

    def forward(self, x: Tensor) -> LayerOutput:
        """x [K, B, D_in] → LayerOutput(F [K, B, D_out], N·log f(W_k) over all layers [K])."""
        out = self.sample_forward(x)
        return LayerOutput(out.output, out.log_ratio)
