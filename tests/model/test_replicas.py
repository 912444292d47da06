"""R replicas on one leading axis train as R separate runs: the random streams, the state split,
and replica r ending at the parameters of a run with its seed and data alone."""

from __future__ import annotations

from typing import Any

import lightning as L
import pytest
import torch

from bnnlv.data.module import GroupedBatches, StackedBatches, TensorBatches
from bnnlv.model.divergence import DivergenceError
from bnnlv.model.lit_module import BNNLV
from bnnlv.model.replicas import (
    member_seeds,
    randn,
    random_signs,
    seeded,
    split_runs,
    split_state,
    stack_states,
    uniform,
)

LIGHTNING_FIT = pytest.mark.filterwarnings("ignore:.*LeafSpec.*:FutureWarning")


def test_each_replica_draws_from_its_own_generator() -> None:
    like = torch.zeros(())
    draws = randn(seeded([3, 4]), 2, (5, 7), like)
    assert draws.shape == (2, 5, 7)
    for row, seed in zip(draws, (3, 4), strict=True):
        assert torch.equal(row, torch.randn(5, 7, generator=torch.Generator().manual_seed(seed)))
    torch.manual_seed(3)  # None: torch's global generator, all rows at once
    assert torch.equal(randn(None, 1, (5, 7), like)[0], draws[0])
    signs = random_signs(seeded([1, 2]), 2, (1000,), like)
    assert set(signs.unique().tolist()) == {-1.0, 1.0} and abs(signs.mean().item()) < 0.1
    bounded = uniform(seeded([1]), 1, (1000,), like, 0.5)
    assert bounded.min() >= -0.5 and bounded.max() < 0.5
    with pytest.raises(ValueError, match=r"^need one generator per replica \(3\), got 2$"):
        randn(seeded([1, 2]), 3, (2,), like)


def test_member_seeds() -> None:
    assert member_seeds(7, 1) == [7]
    assert member_seeds(2, 5) == [10, 11, 12, 13, 14]


def test_state_splits_into_runs_and_stacks_back() -> None:
    state = {"w": torch.arange(24.0).reshape(4, 3, 2), "table": torch.arange(16.0).reshape(8, 2)}
    parts = split_state(state, 2)
    assert parts[1]["w"].shape == (2, 3, 2) and torch.equal(parts[1]["table"], state["table"][4:])
    assert all(torch.equal(t, state[k]) for k, t in stack_states(parts).items())
    with pytest.raises(ValueError, match=r"does not split into 3 runs"):
        split_runs(state["w"], 3)


def _model(seeds: list[int], **kwargs: Any) -> BNNLV:
    args: dict[str, Any] = dict(
        in_features=2, out_features=1, n_train=40, batch_size=16, hidden=[6, 5], lr=1e-2,
        n_samples_train=4, posterior_std_init=0.05, seeds=seeds,
    )  # fmt: skip
    return BNNLV(**(args | kwargs))


