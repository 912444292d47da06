"""The hand-written gradient against autograd's, float64: every parameter, every model kind
(per-point, amortised and no latent; stochastic, mixed and deterministic layers; either noise;
α = 0, 0.3, 1), with two replicas on the leading axis (each replica's gradient its own)."""

from __future__ import annotations

import pytest
import torch

from bnnlv.model.energy import bb_alpha_energy
from bnnlv.model.fused import energy_grads, fused_step, set_grads
from bnnlv.model.lit_module import BNNLV
from bnnlv.model.replicas import seeded

F64 = torch.float64
SEEDS = (0, 1)  # two replicas


def _model(
    alpha: float, out_features: int, latent: str, layers: str | list[int], latent_dim: int = 1,
    noise: str = "homoscedastic", seeds: tuple[int, ...] = SEEDS,
) -> BNNLV:  # fmt: skip
    torch.manual_seed(0)
    model = BNNLV(
        in_features=3, out_features=out_features, n_train=50, batch_size=10, alpha=alpha,
        hidden=[7, 5], posterior_std_init=0.05, latent=latent, stochastic_layers=layers,
        latent_dim=latent_dim, latent_hidden=[6, 4], noise=noise, noise_std_init=0.5,
        seeds=seeds,
    ).to(F64)  # fmt: skip
    with torch.no_grad():  # away from the initial values, where some terms vanish
        for name, param in model.named_parameters():
            param.add_(0.3 * torch.randn_like(param)) if "rho" not in name else param.sub_(1.0)
    return model


def _grads_both_ways(model: BNNLV, index: torch.Tensor) -> tuple[dict, dict, list, list]:
    """Autograd's gradient of the replicas' summed energies and the fused step's, for the
    replicas' batches index [R, S]; the energies [R] both ways."""
    g = torch.Generator().manual_seed(2)
    x = torch.randn(*index.shape, 3, dtype=F64, generator=g)
    y = torch.randn(*index.shape, model.hparams["out_features"], dtype=F64, generator=g)
    seeds = model.hparams["seeds"]
    model.zero_grad(set_to_none=True)
    model.generators = seeded(seeds)
    out = model.model_step(x, y, index, 4)
    out.energy.sum().backward()
    ref = {name: p.grad.to_dense() for name, p in model.named_parameters()}
    model.zero_grad(set_to_none=True)
    model.generators = seeded(seeds)  # the same draws of z and W
    step = fused_step(
        model.network, model.latent, model.noise, x, y, index, 4, 50, model.alpha,
        model.generators,
    )  # fmt: skip
    set_grads(model.network, model.latent, model.noise, index, step)
    got = {name: p.grad.to_dense() for name, p in model.named_parameters()}
    torch.testing.assert_close(step.sq_error, out.sq_error, rtol=1e-12, atol=0)
    torch.testing.assert_close(step.noise_std, out.noise_std, rtol=1e-12, atol=0)
    return ref, got, out.energy.detach().tolist(), step.energy.tolist()


def _batches(replicas: int = len(SEEDS)) -> torch.Tensor:
    """Each replica's batch of 10 of the 50 points, [R, S]."""
    return torch.stack([torch.randperm(50)[:10] for _ in range(replicas)])


@pytest.mark.parametrize("alpha", [0.0, 0.3, 1.0])
@pytest.mark.parametrize("out_features", [1, 2])
@pytest.mark.parametrize(
    ("latent", "layers"),
    [
        ("per_point", "all"),
        ("amortised", "all"),
        ("none", "all"),
        ("per_point", [0, 2]),
        ("amortised", [1]),
        ("none", []),
    ],
)
def test_gradient_matches_autograd(
    alpha: float, out_features: int, latent: str, layers: str | list[int]
) -> None:
    model = _model(alpha, out_features, latent, layers)
    ref, got, energy_ref, energy = _grads_both_ways(model, _batches())
    assert energy == pytest.approx(energy_ref, rel=1e-12, abs=1e-12)
    for name, grad in ref.items():
        torch.testing.assert_close(got[name], grad, rtol=1e-9, atol=1e-12, msg=name)


@pytest.mark.parametrize("alpha", [0.0, 0.3])
@pytest.mark.parametrize(
    ("latent", "layers"), [("per_point", "all"), ("amortised", [1]), ("none", [])]
)
def test_gradient_matches_autograd_with_a_noise_head(
    alpha: float, latent: str, layers: str | list[int]
) -> None:
    """σ²(x, z; W) from the network's second head: ∂LL/∂h enters the output layer's gradient."""
    model = _model(alpha, 2, latent, layers, noise="heteroscedastic")
    ref, got, energy_ref, energy = _grads_both_ways(model, _batches())
    assert energy == pytest.approx(energy_ref, rel=1e-12, abs=1e-12)
    for name, grad in ref.items():
        torch.testing.assert_close(got[name], grad, rtol=1e-9, atol=1e-12, msg=name)


@pytest.mark.parametrize(
    ("latent", "layers"), [("none", [-1]), ("none", []), ("per_point", [1]), ("none", "all")]
)
def test_gradient_matches_autograd_with_one_replica(latent: str, layers: str | list[int]) -> None:
    """A run alone: with no latent its inputs are x expanded over the K samples, which the
    gradient of a deterministic first layer must read whatever their strides."""
    model = _model(0.3, 1, latent, layers, seeds=(0,))
    ref, got, energy_ref, energy = _grads_both_ways(model, _batches(1))
    assert energy == pytest.approx(energy_ref, rel=1e-12, abs=1e-12)
    for name, grad in ref.items():
        torch.testing.assert_close(got[name], grad, rtol=1e-9, atol=1e-12, msg=name)


