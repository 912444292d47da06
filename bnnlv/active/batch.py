"""Choosing a batch of candidates from their acquisition scores.

``topk`` takes the ``k`` highest scores. Scores of neighbouring candidates are nearly equal, so
a top-k batch tends to pile onto one spot; ``stochastic`` instead samples k candidates without
replacement with probability proportional to the softmax exp(β·s_b) (Kirsch et al., 2023,
"Stochastic batch acquisition"), by the Gumbel-top-k trick: the k largest of β·s_b + G_b,
G_b ~ Gumbel(0, 1) i.i.d., are such a sample (Kool et al., 2019). β → ∞ is top-k; β = 0 is a
uniformly random batch. Both return positions into the score vector, each at most once.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from bnnlv.active.config import BATCH_KINDS


def select_batch(
    scores: Tensor,
    k: int,
    kind: str = "topk",
    beta: float = 1.0,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Positions [k] of the chosen candidates, distinct, best first, for ``scores`` [B].

    ``beta`` (β ≥ 0, in 1 / units of the score) is used by ``stochastic`` only. Ties in ``topk``
    go to the lower position (a stable sort), so a batch is reproducible.
    """
    if kind not in BATCH_KINDS:
        raise ValueError(f"active.batch must be one of {', '.join(BATCH_KINDS)}, got {kind!r}")
    if scores.dim() != 1:
        raise ValueError(f"scores must be [B], got shape {tuple(scores.shape)}")
    if isinstance(k, bool) or not isinstance(k, int) or not 0 < k <= scores.shape[0]:
        raise ValueError(f"batch size k must be an integer in [1, {scores.shape[0]}], got {k!r}")
    if not torch.isfinite(scores).all():
        bad = int((~torch.isfinite(scores)).nonzero()[0, 0])
        raise ValueError(f"acquisition score of candidate {bad} is {scores[bad].item()}")
    if isinstance(beta, bool) or not isinstance(beta, (int, float)) or not 0 <= beta < math.inf:
        raise ValueError(f"active.beta must be a finite number >= 0, got {beta!r}")
    keys = scores
    if kind == "stochastic":
        uniform = torch.rand(scores.shape, generator=generator, dtype=torch.float64)
        gumbel = -torch.log(-torch.log(uniform.clamp(min=1e-300)))  # [B]  Gumbel(0, 1)
        keys = beta * scores.double() + gumbel
    return torch.sort(keys, descending=True, stable=True).indices[:k]