def _data(seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(100 + seed)
    return torch.randn(40, 2, generator=g), torch.randn(40, 1, generator=g)


def _fit(model: BNNLV, data: list[tuple[torch.Tensor, torch.Tensor]], seeds: list[int]) -> None:
    """Two epochs; replica r trains on data[r] in the order of its seed."""
    parts = [
        TensorBatches(x, y, 16, True, torch.Generator().manual_seed(seed))
        for (x, y), seed in zip(data, seeds, strict=True)
    ]
    trainer = L.Trainer(max_epochs=2, logger=False, accelerator="cpu", devices=1,
                        enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False, num_sanity_val_steps=0)  # fmt: skip
    trainer.fit(model, train_dataloaders=GroupedBatches(StackedBatches(parts), 2))


@LIGHTNING_FIT
@pytest.mark.parametrize("fused", [True, False])
@pytest.mark.parametrize(
    ("latent", "noise"),
    [("per_point", "homoscedastic"), ("amortised", "homoscedastic"), ("none", "heteroscedastic")],
)
def test_replica_r_ends_where_a_run_with_its_seed_and_data_ends(
    fused: bool, latent: str, noise: str
) -> None:
    """Three replicas with their own seeds and training rows, trained together, against three
    runs trained one by one: the same parameters, to float rounding."""
    seeds = [3, 4, 5]
    data = [_data(seed) for seed in seeds]
    together = _model(seeds, fused=fused, latent=latent, noise=noise)
    _fit(together, data, seeds)
    for run, seed, rows in zip(together.split_runs(), seeds, data, strict=True):
        alone = _model([seed], fused=fused, latent=latent, noise=noise)
        _fit(alone, [rows], [seed])
        for name, value in alone.state_dict().items():
            torch.testing.assert_close(run.state_dict()[name], value, rtol=1e-5, atol=1e-6,
                                       msg=name)  # fmt: skip
        assert torch.equal(run.generators[0].get_state(), alone.generators[0].get_state())


def test_split_runs_gives_models_of_one_run_that_predict_as_the_run() -> None:
    """An ensemble of 2 runs × 3 members splits into two models of 3 members each; a model of
    several runs refuses to predict as one."""
    model = _model(list(range(6)), members=3, latent="none", stochastic_layers=[],
                   noise="heteroscedastic", n_samples_test=1)  # fmt: skip
    runs = model.split_runs()
    assert [run.hparams["seeds"] for run in runs] == [[0, 1, 2], [3, 4, 5]]
    assert runs[1].network.layers[0].weight_mean.shape == (3, 2, 6)
    torch.testing.assert_close(
        runs[1].network.layers[0].weight_mean, model.network.layers[0].weight_mean[3:]
    )
    x = torch.randn(7, 2)
    assert runs[0].components(x).mean.shape == (3, 1, 7, 1)  # the members are the W axis
    with pytest.raises(ValueError, match=r"^this model holds 2 runs; use one of split_runs\(\)$"):
        model.predict(x)


@LIGHTNING_FIT
def test_a_diverged_replica_trains_on_while_the_others_are_unharmed() -> None:
    """A replica whose energy is not finite is recorded and carries NaN on, its gradient its own:
    the other ends where a run with its seed ends. The fit stops (DivergenceError) only once every
    replica has diverged."""
    seeds = [0, 1]
    data = [_data(seed) for seed in seeds]
    model = _model(seeds, latent="none")
    with torch.no_grad():
        model.noise.log_var[1].fill_(float("nan"))
    _fit(model, data, seeds)
    assert list(model.diverged.replicas) == [1] and list(model.diverged.by_run()) == [1]
    divergence = model.diverged.replicas[1]
    assert divergence.reason == "non-finite energy nan at epoch 0, step 0"
    assert (divergence.epoch, divergence.step) == (0, 0)
    alone = _model([0], latent="none")
    _fit(alone, data[:1], [0])
    healthy, broken = model.split_runs()
    for name, value in alone.state_dict().items():
        torch.testing.assert_close(healthy.state_dict()[name], value, rtol=1e-5, atol=1e-6)
    assert broken.noise.log_var.isnan().all()
    with torch.no_grad():
        model.noise.log_var.fill_(float("nan"))
    model.diverged.replicas.clear()
    with pytest.raises(DivergenceError, match=r"^non-finite energy nan at epoch 0, step 0$"):
        _fit(model, data, seeds)


# Σ of every state tensor after _fit of _model([3]) on _data(3), computed by the code before the
# replica axis (commit d386345, autograd) with torch.manual_seed(3) and nn.Embedding's N(0, 1)
# init skipped: that init drew 2·40 normals from torch's global stream, from which the old code
# then drew every z and W; PerPointLatent overwrites the table anyway. With it skipped the old
# global stream is replica 0's generator, so the two codes see the same random numbers.
BEFORE_REPLICA_AXIS = {
    "noise.log_var": -4.599222183227539,
    "network.layers.0.weight_mean": 2.9999576178379357,
    "network.layers.0.bias_mean": 0.051296510733664036,
    "network.layers.0.weight_rho": -107.25377893447876,
    "network.layers.0.bias_rho": -35.89717626571655,
    "network.layers.1.weight_mean": -0.8975728377699852,
    "network.layers.1.bias_mean": 0.06759635452181101,
    "network.layers.1.weight_rho": -178.6568660736084,
    "network.layers.1.bias_rho": -29.78842782974243,
    "network.layers.2.weight_mean": -0.7952535673975945,
    "network.layers.2.bias_mean": 0.03556906431913376,
    "network.layers.2.weight_rho": -29.882165908813477,
    "network.layers.2.bias_rho": -5.940942764282227,
    "latent.table.weight": 1.5981713337823749,
}


@LIGHTNING_FIT
@pytest.mark.parametrize("fused", [True, False])
def test_one_run_trains_as_before_the_replica_axis(fused: bool) -> None:
    """One run (R = 1) given the old code's random numbers ends where the old code ended: the
    replica axis changed the streams only, not the initial values, the energy's scaling, the
    optimisers or the data order (a silent change of any of them fails this)."""
    model = _model([3], fused=fused)
    _fit(model, [_data(3)], [3])
    sums = {name: value.double().sum().item() for name, value in model.state_dict().items()}
    assert sums == pytest.approx(BEFORE_REPLICA_AXIS, rel=1e-5, abs=1e-6)