@pytest.mark.parametrize("latent", ["per_point", "amortised"])
def test_gradient_matches_autograd_with_a_two_dimensional_latent(latent: str) -> None:
    model = _model(0.5, 2, latent, "all", latent_dim=2)
    ref, got, energy_ref, energy = _grads_both_ways(model, _batches())
    assert energy == pytest.approx(energy_ref, rel=1e-12)
    for name, grad in ref.items():
        torch.testing.assert_close(got[name], grad, rtol=1e-9, atol=1e-12, msg=name)


def test_repeated_rows_add_up_and_sparse_equals_dense() -> None:
    model = _model(0.5, 1, "per_point", "all")
    index = torch.tensor([[3, 7, 3, 0, 7, 7, 12, 1, 2, 3], [3, 3, 3, 4, 5, 6, 49, 0, 0, 1]])
    ref, got, _, _ = _grads_both_ways(model, index)
    torch.testing.assert_close(got["latent.table.weight"], ref["latent.table.weight"])
    assert model.latent is not None
    model.latent.table.sparse = True  # autograd's sparse embedding gradient as the reference
    ref_sparse, got_sparse, _, _ = _grads_both_ways(model, index)
    assert model.latent.table.weight.grad is not None and model.latent.table.weight.grad.is_sparse
    torch.testing.assert_close(got_sparse["latent.table.weight"], ref["latent.table.weight"])
    torch.testing.assert_close(ref_sparse["latent.table.weight"], ref["latent.table.weight"])


@pytest.mark.parametrize("alpha", [0.0, 0.3, 1.0])
def test_energy_grads_match_autograd_of_the_energy(alpha: float) -> None:
    g = torch.Generator().manual_seed(0)
    log_lik, log_ratio_w, log_ratio_z = (
        torch.randn(shape, generator=g, dtype=F64, requires_grad=True)
        for shape in ((5, 4), (5,), (5, 4))
    )
    energy = bb_alpha_energy(
        log_lik, log_ratio_w, log_ratio_z, torch.tensor(0.0, dtype=F64), 0.0,
        torch.zeros(4, dtype=F64), 0.0, 30, alpha,
    )  # fmt: skip
    energy.backward()
    grads = energy_grads(log_lik.detach(), log_ratio_w.detach(), log_ratio_z.detach(), 30, alpha)
    for tensor, grad in zip((log_lik, log_ratio_w, log_ratio_z), grads, strict=True):
        torch.testing.assert_close(grad, tensor.grad)


def test_alpha_zero_weights_are_uniform() -> None:
    """At α = 0 the data term is the mean over samples: ∂E/∂LL = −N/(SK) whatever the inputs."""
    log_lik = torch.randn(5, 4, dtype=F64)
    grads = energy_grads(log_lik, torch.randn(5, dtype=F64), torch.randn(5, 4, dtype=F64), 30, 0.0)
    torch.testing.assert_close(grads.log_lik, torch.full_like(log_lik, -30 / (4 * 5)))
    torch.testing.assert_close(grads.log_ratio_w, torch.full((5,), 1 / 5, dtype=F64))


@pytest.mark.parametrize(
    ("shapes", "message"),
    [
        (((5,), (5,), (5,)), r"^log_lik must be \[\.\.\., K, S\], got shape \(5,\)$"),
        (((5, 4), (4,), (5, 4)), r"^log_ratio_w must be \[\.\.\., K\]=\(5,\), got \(4,\)$"),
        (((5, 4), (5,), (4, 5)), r"^log_ratio_z must match log_lik \(5, 4\), got \(4, 5\)$"),
    ],
)
def test_energy_grads_rejects_mismatched_shapes(shapes: tuple, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        energy_grads(*(torch.zeros(shape) for shape in shapes), 30, 0.5)


def test_energy_grads_rejects_alpha_outside_the_unit_interval() -> None:
    with pytest.raises(ValueError, match=r"^alpha must be in \[0, 1\], got 1.5$"):
        energy_grads(torch.zeros(5, 4), torch.zeros(5), torch.zeros(5, 4), 30, 1.5)


@pytest.mark.parametrize("shape", [(10, 50, 50), (80, 140, 40), (3, 7, 1)])
@pytest.mark.parametrize("dtype", [torch.float32, F64])
def test_one_output_back_product_equals_the_matmul_bit_for_bit(
    shape: tuple[int, int, int], dtype: torch.dtype
) -> None:
    """fused_step's ∂out Wᵀ at a layer of one output is a broadcast product, not bmm: with a
    contraction over one term there are no sums to order, so the numbers (and every run's
    figures) are the matmul's exactly, at any magnitude."""
    batch, rows, width = shape
    g = torch.Generator().manual_seed(0)
    for scale in (1e-30, 1e-6, 1.0, 1e6, 1e30):
        grad_out = torch.randn(batch, rows, 1, generator=g, dtype=dtype) * scale
        w_back = torch.randn(batch, width, 1, generator=g, dtype=dtype).transpose(-1, -2)
        assert torch.equal(grad_out * w_back, torch.bmm(grad_out, w_back))
