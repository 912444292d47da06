"""Roll-outs of a policy through the learned model, and the risk-sensitive criterion.

Algorithm 1 of Depeweg et al. (ICLR 2017): from start states s_0 drawn from the transitions,
roll the policy π(s; θ) through the model for T steps and minimise the mean summed cost

    C = Σ_{t=1..T} c(s_t),   c(s) = l − y = −reward(s)       (the Wet-Chicken cost, ≥ 0 inside)

by stochastic gradient descent. A batch holds K weight draws W_k ~ q(W); each start state is
rolled out R times under each draw, with z ~ N(0, γ) and ε ~ N(0, 1) drawn afresh at every step
(:mod:`bnnlv.policy.dynamics`). Costs come as a tensor ``[K, R, B]``.

Each predicted state is clipped to the river [0, w] × [0, l], the state space (``clip_states``):
outside it the model extrapolates, and an unclipped roll-out lets the policy steer into states
that exist only in the model. Measured on the benchmark's seed 1 (bnn_lv): unclipped, 32 % of
the predicted states after five steps had x < 0, the model's cost fell below the upper bound's,
and the true reward fell to −3.52 (random: −3.88). Clipping stops the gradient of a coordinate
at the bank (clamp), as the walls stop the canoe. With ``clip_states`` the action's a_x is also cut
to [−x, w − x] before the model sees it (:func:`bank_limited`): beyond a bank a_x changes
nothing on the river, and the model is not to be asked about it.

Why: a fall restarts the canoe at the left bank, where the drift is 0 and the turbulence largest;
the good water is at the right bank, w / max|a_x| = 5 steps away. Pushing into the left bank is a
flat direction of the system (x' = 0 for every a_x ≤ −x), but not of the models: few transitions
lie there (46–74 of 2,500 with x < 0.5, a_x < −0.5) and on seeds 1 and 2 the bnn_lv model
over-predicted y' at x = 0, a_y = +1 by +0.59 and +0.83 with a_x = −1, against +0.12 and +0.16
with a_x = 0 (posterior sd of E[y' | W] ≈ 0.12: confidently wrong). The policies of both seeds
pushed into the bank at the origin and stayed there after every fall (93 % and 90 % of the true
system's steps at x' < 0.25; true reward −3.57 and −3.50, random −3.88). Seed 2's model even
rated that policy above the upper bound's over 50 steps (−2.62 against −2.78 per step), so no
roll-out length or optimiser could escape it; cut at the bank, its policy crosses (−2.33).

The horizon (default T = 10) must outlast a crossing of the river: with T = 5 the roll-outs end
as the crossing pays off. On seed 1 (without the cut) T = 10 alone took the policy off the bank
(9 % of steps at x' < 0.25, −2.45), and the model ranked the two policies the same way over
50 steps (−2.80 for T = 5 against −2.58 per step).

The ICML 2018 follow-up splits the variance of C by the law of total variance into an epistemic
part σ_e² = Var_W E[C | W] (what the model does not know) and an aleatoric part
σ_a² = E_W Var[C | W] (the system's own noise), and minimises

    J(θ) = E[C] + β σ_e + γ σ_a                          (each per start state, then averaged)

With β = γ = 0 this is Algorithm 1's objective, computed from the same draws.

σ_e needs common random numbers: with β > 0 (and for the estimates under the model) the K
weight draws share each step's z and ε (``common_noise``), so the K conditional means differ by
the weights and not by the noise. Drawn afresh per weight draw, their spread carries σ_a²/R of
noise; :func:`decompose` removes it on average, but under the benchmark's models σ_a² ≈ 35 and
σ_e² ≈ 0.1, so with K = 10, R = 5 the per-state estimate of σ_e² had sd ≈ 3.3 about its 0.1 and
β's gradient was noise (β lowered σ_a rather than σ_e). Shared, only the part of the noise whose
effect depends on W remains (the two-way residual of :func:`decompose`): sd ≈ 0.10, measured on
seed 0's bnn_lv model and β = 0 policy (20 start states × 4 repeats). The price is a noisier
E[C] gradient (one noise path per roll-out r for all K draws): ≈ 1.6 times the sd there.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import torch
from torch import Tensor

from bnnlv.data.wet_chicken import LENGTH, WIDTH, wet_chicken_reward
from bnnlv.policy.dynamics import ModelDynamics

# (state [K, N, 2]) → action [K, N, 2]: a Policy, or the random policy
Actor = Callable[[Tensor], Tensor]
# Variances below this are treated as 0 inside the square root (its gradient is finite there).
VAR_FLOOR = 1e-12


class RiskEstimate(NamedTuple):
    """Nested Monte Carlo estimates per start state, each [B]."""

    cost: Tensor  # E[C]
    sigma_e: Tensor  # √(Var_W E[C | W])
    sigma_a: Tensor  # √(E_W Var[C | W])


def rollout_costs(
    actor: Actor,
    dynamics: ModelDynamics,
    start: Tensor,
    horizon: int,
    n_draws: int,
    n_rollouts: int,
    clip_states: bool = True,
    common_noise: bool = False,
) -> Tensor:
    """Summed costs C [K, R, B] of K·R roll-outs of ``horizon`` steps from each start [B, 2];
    K = ``n_draws``, rounded up to a multiple of an ensemble's members (ModelDynamics.draw).

    The K weight draws are made first (global torch generator), then at each step the action,
    then z and ε for that step; each predicted state is clipped to the river if ``clip_states``.
    ``common_noise``: the K weight draws share each step's z and ε (roll-out r of every draw
    sees the same noise), for :func:`decompose` with ``common_noise``.
    """
    if start.dim() != 2 or start.shape[1] != 2:
        raise ValueError(f"start states must be [B, 2], got {tuple(start.shape)}")
    if horizon < 1 or n_draws < 1 or n_rollouts < 1:
        raise ValueError(f"horizon, n_draws and n_rollouts must be ≥ 1, got {horizon}, "
                         f"{n_draws}, {n_rollouts}")  # fmt: skip
    batch = start.shape[0]
    drawn = dynamics.draw(n_draws)
    k = drawn.n_draws
    state = start.expand(k, n_rollouts, batch, 2).reshape(k, n_rollouts * batch, 2)
    cost = start.new_zeros(k, n_rollouts * batch)  # [K, R·B]
    low, high = start.new_zeros(2), start.new_tensor([WIDTH, LENGTH])
    for _ in range(horizon):
        action = actor(state)  # [K, R·B, 2]
        if clip_states:
            action = bank_limited(state, action)
        z, eps = dynamics.sample_noise(1 if common_noise else k, n_rollouts * batch)
        z, eps = z.expand(k, -1, -1), eps.expand(k, -1, -1)
        state = drawn.step(state, action, z, eps)  # [K, R·B, 2]
        if clip_states:
            state = state.clamp(low, high)
        cost = cost - wet_chicken_reward(state[..., 1])
    return cost.view(k, n_rollouts, batch)  # [K, R, B]


def bank_limited(state: Tensor, action: Tensor) -> Tensor:
    """The action with a_x cut to [−x, w − x], the part the banks let the canoe move: state,
    action [..., 2] → [..., 2]. Beyond a bank a_x changes nothing on the river (x' = 0 or w
    either way), so the model is not asked about it; its gradient there is 0, as the system's."""
    x = state[..., :1]
    a_x = torch.minimum(torch.maximum(action[..., :1], -x), WIDTH - x)
    return torch.cat([a_x, action[..., 1:]], dim=-1)


