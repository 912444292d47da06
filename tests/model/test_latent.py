"""The latent posterior q(z_n): per-point tables, the amortised network, the prior. Batches carry
the replica axis first (one replica unless a test says otherwise)."""

from __future__ import annotations

import math

import pytest
import torch

from bnnlv.model.latent import AmortisedLatent, PerPointLatent, log_norm_prior, sample_prior
from bnnlv.model.lit_module import BNNLV
from bnnlv.model.optim import RowAdam
from bnnlv.model.replicas import seeded

F64 = torch.float64


def test_per_point_only_batch_rows_get_gradients() -> None:
    latent = PerPointLatent(n_points=10, latent_dim=2, prior_var=1.5)
    index = torch.tensor([[1, 4, 4, 7]])
    out = latent(index, torch.zeros(1, 4, 1), torch.zeros(1, 4, 1), n_samples=3)
    (out.z.sum() + out.log_ratio.sum() + out.log_norm_q.sum()).backward()
    grad = latent.table.weight.grad
    assert grad is not None and grad.shape == (10, 4)
    for part in (grad[:, :2], grad[:, 2:]):  # μ and ρ columns
        rows = set(part.ne(0).any(dim=1).nonzero().squeeze(1).tolist())
        assert rows == {1, 4, 7}
        absent = [i for i in range(10) if i not in rows]
        assert torch.equal(part[absent], torch.zeros(len(absent), 2))
        assert part[[1, 4, 7]].abs().sum() > 0


def test_per_point_rows_absent_from_a_batch_do_not_move_with_the_module_optimiser() -> None:
    """With BNNLV's RowAdam, a row moves only on steps whose batch contains it (no stale
    momentum), and rows never in a batch stay at their initial value."""
    torch.manual_seed(0)
    n = 12
    model = BNNLV(1, 1, n_train=n, batch_size=4, hidden=[4], latent="per_point", lr=1e-2)
    optimisers = model.configure_optimizers()
    assert any(isinstance(o, RowAdam) for o in optimisers)
    x, y = torch.randn(n, 1), torch.randn(n, 1)
    tables = (model.latent.means, model.latent.rhos)  # type: ignore[union-attr]
    initial = [t.detach().clone() for t in tables]
    batches = [torch.arange(0, 4), torch.arange(4, 8)] * 3  # rows 8..11 never appear
    for index in batches:
        before = [t.detach().clone() for t in tables]
        for o in optimisers:
            o.zero_grad()
        model.model_step(x[index][None], y[index][None], index[None], 3).energy.sum().backward()
        for o in optimisers:
            o.step()
        absent = torch.ones(n, dtype=torch.bool)
        absent[index] = False
        for table, old in zip(tables, before, strict=True):
            assert torch.equal(table[absent], old[absent])
            assert not torch.equal(table[index], old[index])
    for table, old in zip(tables, initial, strict=True):
        assert torch.equal(table[8:], old[8:])


def _amortised() -> AmortisedLatent:
    torch.manual_seed(0)
    latent = AmortisedLatent(in_features=1, out_features=1, latent_dim=1, prior_var=2.0)
    with torch.no_grad():  # the head starts at zero (q = N(0, γ/2) everywhere); perturb it
        latent.weights[-1].normal_()
        latent.biases[-1].normal_()
    return latent


def test_amortised_network_sees_y() -> None:
    """Changing y with x fixed changes q(z|x, y): the target, not x again, enters (defect §5.1)."""
    latent = _amortised()
    x, y = torch.randn(1, 6, 1), torch.randn(1, 6, 1)
    index = torch.arange(6)[None]
    draws = []
    for target in (y, y + 1.0, y):
        torch.manual_seed(1)
        draws.append(latent(index, x, target, n_samples=4))
    assert torch.equal(draws[0].z, draws[2].z)
    assert not torch.allclose(draws[0].z, draws[1].z)
    assert not torch.allclose(draws[0].log_norm_q, draws[1].log_norm_q)


def test_amortised_starts_at_half_the_prior_variance() -> None:
    latent = AmortisedLatent(in_features=2, out_features=1, latent_dim=1, prior_var=3.0)
    out = latent(torch.arange(5)[None], torch.randn(1, 5, 2), torch.randn(1, 5, 1), n_samples=2)
    expected = 0.5 * (math.log(2 * math.pi) + math.log(1.5))
    torch.testing.assert_close(out.log_norm_q, torch.full((1, 5), expected))


