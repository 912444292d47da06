"""The observation noise of a model: what the network's output means for the Gaussian likelihood.

    y = f(x, z; W) + ε,   ε ~ N(0, diag σ²)

``homoscedastic`` (Depeweg et al.'s model, the default): one learned σ_d² per output, the same for
every input. ``heteroscedastic``: σ_d²(x, z; W) comes from a second head of the network, D more
output columns beside the D of the mean; the head's weights are part of W (Bayesian when the
output layer is stochastic, a point estimate when it is not).

Both map the network's output [..., B, D + head] to (mean [..., B, D], log σ²), where log σ² is
[D] for the homoscedastic noise and [..., B, D] for the head: it broadcasts against the mean, and
every function of the predictive (bnnlv.model.predictive, bnnlv.model.entropy) accepts either.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn
from torch.nn import functional

from bnnlv.model.choices import NOISE_KINDS

# σ² ≥ this (standardised units: σ ≥ 1e-3 of the targets' std), as in Lakshminarayanan et al.
# 2017: a point whose mean is fitted exactly cannot drive the likelihood to +∞.
NOISE_VAR_FLOOR = 1e-6


class HomoscedasticNoise(nn.Module):
    """σ_d² = exp(log_var_d), one learned value per output; no head (``head_width`` 0)."""

    def __init__(self, out_features: int, noise_std_init: float) -> None:
        super().__init__()
        self.head_width = 0
        self.log_var = nn.Parameter(torch.full((out_features,), 2.0 * math.log(noise_std_init)))

    def split(self, out: Tensor) -> tuple[Tensor, Tensor]:
        """Network output [..., B, D] → (mean [..., B, D], log σ² [D])."""
        return out, self.log_var


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


Noise = HomoscedasticNoise | HeteroscedasticNoise


def make_noise(kind: str, out_features: int, noise_std_init: float) -> Noise:
    """The noise model ``kind`` (one of :data:`NOISE_KINDS`) for ``out_features`` outputs."""
    if kind == "homoscedastic":
        return HomoscedasticNoise(out_features, noise_std_init)
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
