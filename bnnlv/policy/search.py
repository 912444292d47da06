"""The upper bound: a policy of the same shape optimised on the true system itself.

PSO-P, the paper's reference, plans with the real dynamics; here the policy network's weights θ
are searched directly on the real simulator by the cross-entropy method (Rubinstein 1999):

    θ_i ~ N(μ, diag σ²), i = 1..P;  score each by its average reward on the true system;
    μ, σ ← mean and std of the best ⌈ρ P⌉ (the elite), σ floored at ``min_std``

Each iteration scores its whole population on one fresh protocol (the same start states and τ
for every candidate, so the ranking is not decided by luck of the draw), drawn from a stream
that the evaluation protocol never uses. The search sees no model, so it bounds what the
network can do on this protocol from above, up to the search's own shortfall.
"""

from __future__ import annotations

import numpy as np
import torch

from bnnlv.policy.evaluate import Protocol, average_reward
from bnnlv.policy.network import Policy

# the search's protocols are drawn from seeds above this, the evaluation's below
SEARCH_SEED_OFFSET = 1_000_000


def cross_entropy_search(
    policy: Policy,
    iterations: int,
    population: int,
    elite_frac: float,
    init_std: float,
    min_std: float,
    episodes: int,
    horizon: int,
    seed: int,
) -> list[float]:
    """Set ``policy``'s weights to the final mean μ; return the elite's mean score per iteration.

    μ starts at the policy's current weights, σ at ``init_std``.
    """
    if not 0 < elite_frac <= 1:
        raise ValueError(f"policy.upper_bound.elite_frac must be in (0, 1], got {elite_frac!r}")
    n_elite = max(1, int(np.ceil(elite_frac * population)))
    generator = torch.Generator().manual_seed(seed)
    mean = policy.flat()
    std = torch.full_like(mean, init_std)
    trace: list[float] = []
    for iteration in range(iterations):
        protocol = Protocol.draw(episodes, horizon, SEARCH_SEED_OFFSET + seed * 10_000 + iteration)
        noise = torch.randn((population, mean.numel()), generator=generator)
        candidates = mean + std * noise  # [P, n_params]
        scores = np.empty(population)
        for i, theta in enumerate(candidates):
            policy.load_flat(theta)
            scores[i] = average_reward(policy.act, protocol)[0]
        elite = candidates[torch.as_tensor(np.argsort(-scores)[:n_elite])]
        mean = elite.mean(dim=0)
        std = elite.std(dim=0, unbiased=False).clamp_min(min_std) if n_elite > 1 else std
        trace.append(float(np.sort(scores)[-n_elite:].mean()))
    policy.load_flat(mean)
    return trace
