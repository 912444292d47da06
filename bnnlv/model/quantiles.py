"""Quantiles and central intervals of the predictive mixture itself (not of a Gaussian with its
mean and variance: the predictive of BNN+LV can be skewed or bimodal, method.md §4).

The predictive at one point and output is the equal-weight mixture of C Gaussians

    F(y) = (1/C) Σ_c Φ((y − μ_c) / σ_c),

with component means μ_c = f(x, z_ml; W_m) and noise variances σ_c². Its p-quantile solves
F(y) = p. F is continuous and increasing, and every component's own p-quantile μ_c + σ_c Φ⁻¹(p)
brackets the answer (at the smallest of them every term is ≤ p, at the largest ≥ p), so a
safeguarded Newton iteration converges from any start: a Newton step F − p over the density
where it stays inside the bracket, a bisection of the bracket where it does not (the flat gap
between two modes). Everything is vectorised over points, outputs and levels.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor

# elements of one [P, C, b, D] work array (32 MiB in float64): bounds a chunk of points' memory
CHUNK_ELEMENTS = 1 << 22
MAX_ITERATIONS = 100  # bisection alone halves the bracket 100 times: far below float64 spacing
# y counts as the quantile once |F(y) − p| ≤ PROB_TOL_EPS · the dtype's machine epsilon:
# 2e-14 in float64, 1e-5 in float32 (F is a mean of C rounded terms; a tighter float32
# tolerance would only bisect rounding noise)
PROB_TOL_EPS = 100
INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)
SQRT_HALF = math.sqrt(0.5)
EXP_FLOOR = -80.0  # exp(−80) ≈ 2e-35: still a normal float32, and nothing beside a density


def central_probs(level: float) -> tuple[float, float]:
    """The probabilities ((1 − level)/2, (1 + level)/2) that bound a central interval."""
    if isinstance(level, bool) or not isinstance(level, (int, float)) or not 0 < level < 1:
        raise ValueError(f"interval level must be a number in (0, 1), got {level!r}")
    return (1.0 - level) / 2.0, (1.0 + level) / 2.0


def mixture_quantiles(means: Tensor, noise_var: Tensor, probs: Sequence[float]) -> Tensor:
    """Quantiles of the equal-weight Gaussian mixture (1/C) Σ_c N(μ_c, σ_c²) per point and output.

    Args:
        means: component means μ [..., B, D]; every axis before the last two is a component axis
            (today [M, L, B, D]: M weight draws × L latent draws), all weighted equally.
        noise_var: σ² > 0, broadcastable to ``means``: [D] (one noise per output) or up to the
            full [..., B, D] (a noise per component and point).
        probs: P levels in (0, 1).

    Returns:
        [P, B, D] quantiles, computed in the dtype of ``means``: float64 solves F(y) = p to
        2e-14, float32 (the model's outputs, twice as fast) to 1e-5.
    """
    if means.dim() < 3:
        raise ValueError(f"means must be [components..., B, D], got shape {tuple(means.shape)}")
    try:
        fits = torch.broadcast_shapes(noise_var.shape, means.shape) == means.shape
    except RuntimeError:
        fits = False
    if not fits:
        raise ValueError(
            f"noise_var of shape {tuple(noise_var.shape)} does not broadcast to the means' "
            f"{tuple(means.shape)}"
        )
    if not bool((noise_var > 0).all()):
        raise ValueError("noise_var must be positive everywhere")
    p = torch.as_tensor(probs, dtype=torch.float64, device=means.device)
    if p.dim() != 1 or p.numel() == 0 or not bool(((p > 0) & (p < 1)).all()):
        raise ValueError(f"probs must be a non-empty list of levels in (0, 1), got {probs!r}")
    mu = means.flatten(0, -3)  # [C, B, D]
    inv_sd = noise_var.to(means.dtype).rsqrt()  # 1/σ before broadcasting: [D] stays small
    inv_sd = torch.broadcast_to(inv_sd, means.shape).flatten(0, -3)  # [C, B, D], maybe a view
    n_components, n_points, n_out = mu.shape
    rows = max(1, CHUNK_ELEMENTS // (n_components * p.numel() * n_out))
    parts = [
        _solve(mu[:, start : start + rows], inv_sd[:, start : start + rows], p)
        for start in range(0, n_points, rows)
    ]
    return torch.cat(parts, dim=1)  # [P, B, D]


def _solve(mu: Tensor, inv_sd: Tensor, p: Tensor) -> Tensor:
    """Safeguarded Newton for F(y) = p: mu, inv_sd = 1/σ [C, b, D], p [P] → y [P, b, D].

    With v_c = (y − μ_c) / (√2 σ_c): F(y) = ½ (1 + mean_c erf(v_c)) and the density
    F'(y) = mean_c exp(−v_c²) / (√(2π) σ_c).
    """
    z_p = torch.special.ndtri(p)[:, None, None, None].to(mu.dtype)  # [P, 1, 1, 1]
    component_q = mu[None] + z_p / inv_sd[None]  # [P, C, b, D] each component's own p-quantile
    lo, hi = component_q.amin(dim=1), component_q.amax(dim=1)  # [P, b, D]
    del component_q
    # start from the Gaussian with the mixture's mean and variance, moved inside the bracket
    mean = mu.mean(dim=0)
    second = (inv_sd.square().reciprocal() + mu.square()).mean(dim=0)
    std = (second - mean.square()).clamp_min(0).sqrt()
    y = torch.minimum(torch.maximum(mean + std * z_p[:, 0], lo), hi)  # [P, b, D]
    target = 2.0 * p[:, None, None].to(mu.dtype) - 1.0  # F = p ⇔ mean erf(v) = 2p − 1
    eps = torch.finfo(mu.dtype).eps
    tol = 2.0 * PROB_TOL_EPS * eps
    step_tol = math.sqrt(eps) * std  # [b, D]
    scale = inv_sd * SQRT_HALF  # [C, b, D]
    for _ in range(MAX_ITERATIONS):
        v = (y[:, None] - mu[None]).mul_(scale[None])  # [P, C, b, D]
        gap = torch.erf(v).mean(dim=1).sub_(target)  # 2 (F(y) − p), [P, b, D]
        # exp(−v²) would fall into subnormal floats (slow) where it no longer matters
        v.square_().neg_().clamp_(min=EXP_FLOOR).exp_()
        density = v.mul_(inv_sd[None]).mean(dim=1).mul_(2.0 * INV_SQRT_2PI)  # 2 F'(y)
        lo = torch.where(gap < 0, y, lo)
        hi = torch.where(gap > 0, y, hi)
        newton = y - gap / density
        inside = (newton > lo) & (newton < hi) & torch.isfinite(newton)
        converged = (gap.abs() <= tol) | (hi - lo <= 4 * eps * y.abs())
        # a Newton step this short lands within ~(step / std)² · std of the root: take it, stop
        last_step = inside & ((newton - y).abs() <= step_tol)
        y = torch.where(inside, newton, torch.where(converged, y, 0.5 * (lo + hi)))
        if bool((converged | last_step).all()):
            break
    return y
