"""Entropy decomposition of the mixture predictive against closed forms and quadrature.

Tolerances: the bias of the 3-point noise rule (≤ 0.017 nats in the cases below, 0 for a lone or
isolated component) plus ≥ 20× the Monte Carlo standard deviation seen over 300 generator seeds
at the same sizes (≤ 2e-4 here); each test also fixes its seed, so it is deterministic.
"""

from __future__ import annotations

import math

import pytest
import torch

from bnnlv.model import entropy
from bnnlv.model.energy import LOG_2PI
from bnnlv.model.entropy import (
    NOISE_NODES,
    NOISE_WEIGHTS,
    entropy_decomposition,
    entropy_estimates,
    gaussian_entropy,
)

LOG2 = math.log(2.0)


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _quadrature_entropy(means: torch.Tensor, var: float) -> float:
    """−∫ p log p of the equal-weight mixture of N(means_c, var) on a fine grid (float64)."""
    means = means.double()
    std = math.sqrt(var)
    grid = torch.linspace(
        means.min() - 12 * std, means.max() + 12 * std, 20_001, dtype=torch.float64
    )
    log_comp = -0.5 * (math.log(2 * math.pi * var) + (grid[:, None] - means) ** 2 / var)
    log_p = torch.logsumexp(log_comp, dim=1) - math.log(len(means))
    return float(-torch.trapezoid(log_p.exp() * log_p, grid))


def test_single_component_is_the_gaussian_entropy() -> None:
    var = torch.tensor([0.3, 4.0])  # D = 2 outputs with different noise
    f = torch.randn(1, 1, 64, 2, generator=_gen(1)) * 5  # M = L = 1
    ent = entropy_decomposition(f, var.log(), 400, _gen())
    expected = gaussian_entropy(var).expand(64, 2)
    assert torch.allclose(ent.total.mean(dim=0), expected[0], atol=0.01)
    assert torch.allclose(ent.total, expected, atol=0.1)
    assert torch.equal(ent.total, ent.aleatoric)  # M = 1: the same numbers, not just close
    assert torch.equal(ent.epistemic, torch.zeros(64, 2))


def test_gaussian_entropy_closed_form() -> None:
    assert gaussian_entropy(torch.tensor(1.0)).item() == pytest.approx(
        0.5 * math.log(2 * math.pi * math.e)
    )


def test_two_far_apart_weight_samples_add_log2_of_epistemic_entropy() -> None:
    sigma = 0.5
    offsets = torch.tensor([-40.0, 40.0]) * sigma  # 80σ apart: the overlap is exp(−800)
    f = (offsets[:, None, None, None] + torch.randn(1, 1, 32, 1, generator=_gen(2))).expand(
        2, 1, 32, 1
    )  # [M=2, L=1, B, 1]
    ent = entropy_decomposition(f.contiguous(), torch.tensor([2 * math.log(sigma)]), 400, _gen())
    single = gaussian_entropy(torch.tensor(sigma**2)).item()
    assert ent.total.mean().item() == pytest.approx(single + LOG2, abs=0.01)
    assert ent.aleatoric.mean().item() == pytest.approx(single, abs=0.01)
    # every draw has log p(y|W_m) − log p(y) = log 2 exactly (the other component gives 0)
    assert torch.allclose(ent.epistemic, torch.full_like(ent.epistemic, LOG2), atol=1e-5)


def test_two_far_apart_latent_components_are_aleatoric() -> None:
    sigma = 0.5
    f = torch.tensor([-20.0, 20.0]).reshape(1, 2, 1, 1).expand(1, 2, 16, 1).contiguous()
    ent = entropy_decomposition(f, torch.tensor([2 * math.log(sigma)]), 400, _gen())
    single = gaussian_entropy(torch.tensor(sigma**2)).item()
    assert ent.total.mean().item() == pytest.approx(single + LOG2, abs=0.01)
    assert torch.equal(ent.epistemic, torch.zeros_like(ent.epistemic))


def test_equal_weight_samples_carry_no_mutual_information() -> None:
    """q(W) a point mass: M identical weight samples, each with a spread of latent components."""
    one = torch.randn(1, 5, 40, 3, generator=_gen(3)) * 2  # [1, L=5, B, D=3]
    f = one.expand(8, 5, 40, 3).contiguous()
    ent = entropy_decomposition(f, torch.tensor([-1.0, 0.0, 1.0]), 64, _gen())
    assert ent.epistemic.abs().max().item() < 1e-5
    assert torch.allclose(ent.total, ent.aleatoric, atol=1e-5)