@pytest.mark.parametrize("kind", ["per_point", "amortised"])
def test_latent_sample_shapes(kind: str) -> None:
    latent_dim = 3
    latent = (
        PerPointLatent(20, latent_dim, prior_var=1.0, replicas=2)
        if kind == "per_point"
        else AmortisedLatent(2, 2, latent_dim, prior_var=1.0, replicas=2)
    )
    index = torch.arange(5).expand(2, 5)
    out = latent(index, torch.randn(2, 5, 2), torch.randn(2, 5, 2), n_samples=7)
    assert out.z.shape == (2, 7, 5, latent_dim)
    assert out.log_ratio.shape == (2, 7, 5)
    assert out.log_norm_q.shape == (2, 5)


def test_replicas_have_their_own_table_rows_and_draws() -> None:
    """Replica r's point n is row r·N + n of the table; its ε come from its own generator."""
    latent = PerPointLatent(4, latent_dim=1, prior_var=1.0, replicas=3)
    with torch.no_grad():
        latent.means.copy_(torch.arange(12.0)[:, None])
    index = torch.tensor([[0, 3], [0, 3], [1, 2]])
    assert latent.rows(index).tolist() == [[0, 3], [4, 7], [9, 10]]
    mean, _ = latent.posterior(index, torch.zeros(3, 2, 1), torch.zeros(3, 2, 1))
    assert mean[..., 0].tolist() == [[0.0, 3.0], [4.0, 7.0], [9.0, 10.0]]
    out = latent(index, torch.zeros(3, 2, 1), torch.zeros(3, 2, 1), 5, seeded([4, 5, 6]))
    alone = PerPointLatent(4, latent_dim=1, prior_var=1.0)
    with torch.no_grad():
        alone.means.copy_(latent.means[8:])
    single = alone(index[2:], torch.zeros(1, 2, 1), torch.zeros(1, 2, 1), 5, seeded([6]))
    torch.testing.assert_close(single.z[0], out.z[2], rtol=0, atol=0)


def test_latent_log_ratio_is_exact_factor_minus_constant_with_the_same_noise() -> None:
    gamma = 1.7
    latent = PerPointLatent(5, latent_dim=2, prior_var=gamma).double()
    with torch.no_grad():
        latent.means.normal_()
        latent.rhos.normal_()
    index = torch.tensor([0, 2, 3])
    torch.manual_seed(3)
    out = latent(index[None], torch.zeros(1, 3, 1), torch.zeros(1, 3, 1), n_samples=4)
    torch.manual_seed(3)
    eps = torch.randn(4, 3, 2, dtype=F64)
    mu = latent.means[index]
    s2 = gamma * torch.sigmoid(latent.rhos[index])
    z = mu + s2.sqrt() * eps
    torch.testing.assert_close(out.z[0], z)
    exact = ((s2 - gamma) / (2 * gamma * s2) * z**2 + mu / s2 * z).sum(-1)  # [K, S]
    torch.testing.assert_close(out.log_ratio[0], exact - (mu**2 / (2 * s2)).sum(-1))
    log_2pi = math.log(2 * math.pi)
    torch.testing.assert_close(out.log_norm_q[0], (0.5 * (log_2pi + s2.log())).sum(-1))
    assert (s2 <= gamma).all()


def test_sample_prior_has_variance_gamma() -> None:
    gamma, n = 2.5, 1_000_000
    torch.manual_seed(0)
    z = sample_prior((1, n), 1, gamma, like=torch.zeros((), dtype=F64))
    assert z.shape == (1, n, 1) and z.dtype == F64
    # std errors: mean sqrt(γ/n), variance γ·sqrt(2/n); 6 of them
    assert abs(z.mean().item()) < 6 * math.sqrt(gamma / n)
    assert abs(z.var().item() - gamma) < 6 * gamma * math.sqrt(2 / n)
    assert sample_prior((3, 4), 2, gamma, like=torch.zeros(1)).shape == (3, 4, 2)


def test_log_norm_prior() -> None:
    assert log_norm_prior(3, 2.0) == pytest.approx(1.5 * math.log(2 * math.pi * 2.0))


@pytest.mark.parametrize(
    ("kwargs", "text"),
    [
        (dict(latent_dim=0), "latent_dim.*0"),
        (dict(prior_var=-1.0), "-1.0"),
        (dict(n_points=0), "n_points.*0"),
        (dict(init_var_frac=1.0), "init_var_frac.*1.0"),
    ],
)
def test_bad_latent_arguments_are_rejected(kwargs: dict, text: str) -> None:
    args = dict(n_points=5, latent_dim=1, prior_var=1.0) | kwargs
    with pytest.raises(ValueError, match=text):
        PerPointLatent(**args)