def decompose(costs: Tensor, common_noise: bool = False) -> RiskEstimate:
    """E[C], σ_e and σ_a per start state from costs [M, R, B] (M weight draws × R roll-outs).

        m_mb = mean_r C_mrb,   v_mb = Σ_r (C_mrb − m_mb)² / (R − 1)    (unbiased within a draw)
        σ_a² = mean_m v_mb
        σ_e² = max(0, Σ_m (m_mb − m̄_b)² / (M − 1) − σ_a² / R)

    The sample variance of the M conditional means carries σ_a²/R of noise besides σ_e²; it is
    subtracted, so both estimates are unbiased for the variances (before the max). One weight
    draw (M = 1, a deterministic model) gives σ_e = 0; R = 1 gives σ_a = 0 and no correction.

    ``common_noise`` (the M draws shared each roll-out's z and ε, :func:`rollout_costs`): the
    noise that the conditional means share cancels from their spread, and only the part of it
    that interacts with W remains; that part is the residual of the two-way table C_mr,

        s²_i = Σ_mr (C_mr − m_m − c_r + C̄)² / ((M − 1)(R − 1)),   σ_e² = max(0, s²_m − s²_i / R)

    (c_r = mean_m C_mr; unbiased, as for crossed random effects). Where the noise acts alike
    under every W, s²_i ≪ σ_a² and σ_e² comes out with far less noise.
    """
    if costs.dim() != 3:
        raise ValueError(f"costs must be [M, R, B], got shape {tuple(costs.shape)}")
    n_draws, n_rollouts, _ = costs.shape
    cond_mean = costs.mean(dim=1)  # [M, B]
    zero = costs.new_zeros(costs.shape[2])  # [B]
    var_a = costs.var(dim=1).mean(dim=0) if n_rollouts > 1 else zero  # [B]
    noise = var_a
    if common_noise and n_rollouts > 1 and n_draws > 1:
        residual = costs - cond_mean[:, None] - costs.mean(dim=0, keepdim=True) + costs.mean((0, 1))
        noise = residual.square().sum(dim=(0, 1)) / ((n_draws - 1) * (n_rollouts - 1))  # [B]
    var_e = cond_mean.var(dim=0) - noise / n_rollouts if n_draws > 1 else zero  # [B]
    return RiskEstimate(
        cond_mean.mean(dim=0),
        var_e.clamp_min(VAR_FLOOR).sqrt() * (var_e > 0),
        var_a.clamp_min(VAR_FLOOR).sqrt() * (var_a > 0),
    )


def criterion(
    costs: Tensor, beta: float, gamma: float, common_noise: bool = False
) -> tuple[Tensor, RiskEstimate]:
    """J = mean_b (E[C] + β σ_e + γ σ_a) from costs [K, R, B], and the estimates behind it
    (:func:`decompose`, ``common_noise`` as the roll-outs were drawn).

    With β = γ = 0 the value is exactly ``costs.mean()`` (Algorithm 1): the risk terms are left
    out, not multiplied by zero, so their gradients cannot reach it.
    """
    risk = decompose(costs, common_noise)
    objective = costs.mean()
    if beta:
        objective = objective + beta * risk.sigma_e.mean()
    if gamma:
        objective = objective + gamma * risk.sigma_a.mean()
    return objective, risk