def test_bimodal_predictive_is_far_below_the_gaussian_shortcut() -> None:
    """½N(−3, 1) + ½N(3, 1): the shortcut ½ log(2πe·Var) with Var = 10 is 0.46 nats too high."""
    f = torch.tensor([-3.0, 3.0]).reshape(1, 2, 1, 1).expand(1, 2, 50, 1).contiguous()
    ent = entropy_decomposition(f, torch.zeros(1), 400, _gen())
    exact = _quadrature_entropy(torch.tensor([-3.0, 3.0]), 1.0)
    shortcut = gaussian_entropy(torch.tensor(10.0)).item()
    assert shortcut - exact > 0.4
    assert ent.total.mean().item() == pytest.approx(exact, abs=0.01)
    assert (shortcut - ent.total).min().item() > 0.3  # per point, not only on average


@pytest.mark.parametrize("var", [0.04, 0.36, 1.0])
def test_overlapping_mixture_matches_quadrature(var: float) -> None:
    """M = 4 weight samples × L = 3 overlapping components: total and aleatoric vs quadrature."""
    means = torch.tensor([[0.0, 0.7, 1.5], [2.0, 2.2, 3.9], [-1.0, 0.1, 0.3], [1.0, 1.1, 1.2]])
    f = means.reshape(4, 3, 1, 1).expand(4, 3, 1000, 1).contiguous()
    ent = entropy_decomposition(f, torch.tensor([math.log(var)]), 100, _gen())
    total = _quadrature_entropy(means.flatten(), var)
    aleatoric = sum(_quadrature_entropy(row, var) for row in means) / 4
    assert ent.total.mean().item() == pytest.approx(total, abs=0.025)
    assert ent.aleatoric.mean().item() == pytest.approx(aleatoric, abs=0.025)
    assert ent.epistemic.mean().item() == pytest.approx(total - aleatoric, abs=0.025)
    assert 0 < total - aleatoric < math.log(4)


def test_scaling_shifts_entropies_by_log_c_and_keeps_mutual_information() -> None:
    f = torch.randn(6, 4, 30, 1, generator=_gen(4))
    log_var = torch.tensor([-1.0])
    c = 3.0
    base = entropy_decomposition(f, log_var, 32, _gen(7))
    scaled = entropy_decomposition(f * c, log_var + 2 * math.log(c), 32, _gen(7))
    assert torch.allclose(scaled.total, base.total + math.log(c), atol=1e-4)
    assert torch.allclose(scaled.aleatoric, base.aleatoric + math.log(c), atol=1e-4)
    assert torch.allclose(scaled.epistemic, base.epistemic, atol=1e-4)


def test_same_generator_seed_gives_the_same_estimate() -> None:
    f = torch.randn(3, 2, 5, 1, generator=_gen(5))
    a = entropy_decomposition(f, torch.zeros(1), 16, _gen(9))
    b = entropy_decomposition(f, torch.zeros(1), 16, _gen(9))
    assert all(torch.equal(x, y) for x, y in zip(a, b, strict=True))


def test_noise_rule_integrates_gaussian_moments_exactly() -> None:
    nodes = torch.tensor(NOISE_NODES, dtype=torch.float64)
    weights = torch.tensor(NOISE_WEIGHTS, dtype=torch.float64)
    moments = [float((weights * nodes**k).sum()) for k in range(6)]
    assert moments == pytest.approx([1.0, 0.0, 1.0, 0.0, 3.0, 0.0], abs=1e-12)


def test_epistemic_part_is_nonnegative_and_at_most_log_m() -> None:
    f = torch.randn(5, 3, 200, 2, generator=_gen(6)) * torch.tensor([0.3, 3.0])
    ent = entropy_decomposition(f, torch.tensor([-2.0, 0.0]), 8, _gen())
    assert (ent.epistemic >= 0).all()
    assert (ent.epistemic <= math.log(5) + 1e-6).all()
    assert torch.allclose(ent.total, ent.aleatoric + ent.epistemic)


def _quadrature_entropy_per_component(means: torch.Tensor, variances: torch.Tensor) -> float:
    """−∫ p log p of the equal-weight mixture of N(means_c, variances_c) (float64 grid)."""
    means, variances = means.double(), variances.double()
    std = variances.sqrt()
    grid = torch.linspace(
        float((means - 12 * std).min()), float((means + 12 * std).max()), 40_001,
        dtype=torch.float64,
    )  # fmt: skip
    log_comp = -0.5 * ((grid[:, None] - means) ** 2 / variances + (2 * math.pi * variances).log())
    log_p = torch.logsumexp(log_comp, dim=1) - math.log(len(means))
    return float(-torch.trapezoid(log_p.exp() * log_p, grid))


