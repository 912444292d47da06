"""model.quantiles: the mixture's own quantiles against closed forms, the limiting cases, and
the rejections."""

from __future__ import annotations

from statistics import NormalDist

import pytest
import torch

from bnnlv.model import quantiles
from bnnlv.model.quantiles import central_probs, mixture_quantiles

Z95 = NormalDist().inv_cdf(0.95)  # 1.6448…


def mixture_cdf(means: torch.Tensor, noise_var: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """F(y) of the equal-weight mixture, means [C, B, D], y [P, B, D] → [P, B, D]."""
    u = (y[:, None] - means[None]) / noise_var.sqrt()
    return torch.special.ndtr(u).mean(dim=1)


def test_one_component_gives_mean_plus_z_sigma() -> None:
    means = torch.tensor([[[1.0, -2.0], [0.0, 30.0], [5.5, 0.25]]], dtype=torch.float64)[None]
    noise_var = torch.tensor([4.0, 0.01], dtype=torch.float64)  # [D]: σ = 2, 0.1
    q = mixture_quantiles(means, noise_var, central_probs(0.9))  # [2, 3, 2]
    sigma = noise_var.sqrt()
    torch.testing.assert_close(q[0], means[0, 0] - Z95 * sigma, rtol=0, atol=1e-10)
    torch.testing.assert_close(q[1], means[0, 0] + Z95 * sigma, rtol=0, atol=1e-10)


def test_many_equal_components_are_one_component() -> None:
    means = torch.full((50, 20, 4, 1), 3.0, dtype=torch.float64)  # [M, L, B, D]
    q = mixture_quantiles(means, torch.tensor([0.25], dtype=torch.float64), [0.025, 0.975])
    z975 = NormalDist().inv_cdf(0.975)
    expected = torch.tensor([[3.0 - 0.5 * z975], [3.0 + 0.5 * z975]], dtype=torch.float64)
    torch.testing.assert_close(q[:, :, 0], expected.expand(2, 4), rtol=0, atol=1e-10)


def test_two_far_apart_equal_components() -> None:
    """½ N(−10, 1) + ½ N(10, 1): below the left mode F(y) = ½ Φ(y + 10), so the 5 % quantile is
    −10 + Φ⁻¹(0.1) and the 95 % one 10 + Φ⁻¹(0.9); the other mode adds < 1e-90."""
    means = torch.tensor([-10.0, 10.0], dtype=torch.float64).reshape(2, 1, 1, 1)
    q = mixture_quantiles(means, torch.ones(1, dtype=torch.float64), [0.05, 0.95])[:, 0, 0]
    z90 = NormalDist().inv_cdf(0.9)
    expected = torch.tensor([-10.0 - z90, 10.0 + z90], dtype=torch.float64)
    torch.testing.assert_close(q, expected, atol=1e-9, rtol=0)
    # a Gaussian with the same mean and variance would put them at ±1.645·√101 = ±16.5
    assert abs(q[1].item()) < 11.3


def test_skewed_mixture_solves_its_cdf_and_is_monotone_in_the_level() -> None:
    generator = torch.Generator().manual_seed(0)
    means = torch.randn(30, 7, 6, 3, generator=generator, dtype=torch.float64)  # [M, L, B, D]
    means[:, :2] += 6.0  # a second, smaller mode
    noise_var = torch.rand(30, 7, 6, 3, generator=generator, dtype=torch.float64) + 0.05
    probs = [0.001, 0.05, 0.3, 0.5, 0.7, 0.95, 0.999]
    q = mixture_quantiles(means, noise_var, probs)  # [7, 6, 3]
    assert (q.diff(dim=0) > 0).all()
    cdf = mixture_cdf(means.flatten(0, 1), noise_var.flatten(0, 1), q)
    expected = torch.tensor(probs, dtype=torch.float64)[:, None, None].expand_as(cdf)
    torch.testing.assert_close(cdf, expected, rtol=0, atol=1e-11)


def test_a_noise_per_component_broadcasts_like_a_noise_per_output() -> None:
    means = torch.randn(5, 3, 4, 2, dtype=torch.float64)
    noise = torch.tensor([0.3, 2.0], dtype=torch.float64)
    expected = mixture_quantiles(means, noise, [0.1, 0.9])
    full = mixture_quantiles(means, noise.expand(5, 3, 4, 2).clone(), [0.1, 0.9])
    torch.testing.assert_close(full, expected)


def test_chunks_of_points_give_the_same_answer(monkeypatch: pytest.MonkeyPatch) -> None:
    means = torch.randn(8, 4, 25, 2, dtype=torch.float64)
    noise = torch.tensor([0.2, 0.7])
    whole = mixture_quantiles(means, noise, [0.05, 0.95])
    monkeypatch.setattr(quantiles, "CHUNK_ELEMENTS", 200)  # 3 points a chunk
    chunked = mixture_quantiles(means, noise, [0.05, 0.95])
    assert chunked.dtype == torch.float64 and chunked.shape == (2, 25, 2)
    torch.testing.assert_close(chunked, whole, rtol=0, atol=1e-12)


def test_float32_means_are_solved_in_float32_to_its_tolerance() -> None:
    means = torch.randn(40, 25, 30, 1, generator=torch.Generator().manual_seed(1))
    q = mixture_quantiles(means, torch.tensor([0.3]), [0.05, 0.95])
    assert q.dtype == torch.float32
    exact = mixture_quantiles(means.double(), torch.tensor([0.3]).double(), [0.05, 0.95])
    torch.testing.assert_close(q.double(), exact, rtol=0, atol=1e-5)


def test_central_probs() -> None:
    assert central_probs(0.9) == pytest.approx((0.05, 0.95))
    assert central_probs(0.5) == (0.25, 0.75)


@pytest.mark.parametrize("level", [0, 1, 1.5, -0.1, float("nan"), True, "0.9"])
def test_central_probs_rejects_a_level_outside_the_open_unit_interval(level: object) -> None:
    with pytest.raises(ValueError, match=r"interval level must be a number in \(0, 1\)"):
        central_probs(level)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("means", "noise", "probs", "words"),
    [
        (torch.zeros(4, 1), torch.ones(1), [0.5], "components..., B, D"),
        (torch.zeros(2, 3, 4, 2), torch.ones(3), [0.5], "does not broadcast"),
        (torch.zeros(2, 3, 4, 2), torch.tensor([1.0, 0.0]), [0.5], "positive"),
        (torch.zeros(2, 3, 4, 2), torch.ones(2), [0.0, 0.5], "levels in"),
        (torch.zeros(2, 3, 4, 2), torch.ones(2), [], "levels in"),
        (torch.zeros(2, 3, 4, 2), torch.ones(2), [float("nan")], "levels in"),
    ],
)
def test_rejections(
    means: torch.Tensor, noise: torch.Tensor, probs: list[float], words: str
) -> None:
    with pytest.raises(ValueError, match=words):
        mixture_quantiles(means, noise, probs)
