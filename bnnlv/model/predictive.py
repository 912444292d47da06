"""The predictive distribution of BNN+LV and its decomposition (method.md §4).

For M weight samples W_m and L latent draws z_ml ~ N(0, γ) per weight sample the predictive is the
explicit Gaussian mixture p(y|x) ≈ (1/(ML)) Σ_{m,l} N(y | f(x, z_ml; W_m), σ²_ml).
Shapes: component means F [M, L, B, D]; noise log-variance log σ² broadcastable to F: [D] for
homoscedastic noise (one σ² per output), [M, L, B, D] for a noise head (one per component);
targets y [B, D].
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import NamedTuple

import torch
from torch import Tensor

from bnnlv.model.energy import LOG_2PI
from bnnlv.model.entropy import EntropyDecomposition, entropy_decomposition
from bnnlv.model.likelihood import check_components
from bnnlv.model.quantiles import mixture_quantiles


class Moments(NamedTuple):
    """Per-point, per-output predictive moments (law of total variance), all [B, D]."""

    mean: Tensor
    epistemic_var: Tensor  # Var_m(E_l f)
    aleatoric_var: Tensor  # E_m [Var_l f + E_l σ²]

    @property
    def total_var(self) -> Tensor:
        return self.epistemic_var + self.aleatoric_var


def gaussian_log_lik(y: Tensor, f: Tensor, log_noise_var: Tensor) -> Tensor:
    """Σ_d log N(y_d | f_d, σ_d²): y [B, D], f [..., B, D], log σ² [D] or [..., B, D] → [..., B]."""
    return gaussian_log_density(y, f, log_noise_var).sum(dim=-1)


def gaussian_log_density(y: Tensor, f: Tensor, log_noise_var: Tensor) -> Tensor:
    """Elementwise log N(y | f, σ²), broadcast: y [B, D], f and log σ² [..., B, D] (or log σ²
    [D]) → [..., B, D]."""
    return -0.5 * (LOG_2PI + log_noise_var + (y - f).square() * torch.exp(-log_noise_var))


def mixture_log_density(f: Tensor, log_noise_var: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
    """log of the equal-weight mixture (1/(ML)) Σ N(y | F_ml, σ²_ml) at y.

    f: [M, L, B, D], log σ² [D] or [M, L, B, D] → (joint over outputs [B], per-output marginals
    [B, D]).
    """
    check_components(f, log_noise_var)
    n_components = f.shape[0] * f.shape[1]
    per_dim = gaussian_log_density(y, f, log_noise_var)  # [M, L, B, D]
    joint = torch.logsumexp(per_dim.sum(dim=-1), dim=(0, 1)) - math.log(n_components)  # [B]
    marginal = torch.logsumexp(per_dim, dim=(0, 1)) - math.log(n_components)  # [B, D]
    return joint, marginal


def moments(f: Tensor, log_noise_var: Tensor) -> Moments:
    """Mean and variance decomposition of the mixture with component means f [M, L, B, D] and
    noise log σ² [D] or [M, L, B, D] (law of total variance, population variances, ddof = 0):

    epistemic = Var_m(E_l f), aleatoric = E_m [Var_l f + E_l σ²], total = their sum.
    """
    check_components(f, log_noise_var)
    per_weight_mean = f.mean(dim=1)  # [M, B, D]
    mean = per_weight_mean.mean(dim=0)  # [B, D]
    epistemic = per_weight_mean.var(dim=0, unbiased=False)  # [B, D]
    noise_var = log_noise_var.exp().expand_as(f).mean(dim=(0, 1))  # [B, D]  E_{m,l} σ²
    aleatoric = f.var(dim=1, unbiased=False).mean(dim=0) + noise_var  # [B, D]
    return Moments(mean, epistemic, aleatoric)


class Prediction(NamedTuple):
    """Predictive summaries in the model's (standardised) units."""

    moments: Moments  # [B, D] each
    log_density: Tensor | None  # [B]     mixture log p(y|x), joint over outputs
    log_density_per_output: Tensor | None  # [B, D]
    entropy: EntropyDecomposition | None = None  # [B, D] each, when entropy_draws > 0
    quantiles: Tensor | None = None  # [P, B, D] the mixture's quantiles at quantile_probs


def predict_in_chunks(
    sample: Callable[[Tensor], tuple[Tensor, Tensor]],
    x: Tensor,
    y: Tensor | None,
    rows: int,
    entropy_draws: int = 0,
    generators: Sequence[torch.Generator | None] | None = None,
    quantile_probs: Sequence[float] = (),
) -> list[Prediction]:
    """Mixture summaries of G runs at x [G, B, D_in] (run g's points x[g], targets y[g] [B, D]),
    ``rows`` points at a time to bound memory; one Prediction per run.

    ``sample`` maps x rows [G, b, D_in] to the runs' components: means and noise log σ²,
    [G, M, L, b, D] each; moments, the mixture log density at y (if given), with
    ``entropy_draws`` > 0 the entropy decomposition (run g's draws from ``generators[g]``, None:
    torch's global generator), and the mixture's quantiles at ``quantile_probs``
    (:mod:`bnnlv.model.quantiles`) are all computed from the same components.
    """
    runs = x.shape[0]
    generators = generators if generators is not None else [None] * runs
    chunks: list[list[Prediction]] = [[] for _ in range(runs)]
    for start in range(0, x.shape[1], rows):
        stop = start + rows
        f, log_noise_var = sample(x[:, start:stop])  # [G, M, L, b, D] each
        for g, run_chunks in enumerate(chunks):
            joint = marginal = entropy = quantiles = None
            if y is not None:
                joint, marginal = mixture_log_density(f[g], log_noise_var[g], y[g, start:stop])
            if entropy_draws:
                entropy = entropy_decomposition(
                    f[g], log_noise_var[g], entropy_draws, generators[g]
                )
            if quantile_probs:
                quantiles = mixture_quantiles(f[g], log_noise_var[g].exp(), quantile_probs)
            summary = moments(f[g], log_noise_var[g])
            run_chunks.append(Prediction(summary, joint, marginal, entropy, quantiles))
    return [_joined(run_chunks) for run_chunks in chunks]


def _joined(chunks: Sequence[Prediction]) -> Prediction:
    """One Prediction from those of consecutive chunks of points."""

    def cat(parts: Sequence[Tensor | None]) -> Tensor | None:
        present = [part for part in parts if part is not None]
        return torch.cat(present) if present else None

    merged = Moments(
        *(torch.cat(parts) for parts in zip(*(c.moments for c in chunks), strict=True))
    )
    entropies = [c.entropy for c in chunks if c.entropy is not None]
    entropy = None
    if entropies:
        entropy = EntropyDecomposition(*(torch.cat(t) for t in zip(*entropies, strict=True)))
    joint = cat([c.log_density for c in chunks])
    marginal = cat([c.log_density_per_output for c in chunks])
    quantile_parts = [c.quantiles for c in chunks if c.quantiles is not None]
    quantiles = torch.cat(quantile_parts, dim=1) if quantile_parts else None  # [P, B, D]
    return Prediction(merged, joint, marginal, entropy, quantiles)