def test_one_component_with_its_own_noise_is_its_gaussian_entropy() -> None:
    """M = L = 1 and σ² different at every point and output: H = ½ log(2πeσ²) point by point."""
    var = torch.rand(1, 1, 64, 2, generator=_gen(11)) * 3 + 0.01  # [1, 1, B, D]
    f = torch.randn(1, 1, 64, 2, generator=_gen(12)) * 5
    ent = entropy_decomposition(f, var.log(), 16, _gen())
    torch.testing.assert_close(ent.total, gaussian_entropy(var[0, 0]), rtol=0, atol=1e-5)
    assert torch.equal(ent.total, ent.aleatoric) and torch.equal(ent.epistemic, torch.zeros(64, 2))


def test_two_far_apart_weight_samples_with_different_noise() -> None:
    """Two weight samples 100 σ apart with σ = 0.2 and 1.5: H = mean of their entropies + log 2,
    E_W H = the mean of their entropies, I = log 2."""
    std = torch.tensor([0.2, 1.5])
    f = torch.tensor([-75.0, 75.0]).reshape(2, 1, 1, 1).expand(2, 1, 16, 1).contiguous()
    log_var = (2 * std.log()).reshape(2, 1, 1, 1).expand(2, 1, 16, 1).contiguous()
    ent = entropy_decomposition(f, log_var, 400, _gen())
    mean_entropy = gaussian_entropy(std**2).mean().item()
    assert ent.total.mean().item() == pytest.approx(mean_entropy + LOG2, abs=0.01)
    assert ent.aleatoric.mean().item() == pytest.approx(mean_entropy, abs=0.01)
    assert torch.allclose(ent.epistemic, torch.full_like(ent.epistemic, LOG2), atol=1e-5)


@pytest.mark.parametrize(("scale", "bias"), [(1.0, 0.025), (0.1, 0.1)])
def test_overlapping_components_with_their_own_noise_match_quadrature(
    scale: float, bias: float
) -> None:
    """M = 3 weight samples × L = 2 overlapping components, each with its own σ²: total, E_W H
    and I against quadrature, and H = I + E_W H exactly. The 3-point noise rule is coarse for a
    wide component over narrow ones: at scale 0.1 (σ 0.07 to 0.45, means 0.2 to 1 apart) its
    bias is 0.08 nats (a 60-point rule: 0.001; checked outside the suite)."""
    means = torch.tensor([[0.0, 0.8], [1.5, 1.7], [-0.5, 2.5]])
    variances = torch.tensor([[0.2, 1.0], [0.05, 0.5], [2.0, 0.3]]) * scale
    f = means.reshape(3, 2, 1, 1).expand(3, 2, 1000, 1).contiguous()
    log_var = variances.log().reshape(3, 2, 1, 1).expand(3, 2, 1000, 1).contiguous()
    ent = entropy_decomposition(f, log_var, 100, _gen())
    total = _quadrature_entropy_per_component(means.flatten(), variances.flatten())
    aleatoric = sum(_quadrature_entropy_per_component(means[m], variances[m]) for m in range(3)) / 3
    assert ent.total.mean().item() == pytest.approx(total, abs=bias)
    assert ent.aleatoric.mean().item() == pytest.approx(aleatoric, abs=bias)
    assert ent.epistemic.mean().item() == pytest.approx(total - aleatoric, abs=0.025)
    torch.testing.assert_close(ent.total, ent.aleatoric + ent.epistemic)


def test_components_of_very_different_noise_do_not_underflow() -> None:
    """σ from 1e-3 to 1e3 (the floor of a noise head to a wild one) in one mixture: every
    estimate is finite, and a lone wide component far from a narrow one gives H and I in closed
    form (I = log 2; the narrow component's y are far in the wide one's tail)."""
    std = torch.tensor([1e-3, 1e3])
    f = torch.tensor([0.0, 1e5]).reshape(2, 1, 1, 1).expand(2, 1, 8, 1).contiguous()
    log_var = (2 * std.log()).reshape(2, 1, 1, 1).expand(2, 1, 8, 1).contiguous()
    ent = entropy_decomposition(f, log_var, 64, _gen())
    assert all(torch.isfinite(t).all() for t in ent)
    mean_entropy = gaussian_entropy(std**2).mean().item()
    assert ent.total.mean().item() == pytest.approx(mean_entropy + LOG2, abs=0.01)
    assert torch.allclose(ent.epistemic, torch.full_like(ent.epistemic, LOG2), atol=1e-4)


