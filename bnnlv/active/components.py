"""The one place where ``bnnlv active`` asks a model for its predictive mixture.

The acquisitions (:mod:`bnnlv.active.acquisition`) are pure functions of the component means
F [M, L, B, D] and the noise log-variances broadcastable to F; this adapter gets both from a
trained model (:meth:`bnnlv.model.lit_module.BNNLV.components`), with the model's own test-time
budget: M = members × ``model.n_samples_test`` weight draws × L = ``model.n_latent_test`` latent
draws (1 without a latent input), the mixture that its test NLL is scored with too. For an
ensemble the member is the W (its members' disagreement is the epistemic part).
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor

from bnnlv.model.lit_module import BNNLV


class Mixture(NamedTuple):
    f: Tensor  # [M, L, B, D]  component means, standardised units
    log_noise_var: Tensor  # [M, L, B, D]  the components' noise log-variances


def has_epistemic_measure(model: BNNLV) -> bool:
    """Whether the model has a distribution over W (a stochastic layer, or several ensemble
    members): without one, I(y; W) and Var_W are 0 by construction and only random acquisition
    makes sense."""
    return model.network.n_stochastic > 0 or model.members > 1


def n_components(model: BNNLV) -> int:
    """M·L, the number of mixture components per point."""
    return model.members * model.predictor.n_weights * model.predictor.n_latent


@torch.no_grad()
def components(model: BNNLV, x: Tensor, generator: torch.Generator | None = None) -> Mixture:
    """The mixture at x [B, D_in] (standardised), its draws from ``generator``."""
    drawn = model.components(x, generator=generator)
    return Mixture(drawn.mean, drawn.noise_var.log())
