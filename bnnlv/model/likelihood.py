"""The observation noise of a model: what the network's output means for the Gaussian likelihood.

    y = f(x, z; W) + ε,   ε ~ N(0, diag σ²)

``homoscedastic`` (Depeweg et al.'s model, the default): one learned σ_d² per output, the same for
every input. ``heteroscedastic``: σ_d²(x, z; W) comes from a second head of the network, D more
output columns beside the D of the mean; the head's weights are part of W (Bayesian when the
output layer is stochastic, a point estimate when it is not).

Both map the network's output [R, K, B, D + head] (replicas, samples, points, outputs) to
(mean [R, K, B, D], log σ²), where log σ² is [R, 1, 1, D] for the homoscedastic noise and
[R, K, B, D] for the head: it broadcasts against the mean. The functions of the predictive
(bnnlv.model.predictive, bnnlv.model.entropy) take log σ² as [D] or one per component. Both also
give what the hand-written gradient (model.fused) needs: :meth:`HomoscedasticNoise.terms`.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
from torch import Tensor, nn
from torch.nn import functional

from bnnlv.model.choices import NOISE_KINDS
from bnnlv.model.energy import LOG_2PI

# σ² ≥ this (standardised units: σ ≥ 1e-3 of the targets' std), as in Lakshminarayanan et al.
# 2017: a point whose mean is fitted exactly cannot drive the likelihood to +∞.
NOISE_VAR_FLOOR = 1e-6


class LikelihoodTerms(NamedTuple):
    """The Gaussian log-likelihood of a batch and its partial derivatives (model.fused)."""

    log_lik: Tensor  # [R, K, S]  LL = Σ_d log N(y_d | f_d, σ_d²)
    mean: Tensor  # [R, K, S, D]  f
    residual: Tensor  # [R, K, S, D]  y − f
    grad_out: Tensor  # [R, K, S, D + head]  ∂LL/∂(the network's output)
    grad_log_var: Tensor  # [R, K, S, D]  ∂LL/∂log σ² = ½((y − f)²/σ² − 1)
    log_var: Tensor  # log σ², broadcastable to f


def likelihood_terms(y: Tensor, mean: Tensor, log_var: Tensor) -> LikelihoodTerms:
    """LL and its derivatives for y [R, S, D], f [R, K, S, D], log σ² broadcastable to f; the
    network's output is f itself here (``grad_out`` = ∂LL/∂f = (y − f)/σ²)."""
    residual = y.unsqueeze(1) - mean  # [R, K, S, D]
    scaled = residual * torch.exp(-log_var)  # (y − f)/σ²
    sq_scaled = residual * scaled
    log_lik = -0.5 * (sq_scaled + log_var + LOG_2PI).sum(-1)  # [R, K, S]
    return LikelihoodTerms(log_lik, mean, residual, scaled, 0.5 * (sq_scaled - 1.0), log_var)


class HomoscedasticNoise(nn.Module):
    """σ_d² = exp(log_var_d), one learned value per output and replica (log_var [R, D]); no
    head (``head_width`` 0)."""

    def __init__(self, out_features: int, noise_std_init: float, replicas: int = 1) -> None:
        super().__init__()
        self.head_width = 0
        log_var = torch.full((replicas, out_features), 2.0 * math.log(noise_std_init))
        self.log_var = nn.Parameter(log_var)

    def split(self, out: Tensor) -> tuple[Tensor, Tensor]:
        """Network output [R, K, B, D] → (mean [R, K, B, D], log σ² [R, 1, 1, D])."""
        return out, self.log_var.view(self.log_var.shape[0], 1, 1, -1)

    def terms(self, out: Tensor, y: Tensor) -> LikelihoodTerms:
        """:func:`likelihood_terms` of the output [R, K, S, D] at y [R, S, D]."""
        return likelihood_terms(y, *self.split(out))


class HeteroscedasticNoise(nn.Module):
    """σ²(x, z; W) = softplus(h + c) + σ²_min from a head h of D output columns.

    Why softplus and not exp(h): σ² grows linearly, not exponentially, in a large head output, so
    one wide weight draw of a Bayesian head cannot make σ² explode, and ∂NLL/∂h stays bounded for
    large h; the floor σ²_min (:data:`NOISE_VAR_FLOOR`) bounds the precision 1/σ² ≤ 10⁶. The
    offset c = softplus⁻¹(σ₀² − σ²_min) is a constant, not a parameter: at h = 0, where the
    weights' prior N(0, λ) centres the head, σ = σ₀ = ``noise_std_init``.
    """

    def __init__(self, out_features: int, noise_std_init: float) -> None:
        super().__init__()
        excess = noise_std_init**2 - NOISE_VAR_FLOOR
        if not excess > 0:
            raise ValueError(
                f"noise_std_init must exceed {math.sqrt(NOISE_VAR_FLOOR):g} (the floor of the "
                f"heteroscedastic noise std), got {noise_std_init!r}"
            )
        self.head_width = out_features
        self.offset = excess + math.log(-math.expm1(-excess))  # log(e^excess − 1), no overflow

    def split(self, out: Tensor) -> tuple[Tensor, Tensor]:
        """Network output [..., B, 2D] → (mean [..., B, D], log σ² [..., B, D])."""
        mean, head = out.split(self.head_width, dim=-1)
        return mean, (functional.softplus(head + self.offset) + NOISE_VAR_FLOOR).log()

    def terms(self, out: Tensor, y: Tensor) -> LikelihoodTerms:
        """:func:`likelihood_terms` of the output [R, K, S, 2D] at y [R, S, D], with ∂LL/∂h =
        ∂LL/∂log σ² · sigmoid(h + c)/σ² for the head h."""
        mean, head = out.split(self.head_width, dim=-1)
        shifted = head + self.offset
        var = functional.softplus(shifted) + NOISE_VAR_FLOOR  # [R, K, S, D]
        terms = likelihood_terms(y, mean, var.log())
        grad_head = terms.grad_log_var * torch.sigmoid(shifted) / var
        return terms._replace(grad_out=torch.cat([terms.grad_out, grad_head], dim=-1))


Noise = HomoscedasticNoise | HeteroscedasticNoise


def make_noise(kind: str, out_features: int, noise_std_init: float, replicas: int = 1) -> Noise:
    """The noise model ``kind`` (one of :data:`NOISE_KINDS`) for ``out_features`` outputs and
    ``replicas`` replicas (the heteroscedastic head's parameters are the network's)."""
    if kind == "homoscedastic":
        return HomoscedasticNoise(out_features, noise_std_init, replicas)
    if kind == "heteroscedastic":
        return HeteroscedasticNoise(out_features, noise_std_init)
    raise ValueError(f"noise must be one of {list(NOISE_KINDS)}, got {kind!r}")


def check_components(f: Tensor, log_noise_var: Tensor) -> None:
    """ValueError unless f is [M, L, B, D] and log σ² is [D] (one per output) or f's shape (one
    per component)."""
    if f.dim() != 4:
        raise ValueError(f"f must be [M, L, B, D], got shape {tuple(f.shape)}")
    if log_noise_var.shape not in (f.shape[-1:], f.shape):
        raise ValueError(
            f"log_noise_var must be [D]={f.shape[-1]} or f's shape [M, L, B, D]="
            f"{tuple(f.shape)}, got {tuple(log_noise_var.shape)}"
        )