def test_estimates_are_unclamped_and_the_decomposition_clamps_them() -> None:
    """Identical weight samples: I = 0 exactly, estimated as rounding noise of both signs.
    entropy_estimates returns it as computed; entropy_decomposition clamps it at 0."""
    one = torch.randn(1, 7, 300, 1, generator=_gen(13)) * 3
    f = one.expand(6, 7, 300, 1).contiguous()
    raw = entropy_estimates(f, torch.tensor([-0.7]), 16, _gen())
    clamped = entropy_decomposition(f, torch.tensor([-0.7]), 16, _gen())
    assert (raw.epistemic < 0).any() and raw.epistemic.abs().max().item() < 1e-5
    assert torch.equal(clamped.epistemic, raw.epistemic.clamp(min=0.0))
    assert torch.equal(raw.aleatoric, raw.total - raw.epistemic)
    assert torch.equal(clamped.total, raw.total)


@pytest.mark.parametrize(
    ("shape", "log_var", "draws", "match"),
    [
        ((2, 3, 4), torch.zeros(1), 8, r"f must be \[M, L, B, D\], got shape \(2, 3, 4\)"),
        ((2, 3, 4, 2), torch.zeros(1), 8, r"log_noise_var must be \[D\]=2 or .* got \(1,\)"),
        ((2, 3, 4, 2), torch.zeros(3, 4, 2), 8, r"\[M, L, B, D\]=\(2, 3, 4, 2\), got \(3, 4, 2\)"),
        ((2, 3, 4, 1), torch.zeros(1), 0, "n_draws must be a positive integer, got 0"),
        ((2, 3, 4, 1), torch.zeros(1), True, "n_draws must be a positive integer, got True"),
    ],
)
def test_rejects_bad_input(
    shape: tuple[int, ...], log_var: torch.Tensor, draws: int, match: str
) -> None:
    with pytest.raises(ValueError, match=match):
        entropy_decomposition(torch.zeros(shape), log_var, draws)


def _unblocked_estimates(
    f: torch.Tensor, log_noise_var: torch.Tensor, n_draws: int, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """(total, epistemic) [B, D] as entropy_estimates computed them before it took the points in
    blocks (one [3S, M, L, B, D] temporary, no clamp of the exponent): the oracle of the rewrite."""
    n_weights, n_latent, batch, n_out = f.shape
    n_comp = n_weights * n_latent
    flat = f.reshape(n_comp, batch, n_out)
    flat_log_var = log_noise_var.expand_as(f).reshape(n_comp, batch, n_out)
    offset = torch.rand((1, batch, n_out), generator=generator)
    rank = ((torch.arange(n_draws)[:, None, None] + offset) / n_draws * n_comp).long()
    comp = flat.argsort(dim=0).gather(0, rank.clamp(max=n_comp - 1))
    nodes = torch.tensor(NOISE_NODES)[:, None, None, None]
    y = (flat.gather(0, comp) + flat_log_var.gather(0, comp).mul(0.5).exp() * nodes).flatten(0, 1)
    log_var_lo = flat_log_var.amin(dim=0)
    r = (y[:, None, None] - f) * log_noise_var.mul(-0.5).exp()
    dens_w = (-0.5 * (r.square() + log_noise_var - log_var_lo)).exp().mean(dim=2)
    dens_sum = dens_w.sum(dim=1)
    log_p = (dens_sum / n_weights).log() - 0.5 * (LOG_2PI + log_var_lo)
    post = dens_w / dens_sum[:, None]
    kl = torch.xlogy(post, post).sum(dim=1) + math.log(n_weights)
    weights = torch.tensor(NOISE_WEIGHTS).repeat_interleave(n_draws) / n_draws
    return -torch.einsum("n,nbd->bd", weights, log_p), torch.einsum("n,nbd->bd", weights, kl)


@pytest.mark.parametrize("noise", ["homoscedastic", "per component"])
@pytest.mark.parametrize("block", [1, 5 * 48 * 24, 2**18])
def test_estimates_equal_the_unblocked_computation(
    noise: str, block: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Blocks of one row, of five rows with a ragged last one, and the default: the same figures
    as the all-points-at-once formula (same draws), to float rounding, with components far enough
    apart that the clamped exponents occur."""
    monkeypatch.setattr(entropy, "BLOCK_ELEMENTS", block)
    f = torch.randn(4, 6, 13, 2, generator=_gen(14)) * 4
    log_var = torch.tensor([-3.0, -1.0])
    if noise == "per component":
        log_var = torch.randn(4, 6, 13, 2, generator=_gen(15)) - 3
    ent = entropy_estimates(f, log_var, 16, _gen(16))
    total, epistemic = _unblocked_estimates(f, log_var, 16, _gen(16))
    torch.testing.assert_close(ent.total, total, rtol=0, atol=2e-6)
    torch.testing.assert_close(ent.epistemic, epistemic, rtol=0, atol=2e-6)
    assert (epistemic > 0.1).any()  # components overlap somewhere: not only the trivial limits
