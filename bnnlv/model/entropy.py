"""Entropies of the mixture predictive and their split into aleatoric and epistemic parts.

The predictive of BNN+LV is an explicit equal-weight Gaussian mixture (method.md §4):

    p(y | x)      = (1/(ML)) Σ_{m,l} N(y | F_ml, σ²_ml)   (all M·L components)
    p(y | W_m, x) = (1/L)    Σ_l     N(y | F_ml, σ²_ml)   (the L components of weight sample m)

    H[y|x] = E_W H[y|W,x] + I(y; W)        total = aleatoric + epistemic

Neither entropy has a closed form, so both are estimated from points y drawn from the mixture,
with the EXACT mixture log-density at each. The Gaussian shortcut ½ log(2πe·Var) is an upper
bound that is far too high for a multimodal predictive (method.md §5, defect 6).
Shapes: component means F [M, L, B, D], noise log-variance [D] (homoscedastic: one σ² per
output) or [M, L, B, D] (a noise head: one per component); results [B, D] per output.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
from torch import Tensor

from bnnlv.model.energy import LOG_2PI
from bnnlv.model.likelihood import check_components

# The 3-point Gauss–Hermite rule for E_ε g(ε), ε ~ N(0, 1): exact for polynomials of degree ≤ 5.
NOISE_NODES = (-math.sqrt(3.0), 0.0, math.sqrt(3.0))
NOISE_WEIGHTS = (1.0 / 6.0, 2.0 / 3.0, 1.0 / 6.0)
# Floats of the estimator's temporary per block of points: 1 MiB, within a core's cache.
BLOCK_ELEMENTS = 2**18


class EntropyDecomposition(NamedTuple):
    """Per-point, per-output entropies in nats, [B, D] each, in the units of F."""

    total: Tensor  # H[y|x]
    aleatoric: Tensor  # E_W H[y|W,x]
    epistemic: Tensor  # I(y; W) = total − aleatoric, ≥ 0 up to float rounding (entropy_estimates)


def gaussian_entropy(var: Tensor) -> Tensor:
    """½ log(2πe·var), elementwise: the entropy of N(·, var), and the shortcut for a mixture."""
    return 0.5 * (LOG_2PI + 1.0 + var.log())


def entropy_decomposition(
    f: Tensor,
    log_noise_var: Tensor,
    n_draws: int,
    generator: torch.Generator | None = None,
) -> EntropyDecomposition:
    """:func:`entropy_estimates` with the epistemic part clamped at 0 (a negative estimate is
    float rounding of an exact 0, see there): the decomposition reported in a run's files."""
    raw = entropy_estimates(f, log_noise_var, n_draws, generator)
    epistemic = raw.epistemic.clamp(min=0.0)
    return EntropyDecomposition(raw.total, raw.total - epistemic, epistemic)


