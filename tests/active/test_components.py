"""The adapter between a model and the acquisitions: shapes and the epistemic measure."""

from __future__ import annotations

import torch

from bnnlv.active.components import components, has_epistemic_measure, n_components
from bnnlv.model.lit_module import BNNLV


def test_the_mixture_has_the_model_s_test_budget() -> None:
    torch.manual_seed(0)
    model = BNNLV(2, 3, 10, 10, hidden=[5], n_samples_test=6, n_latent_test=4)
    mixture = components(model, torch.randn(7, 2))
    assert mixture.f.shape == mixture.log_noise_var.shape == (6, 4, 7, 3)
    assert n_components(model) == 24 and not mixture.f.requires_grad
    noise = model.noise.log_var.detach()  # homoscedastic: one σ per output for every component
    assert torch.allclose(mixture.log_noise_var, noise.expand(6, 4, 7, 3))
    # the latent draws differ within a weight draw, the weight draws differ between them
    assert mixture.f[0].std(dim=0).min() > 0 and mixture.f.mean(dim=1).std(dim=0).min() > 0


def test_the_generator_fixes_the_draws() -> None:
    model = BNNLV(1, 1, 10, 10, hidden=[5], n_samples_test=3, n_latent_test=2)
    x = torch.randn(4, 1)
    a = components(model, x, torch.Generator().manual_seed(5))
    b = components(model, x, torch.Generator().manual_seed(5))
    assert torch.equal(a.f, b.f)


def test_a_noise_head_gives_each_component_its_own_noise() -> None:
    model = BNNLV(1, 1, 10, 10, hidden=[5], noise="heteroscedastic", n_samples_test=3)
    log_var = components(model, torch.randn(4, 1)).log_noise_var  # [M, L, B, D]
    assert log_var.shape == (3, model.predictor.n_latent, 4, 1) and log_var.std() > 0


def test_without_a_latent_each_weight_draw_is_one_component() -> None:
    bnn = BNNLV(1, 1, 10, 10, hidden=[5], latent="none", n_samples_test=6, n_latent_test=4)
    assert components(bnn, torch.randn(3, 1)).f.shape == (6, 1, 3, 1)
    assert has_epistemic_measure(bnn)


def test_deterministic_weights_have_no_epistemic_measure() -> None:
    mlp = BNNLV(1, 1, 10, 10, hidden=[5], latent="none", stochastic_layers=[])
    assert not has_epistemic_measure(mlp)
    assert has_epistemic_measure(BNNLV(1, 1, 10, 10, hidden=[5], stochastic_layers=[-1]))


def test_an_ensemble_s_members_are_its_weight_draws() -> None:
    """Deterministic members, each with its own initialisation: the member is the W."""
    ensemble = BNNLV(
        1, 1, 10, 10, hidden=[5], latent="none", stochastic_layers=[], noise="heteroscedastic",
        n_samples_test=1, seeds=[3, 4, 5], members=3,
    )  # fmt: skip
    mixture = components(ensemble, torch.randn(4, 1))
    assert mixture.f.shape == (3, 1, 4, 1) and n_components(ensemble) == 3
    assert has_epistemic_measure(ensemble) and mixture.f.std(dim=0).min() > 0
