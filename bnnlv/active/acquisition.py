"""Acquisition scores of pool-based active learning: pure functions of the mixture predictive.

A candidate x_b has the predictive of M weight draws × L latent draws (method.md §4),

    p(y | x_b) = (1/(ML)) Σ_{m,l} N(y | F_mlb, σ²_mlb),

given by its component means F [M, L, B, D] and noise log-variances ([D] for a homoscedastic
model, [M, L, B, D] with a noise head). Every acquisition reads the same F, so they share one
sampling budget:

    epistemic       I(y; W) = H[y|x] − E_W H[y|W, x]    what a label would teach about W
    total           H[y|x]                              everything still uncertain
    aleatoric       E_W H[y|W, x]                       the noise no label removes
    epistemic_var   Var_m(E_l F_ml)                     the law-of-total-variance split
    random          a uniform draw per candidate        the baseline

The entropies are the exact-mixture estimates of :func:`bnnlv.model.entropy.entropy_estimates`,
unclamped: a negative estimate of I(y; W) is float rounding of an exact 0 and is counted
(:class:`Scores`), never clipped. With D > 1 outputs a score is the sum over the outputs of the
per-output figure (marginal entropies; the trace of the epistemic covariance). Depeweg et al.
(ICML 2018) choose by I(y; W): the total entropy also chases noise that no label removes.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor

from bnnlv.active.config import check_acquisition
from bnnlv.model.entropy import entropy_estimates
from bnnlv.model.likelihood import check_components
from bnnlv.model.predictive import moments

ENTROPY_ACQUISITIONS = ("epistemic", "total", "aleatoric")


class Scores(NamedTuple):
    """Per-candidate scores (higher: acquire first) and how many I(y; W) estimates were < 0."""

    values: Tensor  # [B]
    n_negative: int | None  # None for acquisitions that do not estimate I(y; W)


def needs_epistemic(acquisition: str) -> bool:
    """Whether the acquisition needs a model with a distribution over its weights."""
    return acquisition != "random"


def acquisition_scores(
    acquisition: str,
    f: Tensor,
    log_noise_var: Tensor,
    n_draws: int,
    generator: torch.Generator | None = None,
) -> Scores:
    """Scores [B] of the candidates with component means ``f`` [M, L, B, D] and noise
    log-variance ``log_noise_var`` ([D], or f's shape with a noise head), in the units of f.

    ``n_draws`` is the entropy estimator's S (components drawn per point); ``generator`` drives
    that estimator's draws and the random acquisition's. Entropies are in nats; epistemic_var in
    the squared units of f.
    """
    check_acquisition(acquisition)
    check_components(f, log_noise_var)
    if acquisition == "random":
        return Scores(torch.rand(f.shape[2], generator=generator, device=f.device), None)
    if acquisition == "epistemic_var":
        return Scores(moments(f, log_noise_var).epistemic_var.sum(dim=-1), None)
    entropy = entropy_estimates(f, log_noise_var, n_draws, generator)
    n_negative = int((entropy.epistemic < 0).sum().item())
    return Scores(getattr(entropy, acquisition).sum(dim=-1), n_negative)
