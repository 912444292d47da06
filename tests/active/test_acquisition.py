"""The acquisitions on mixtures whose decomposition is known in closed form."""

from __future__ import annotations

import math

import pytest
import torch

from bnnlv.active.acquisition import acquisition_scores, needs_epistemic
from bnnlv.active.config import ACQUISITIONS
from bnnlv.model.entropy import entropy_estimates, gaussian_entropy

LOG2 = math.log(2.0)


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def far_apart_mixture(batch: int = 16) -> tuple[torch.Tensor, torch.Tensor, float, float]:
    """Two weight samples at ±a (80σ apart), each with two latent components at ±b (b = 30σ):
    I(y; W) = log 2, E_W H = H(σ) + log 2, H = H(σ) + 2 log 2, Var_W E[y|W] = a²."""
    sigma, a, b = 0.5, 40.0, 15.0
    weights = torch.tensor([-a, a]).reshape(2, 1, 1, 1)
    latents = torch.tensor([-b, b]).reshape(1, 2, 1, 1)
    f = (weights + latents).expand(2, 2, batch, 1).contiguous()  # [M=2, L=2, B, 1]
    return f, torch.tensor([2 * math.log(sigma)]), sigma, a


def test_far_apart_components_give_the_decomposition_exactly() -> None:
    f, log_var, sigma, a = far_apart_mixture()
    single = gaussian_entropy(torch.tensor(sigma**2)).item()
    expected = {"epistemic": LOG2, "aleatoric": single + LOG2, "total": single + 2 * LOG2,
                "epistemic_var": a**2}  # fmt: skip
    for name, value in expected.items():
        scores = acquisition_scores(name, f, log_var, 64, _gen())
        assert scores.values.shape == (16,)
        assert torch.allclose(scores.values, torch.full((16,), value), atol=1e-4), name


@pytest.mark.parametrize("var", [0.09, 1.0])
def test_overlapping_mixture_variance_split_is_exact_and_entropies_match_the_estimator(
    var: float,
) -> None:
    """M = 3 weight samples × L = 2 components: Var_W of the per-sample means by hand, and the
    entropy scores are the estimator's figures (same generator), summed over outputs."""
    means = torch.tensor([[0.0, 1.0], [2.0, 2.5], [-1.0, 0.4]])  # [M, L]
    f = means.reshape(3, 2, 1, 1).expand(3, 2, 5, 2).contiguous() * torch.tensor([1.0, 3.0])
    log_var = torch.tensor([math.log(var), math.log(4 * var)])
    per_weight = means.mean(dim=1)  # [M]
    expected_var = per_weight.var(unbiased=False) * (1.0 + 9.0)  # both outputs, scaled by 1 and 3
    scores = acquisition_scores("epistemic_var", f, log_var, 8, _gen())
    assert torch.allclose(scores.values, torch.full((5,), expected_var.item()), rtol=1e-5)
    raw = entropy_estimates(f, log_var, 32, _gen(3))
    for name in ("epistemic", "total", "aleatoric"):
        values = acquisition_scores(name, f, log_var, 32, _gen(3)).values
        assert torch.equal(values, getattr(raw, name).sum(dim=-1))
    assert (raw.epistemic > 0.05).all()  # the weight samples disagree: a positive I


def test_noise_may_differ_per_component() -> None:
    """A noise head's σ per component: far-apart weight samples with σ = 0.5 and 2."""
    f, _, _, a = far_apart_mixture()
    log_var = torch.tensor([0.25, 4.0]).log().reshape(2, 1, 1, 1).expand(2, 2, 16, 1)
    mean_single = gaussian_entropy(torch.tensor([0.25, 4.0])).mean().item()
    total = acquisition_scores("total", f, log_var, 64, _gen()).values
    assert torch.allclose(total, torch.full((16,), mean_single + 2 * LOG2), atol=1e-3)
    epistemic = acquisition_scores("epistemic", f, log_var, 64, _gen()).values
    assert torch.allclose(epistemic, torch.full((16,), LOG2), atol=1e-4)
    assert torch.allclose(acquisition_scores("epistemic_var", f, log_var, 8).values,
                          torch.full((16,), a**2))  # fmt: skip


def test_negative_estimates_of_i_are_counted_not_clipped() -> None:
    """Identical weight samples: I(y; W) = 0, estimated as float rounding of both signs."""
    one = torch.randn(1, 7, 300, 1, generator=_gen(13)) * 3
    f = one.expand(6, 7, 300, 1).contiguous()
    log_var = torch.tensor([-0.7])
    scores = acquisition_scores("epistemic", f, log_var, 16, _gen())
    assert scores.n_negative == int((scores.values < 0).sum()) > 0
    assert scores.values.abs().max() < 1e-5
    assert acquisition_scores("total", f, log_var, 16, _gen()).n_negative == scores.n_negative
    assert acquisition_scores("epistemic_var", f, log_var, 16, _gen()).n_negative is None
    assert acquisition_scores("random", f, log_var, 16, _gen()).n_negative is None


def test_random_scores_are_uniform_draws_of_the_generator() -> None:
    f = torch.zeros(2, 2, 1000, 1)
    a = acquisition_scores("random", f, torch.zeros(1), 1, _gen(4)).values
    b = acquisition_scores("random", f, torch.zeros(1), 1, _gen(4)).values
    assert torch.equal(a, b) and a.min() >= 0 and a.max() < 1 and abs(a.mean() - 0.5) < 0.05


def test_every_acquisition_but_random_needs_an_epistemic_measure() -> None:
    assert [a for a in ACQUISITIONS if not needs_epistemic(a)] == ["random"]


def test_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match=r"active\.acquisition must be one of epistemic, total"):
        acquisition_scores("entropy", torch.zeros(2, 2, 3, 1), torch.zeros(1), 4)
    with pytest.raises(ValueError, match=r"f must be \[M, L, B, D\], got shape \(2, 3, 1\)"):
        acquisition_scores("random", torch.zeros(2, 3, 1), torch.zeros(1), 4)
    for name in ("total", "epistemic_var", "random"):
        with pytest.raises(ValueError, match=r"log_noise_var must be \[D\]=1 or f's shape"):
            acquisition_scores(name, torch.zeros(2, 2, 3, 1), torch.zeros(2), 4)