def entropy_estimates(
    f: Tensor,
    log_noise_var: Tensor,
    n_draws: int,
    generator: torch.Generator | None = None,
) -> EntropyDecomposition:
    r"""Entropy decomposition of the mixture with component means ``f``, per output, unclamped.

    ==============  ==============  ==========================================================
    symbol          argument        shape / meaning
    ==============  ==============  ==========================================================
    F_mlbd          f               [M, L, B, D] component means f(x_b, z_ml; W_m)
    log σ²_mlbd     log_noise_var   observation-noise log-variance, broadcastable to f: [D]
                                    (homoscedastic) or [M, L, B, D] (a noise head)
    S               n_draws         components drawn per point and output
    ==============  ==============  ==========================================================

    Write the mixture as (1/C) Σ_c N(F_c, σ_c²) over its C = M·L components. Then

    .. math::

        H[y|x] = −\frac1C \sum_c E_ε \log p(F_c + σ_c ε \mid x), \qquad
        I(y;W) = E_{y∼p}\, KL\big(π(\cdot|y) \,\|\, U\{1..M\}\big), \quad
        π(m|y) = \frac{p(y|W_m, x)}{\sum_{m'} p(y|W_{m'}, x)},

    and :math:`E_W H[y|W,x] = H[y|x] − I(y;W)` (the second identity is
    :math:`I(y;W) = E_y KL(p(W|y) ‖ p(W))` with the uniform prior over the M weight samples).

    Estimator: the average over c is Monte Carlo, systematic over the components sorted by
    mean (per point and output: :math:`c_s` = the component of rank ⌊(s + u)·C/S⌋, s = 0…S−1,
    u ~ U(0, 1)), which is unbiased and spreads the draws over the whole predictive; the
    average over ε is the 3-point Gauss–Hermite rule, exact for a lone component and within
    ~0.02 nats elsewhere with one σ per output (tests); with a σ per component, a wide component
    over narrow ones is seen coarsely (0.08 nats too high in a test with σ from 0.07 to 0.45).
    At each of the 3S points :math:`y = F_{c_s} + σ_{c_s}ε_j` the exact
    :math:`\log p(y|W_m, x) = \log \frac1L \sum_l N(y|F_{ml}, σ_{ml}²)` for every m gives
    both log p(y|x) and π(m|y): the epistemic part is a Rao–Blackwellised
    average over m, six times less noisy than sampling m. Every term KL(π ‖ U) is ≥ 0, so a
    negative estimate is float rounding of an exact 0 (≈ −1e-7): it is returned as computed,
    for callers that count such values (:func:`entropy_decomposition` clamps). The estimate is
    at most log M, the cap a finite mixture puts on I(y; W). Per-point Monte Carlo std on a
    trained toy model at S = 16: ≈ 0.02 nats total, ≈ 0.005 epistemic.

    For D > 1 each output is treated on its own: the entropies are those of the per-output
    marginal mixtures (their sum is not the joint entropy; the outputs share components).
    Exact limits: M = 1 or all weight samples equal gives I = 0; one component gives
    ½ log(2πeσ²); two far-apart weight samples give I = log 2 (and H = the mean of their
    entropies + log 2, whatever their σ). Entropies shift by log c when F and σ are scaled by c
    (report original units accordingly); I(y;W) does not.
    Cost: 3·S·M·L·B·D Gaussian densities, BLOCK_ELEMENTS at a time; memory 3·S·M·B·D floats.
    """
    check_components(f, log_noise_var)
    if isinstance(n_draws, bool) or not isinstance(n_draws, int) or n_draws <= 0:
        raise ValueError(f"n_draws must be a positive integer, got {n_draws!r}")
    n_weights, n_latent, batch, n_out = f.shape
    n_comp = n_weights * n_latent
    # per point and output p = b·D + d, its C = M·L components in a row: c = m·L + l
    means = f.reshape(n_comp, batch * n_out).T.contiguous()  # [P, C]
    log_var = log_noise_var.expand_as(f).reshape(n_comp, batch * n_out).T.contiguous()  # [P, C]
    offset = torch.rand((1, batch, n_out), generator=generator, device=f.device).reshape(-1, 1)
    position = (torch.arange(n_draws, device=f.device) + offset) / n_draws  # [P, S]
    rank = (position * n_comp).long().clamp(max=n_comp - 1)  # [P, S]
    comp = means.argsort(dim=1).gather(1, rank)  # [P, S]  drawn component indices
    noise_std = log_var.gather(1, comp).mul(0.5).exp()  # [P, S]  their σ
    nodes = f.new_tensor(NOISE_NODES)[:, None]  # [J, 1]
    y = (means.gather(1, comp)[:, None] + noise_std[:, None] * nodes).flatten(1)  # [P, J·S]

    log_var_lo = log_var.amin(dim=1, keepdim=True)  # [P, 1]
    dens_w = _weight_densities(y, means, log_var, log_var_lo, n_weights)  # [P, J·S, M]
    dens_sum = dens_w.sum(dim=2)  # [P, J·S]  ∝ M·p(y|x)
    log_p = (dens_sum / n_weights).log() - 0.5 * (LOG_2PI + log_var_lo)  # [P, J·S]
    post = dens_w / dens_sum[..., None]  # [P, J·S, M]  π(m | y)
    kl = torch.xlogy(post, post).sum(dim=2) + math.log(n_weights)  # [P, J·S]  KL(π ‖ U)
    weights = f.new_tensor(NOISE_WEIGHTS).repeat_interleave(n_draws) / n_draws  # [J·S]
    total = -(log_p @ weights).reshape(batch, n_out)  # [B, D]
    epistemic = (kl @ weights).reshape(batch, n_out)  # [B, D]
    return EntropyDecomposition(total, total - epistemic, epistemic)


def _weight_densities(
    y: Tensor, means: Tensor, log_var: Tensor, log_var_lo: Tensor, n_weights: int
) -> Tensor:
    """p(y|W_m, x)·√(2π)·σ_lo [P, N, M] at the points y [P, N] of the mixtures with component
    means and noise log-variances [P, C], C = M·L (component c = m·L + l), σ_lo² = exp(log_var_lo)
    [P, 1] the smallest of each row's variances.

    N(y | F_ml, σ_ml²)·√(2π)·σ_lo = exp(−½ (r² + log σ_ml² − log σ_lo²)), r = (y − F)/σ_ml: every
    term is ≤ 1, and no sum underflows to 0, so no max shift is needed. Every y lies within √3 σ_c
    of its own component c, whose term is ≥ e^{−3/2} σ_lo/σ_c: that underflows float32 only if
    σ_c/σ_lo > 10³⁵ (with one σ per output, homoscedastic noise, the ratio is 1). The exponent is
    clamped one nat above the log of the smallest normal float: a smaller term is 0 to rounding
    next to that one, and exp() is thirty times slower where its result is subnormal. Rows are
    taken BLOCK_ELEMENTS / (N·C) at a time, so that the [rows, N, C] temporary stays in cache.
    """
    rows, n_points = y.shape
    n_comp = means.shape[1]
    inv_std = log_var.mul(-0.5).exp()  # [P, C]  1/σ
    excess = log_var - log_var_lo  # [P, C]  ≥ 0
    log_tiny = math.log(torch.finfo(means.dtype).tiny) + 1.0
    dens_w = means.new_empty(rows, n_points, n_weights)
    block = max(1, BLOCK_ELEMENTS // (n_points * n_comp))
    for start in range(0, rows, block):
        part = slice(start, start + block)
        r = (y[part, :, None] - means[part, None]).mul_(inv_std[part, None])  # [p, N, C]
        terms = r.square_().add_(excess[part, None]).mul_(-0.5).clamp_(min=log_tiny).exp_()
        dens_w[part] = terms.unflatten(2, (n_weights, -1)).mean(dim=3)  # [p, N, M]
    return dens_w
