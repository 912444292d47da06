"""The BNNLV Lightning module: model_step, prediction, the seed's defects pinned (method.md §5)."""

from __future__ import annotations

import math
import os
import signal
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import lightning as L
import pandas as pd
import pytest
import torch
from lightning.pytorch.loggers import CSVLogger
from lightning.pytorch.strategies import DDPStrategy, SingleDeviceStrategy
from torch import Tensor, nn
from torch.distributions import Normal

import bnnlv.model.lit_module
from bnnlv.data.module import GroupedBatches, StackedBatches, TensorBatches
from bnnlv.model.layers import NetworkSample
from bnnlv.model.lean_adam import LeanAdam
from bnnlv.model.lit_module import BNNLV
from bnnlv.model.optim import RowAdam
from bnnlv.model.predictive import gaussian_log_lik
from bnnlv.runs.interrupts import interrupts_deferred


def _model(**kwargs: Any) -> BNNLV:
    torch.manual_seed(0)
    args: dict[str, Any] = dict(
        in_features=2, out_features=1, n_train=40, batch_size=8, hidden=[6, 5], lr=1e-2
    )
    return BNNLV(**(args | kwargs))


def _batch(b: int = 8, d_in: int = 2, d_out: int = 1) -> tuple[Tensor, Tensor, Tensor]:
    """One replica's batch: x [1, b, d_in], y [1, b, d_out], index [1, b]."""
    g = torch.Generator().manual_seed(1)
    x, y = torch.randn(1, b, d_in, generator=g), torch.randn(1, b, d_out, generator=g)
    return x, y, torch.arange(b)[None]


@pytest.fixture
def energy_spy(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """Record the arguments model_step passes to the energy."""
    calls: list[dict[str, Any]] = []
    real = bnnlv.model.lit_module.bb_alpha_energy

    def spy(*args: Any) -> Tensor:
        names = ["log_lik", "log_ratio_w", "log_ratio_z", "log_norm_q_w", "log_norm_p_w",
                 "log_norm_q_z", "log_norm_p_z", "n_data", "alpha"]  # fmt: skip
        calls.append(dict(zip(names, args, strict=True)))
        return real(*args)

    monkeypatch.setattr(bnnlv.model.lit_module, "bb_alpha_energy", spy)
    return calls


@pytest.mark.parametrize("latent", ["per_point", "amortised", "none"])
def test_model_step_energy_is_finite_and_differentiable(latent: str) -> None:
    model = _model(latent=latent)
    x, y, index = _batch()
    out = model.model_step(x, y, index, n_samples=4)
    assert out.energy.shape == (1,) and torch.isfinite(out.energy).all()
    out.energy.sum().backward()
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(g.to_dense()).all() for g in grads)
    assert model.noise.log_var.grad is not None


def test_weight_log_factor_is_one_value_per_sample_from_the_same_forward(
    energy_spy: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Defect §5.2: log f(W) is [K], one value per weight sample, taken from the very forward pass
    that produced F (not summed over samples, not from a second draw)."""
    model = _model()
    forwards: list[NetworkSample] = []
    real_forward = model.network.sample_forward

    def recording_forward(x: Tensor, generators: Any) -> NetworkSample:
        out = real_forward(x, generators)
        forwards.append(out)
        return out

    monkeypatch.setattr(model.network, "sample_forward", recording_forward)
    x, y, index = _batch()
    model.model_step(x, y, index, n_samples=5)
    (call,) = energy_spy
    (forward,) = forwards
    assert call["log_ratio_w"].shape == (1, 5)
    assert call["log_ratio_w"].unique().numel() == 5
    assert call["log_ratio_w"] is forward.log_ratio
    assert call["log_norm_q_w"] is forward.log_norm_q
    log_lik = gaussian_log_lik(y[0], forward.output[0], model.noise.log_var[0])
    torch.testing.assert_close(call["log_lik"][0], log_lik)
    assert call["log_ratio_z"].shape == (1, 5, 8) and call["log_norm_q_z"].shape == (1, 8)
    assert call["n_data"] == 40


def test_amortised_network_receives_the_target(monkeypatch: pytest.MonkeyPatch) -> None:
    """Defect §5.1, at the module level: with 1-D x and y (the tutorial's case) the inference
    network must get y, not x a second time."""
    model = _model(in_features=1, latent="amortised")
    seen: list[tuple[Tensor, Tensor]] = []
    real_forward = model.latent.forward  # type: ignore[union-attr]

    def recording_forward(
        index: Tensor, x: Tensor, y: Tensor, n_samples: int, generators: Any
    ) -> Any:
        seen.append((x, y))
        return real_forward(index, x, y, n_samples, generators)

    monkeypatch.setattr(model.latent, "forward", recording_forward)
    x, y, index = _batch(d_in=1)
    model.model_step(x, y, index, n_samples=3)
    ((x_seen, y_seen),) = seen
    assert torch.equal(x_seen, x) and torch.equal(y_seen, y)


class _ReturnsZ(nn.Module):
    """A 'network' whose output is its last input column: the latent z it was given."""

    replicas = 1
    bayesian_layers = (SimpleNamespace(weight_mean=torch.zeros(1, 1, 1)),)  # one output column

    def draw(self, n_samples: int, like: Tensor, generators: Any = None) -> SimpleNamespace:
        return SimpleNamespace(weights=[])

    def apply_weights(self, inputs: Tensor, weights: list) -> Tensor:
        return inputs[..., -1:]


@pytest.mark.parametrize(
    ("in_features", "latent_prior_var", "gamma"), [(1, 2.5, 2.5), (3, None, 3.0), (2, 0.3, 0.3)]
)
def test_test_time_latent_comes_from_the_prior_with_configured_gamma(
    in_features: int, latent_prior_var: float | None, gamma: float
) -> None:
    """Defect §5.3: test-time z ~ N(0, γ) with THE configured γ (default: input dimension), never
    from q(z_n), whatever the trained per-point posteriors are."""
    model = _model(in_features=in_features, latent_prior_var=latent_prior_var)
    with torch.no_grad():
        model.latent.means.fill_(5.0)  # type: ignore[union-attr]
    model.network = model.predictor.network = _ReturnsZ()  # type: ignore[assignment]
    m, l_, b = 100, 100, 100
    z = model.components(torch.zeros(b, in_features), n_weights=m, n_latent=l_).mean
    assert z.shape == (m, l_, b, 1)
    n = z.numel()
    assert abs(z.mean().item()) < 6 * math.sqrt(gamma / n)
    assert abs(z.var().item() - gamma) < 6 * gamma * math.sqrt(2 / n)
    moments = model.predict(torch.zeros(b, in_features), n_weights=m, n_latent=l_).moments
    # all of z's variance is latent (aleatoric); the 'network' has no weight uncertainty
    noise = model.noise.log_var.exp()[0]
    assert abs((moments.aleatoric_var - noise).mean().item() - gamma) < 0.05 * gamma


@pytest.mark.parametrize(("n_weights", "n_latent"), [(1, 50), (2, 30), (50, 1), (3, 7)])
def test_prediction_never_returns_zeros(n_weights: int, n_latent: int) -> None:
    """Defect §5.4: any split between weight and latent samples gives a real prediction."""
    model = _model(n_samples_test=n_weights, n_latent_test=n_latent)
    with torch.no_grad():
        for layer in model.network.layers:
            layer.bias_mean.fill_(0.7)  # a mean well away from zero
    x, y, _ = (t[0] for t in _batch(b=9))
    pred = model.predict(x, y, generator=torch.Generator().manual_seed(5))
    f = model.components(x, n_weights, n_latent, torch.Generator().manual_seed(5)).mean
    assert pred.moments.mean.shape == (9, 1)
    assert (pred.moments.mean != 0).all()
    torch.testing.assert_close(pred.moments.mean, f.mean((0, 1)))
    assert pred.log_density is not None and torch.isfinite(pred.log_density).all()
    assert (pred.moments.aleatoric_var > 0).all()
    if n_weights == 1:
        assert torch.equal(pred.moments.epistemic_var, torch.zeros(9, 1))
    else:
        assert (pred.moments.epistemic_var > 0).all()


def test_prediction_in_chunks_equals_one_pass() -> None:
    model = _model(latent="none", stochastic_layers=[], n_samples_test=2)
    x, y, _ = (t[0] for t in _batch(b=10))
    whole = model.predict(x, y)
    model.predictor.chunk_rows = 3
    chunked = model.predict(x, y)
    for a, b in zip(whole.moments, chunked.moments, strict=True):
        torch.testing.assert_close(a, b)
    torch.testing.assert_close(whole.log_density, chunked.log_density)
    torch.testing.assert_close(whole.log_density_per_output, chunked.log_density_per_output)


def test_latent_none_has_no_latent_input() -> None:
    model = _model(latent="none")
    assert model.latent is None and model.predictor.n_latent == 1
    assert model.network.layers[0].weight_mean.shape[1] == 2  # [R, D_in, H]: no z column
    x, y, index = _batch()
    assert torch.isfinite(model.model_step(x, y, index, n_samples=3).energy).all()
    assert model.components(x[0], 4, 1).mean.shape == (4, 1, 8, 1)
    assert len(model.configure_optimizers()) == 1


def test_optimisers_per_latent_kind() -> None:
    per_point = _model(latent="per_point").configure_optimizers()
    assert [type(o) for o in per_point] == [LeanAdam, RowAdam]
    amortised = _model(latent="amortised")
    (adam,) = amortised.configure_optimizers()
    optimised = {id(p) for group in adam.param_groups for p in group["params"]}
    assert {id(p) for p in amortised.parameters()} == optimised


@pytest.mark.parametrize("alpha", [0.0, 0.5, 1.0])
def test_mlp_energy_is_minus_mean_log_likelihood(alpha: float) -> None:
    """stochastic_layers=[] and no latent: E/N = −(1/S) Σ_n log N(y_n | f(x_n), σ²)."""
    model = _model(latent="none", stochastic_layers=[], alpha=alpha)
    with torch.no_grad():
        model.noise.log_var.fill_(math.log(0.3))
    x, y, index = _batch()
    for n_samples in (1, 3):
        energy = model.model_step(x, y, index, n_samples=n_samples).energy
        f = model.network(x[:, None]).output[0, 0]
        log_lik = Normal(f, math.sqrt(0.3)).log_prob(y[0]).sum(-1)
        torch.testing.assert_close(energy, -log_lik.mean()[None])


@pytest.mark.parametrize("alpha", [0.0, 0.5, 1.0])
def test_heteroscedastic_energy_is_the_gaussian_nll_with_sigma_of_x(alpha: float) -> None:
    """Deterministic weights, no latent, a noise head: E/N = −(1/S) Σ_n Σ_d log N(y_nd | μ_d(x_n),
    σ_d²(x_n)) with σ² = softplus(h(x) + c) + 1e-6 computed by hand from the network's layers."""
    model = _model(latent="none", stochastic_layers=[], alpha=alpha, noise="heteroscedastic",
                   out_features=2, noise_std_init=0.4).double()  # fmt: skip
    g = torch.Generator().manual_seed(3)
    x = torch.randn(8, 2, generator=g, dtype=torch.float64)
    y = torch.randn(8, 2, generator=g, dtype=torch.float64)
    h = x
    for i, layer in enumerate(model.network.layers):
        h = h @ layer.weight_mean[0] + layer.bias_mean[0]
        h = torch.relu(h) if i < len(model.network.layers) - 1 else h
    mean, head = h[:, :2], h[:, 2:]  # [S, D] each: the mean head and the variance head
    var = torch.log1p(torch.exp(head + model.noise.offset)) + 1e-6
    nll = 0.5 * (torch.log(2 * math.pi * var) + (y - mean) ** 2 / var)  # [S, D]
    assert var.std() > 0.01  # σ depends on x
    for n_samples in (1, 3):
        energy = model.model_step(x[None], y[None], torch.arange(8)[None], n_samples).energy
        torch.testing.assert_close(energy, nll.sum(-1).mean()[None])


def test_heteroscedastic_model_has_a_second_head() -> None:
    model = _model(noise="heteroscedastic", out_features=3)
    assert model.network.layers[-1].weight_mean.shape == (1, 5, 6)  # mean head + variance head
    assert not list(model.noise.parameters())
    one = SingleDeviceStrategy(torch.device("cpu"))
    assert model.fused_applies(one, "32-true")
    groups = model.configure_optimizers()[0].param_groups
    assert len(groups) == 1 and len(groups[0]["params"]) == 12  # 3 layers × (m_W, m_b, ρ_W, ρ_b)
    x, y, index = _batch(d_out=3)
    out = model.model_step(x, y, index, n_samples=4)
    out.energy.sum().backward()
    assert model.network.layers[-1].weight_mean.grad is not None
    assert out.noise_std.item() == pytest.approx(0.1, rel=0.5)  # σ ≈ noise_std_init at the start


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("alpha", 1.5),
        ("alpha", -0.2),
        ("hidden", []),
        ("hidden", [4, 0]),
        ("lr", -1.0),
        ("lr", 0),
        ("latent", "everywhere"),
        ("latent_dim", 0),
        ("n_samples_train", 0),
        ("n_samples_test", -3),
        ("n_latent_test", 2.5),
        ("latent_prior_var", -1.0),
        ("latent_prior_var", float("inf")),
        ("prior_var", 0.0),
        ("posterior_std_init", -1e-3),
        ("noise_std_init", 0.0),
        ("latent_lr", -0.1),
        ("batch_size", 0),
        ("n_train", 0),
        ("stochastic_layers", [7]),
        ("latent_init_var_frac", 1.5),
        ("compile", "yes"),
        ("noise", "heteroskedastic"),
    ],
)
def test_invalid_constructor_values_are_rejected(key: str, value: Any) -> None:
    """ValueError naming the key and the value (for a list, its bad entry)."""
    with pytest.raises(ValueError) as error:
        _model(**{key: value})
    message = str(error.value)
    shown = value[-1] if isinstance(value, list) and value else value
    assert key in message
    assert repr(shown) in message


# Lightning's own deprecation warning from torch's pytree (not ours); runs.train silences it too.
LIGHTNING_FIT = pytest.mark.filterwarnings("ignore:.*LeafSpec.*:FutureWarning")


def _fit(
    model: BNNLV, epochs: int, logger: Any = False, group: int = 2, val_every: int | None = None
) -> L.Trainer:
    """A Lightning fit on 40 rows in batches of 16 (3 steps per epoch, in groups of ``group``
    minibatches a Lightning batch); validation on 10 rows every ``val_every`` epochs."""
    g = torch.Generator().manual_seed(2)
    x, y = torch.randn(40, 2, generator=g), torch.randn(40, 1, generator=g)
    parts = [TensorBatches(x, y, 16, True, torch.Generator().manual_seed(0))]
    loader = GroupedBatches(StackedBatches(parts), group)
    val_part = TensorBatches(x[:10], y[:10], 10, False, torch.Generator())
    val = StackedBatches([val_part]) if val_every else None
    trainer = L.Trainer(max_epochs=epochs, logger=logger, accelerator="cpu", devices=1,
                        enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False, log_every_n_steps=1,
                        check_val_every_n_epoch=val_every or 1, num_sanity_val_steps=0)  # fmt: skip
    trainer.fit(model, train_dataloaders=loader, val_dataloaders=val)
    return trainer


@LIGHTNING_FIT
def test_epoch_figures_are_one_row_per_epoch_at_the_last_update(tmp_path: Path) -> None:
    """Written straight to the logger (no self.log): epoch, the index of the epoch's last
    optimiser update (not Lightning's batch count: a batch is a group of minibatches), and the
    noise std σ averaged over the epoch's training points (here σ barely moves: noise_lr tiny)."""
    model = _model(n_train=40, batch_size=16, noise_lr=1e-12)
    _fit(model, epochs=2, logger=CSVLogger(tmp_path, name="", version="logs"))
    log = pd.read_csv(tmp_path / "logs" / "metrics.csv")
    assert list(log["epoch"]) == [0, 1] and list(log["step"]) == [2, 5]
    noise_std = model.noise.log_var.detach().mul(0.5).exp().mean().item()
    assert log["train/noise_std"].iloc[-1] == pytest.approx(noise_std, rel=1e-6)
    assert (log["train/rmse"] > 0).all() and log["train/energy_per_point"].notna().all()


@LIGHTNING_FIT
def test_compile_switch_wraps_the_training_step(monkeypatch: pytest.MonkeyPatch) -> None:
    """compile=True trains through torch.compile(model_step) (a recording stand-in here: the
    real compiler takes a minute on a CPU, see the slow test); compile=False never calls it."""
    compiled: list[Any] = []
    calls: list[int] = []

    def fake_compile(fn: Any) -> Any:
        compiled.append(fn)

        def step(*args: Any) -> Any:
            calls.append(args[0].shape[1])  # x [R, S, D_in]
            return fn(*args)

        return step

    monkeypatch.setattr(torch, "compile", fake_compile)
    _fit(_model(n_train=40, batch_size=16), epochs=1)
    assert compiled == [] and calls == []
    model = _model(n_train=40, batch_size=16, compile=True)
    assert compiled == [model.model_step]
    _fit(model, epochs=1)
    assert calls == [16, 16, 8]


@LIGHTNING_FIT
def test_validation_does_not_change_the_training() -> None:
    """Validation draws from its own stream: no validation, every epoch or every other epoch
    give the same trained parameters, bit for bit; the validation figures depend on the epoch
    only, not on what training drew before."""
    finals = []
    for val_every in (None, 1, 2):
        model = _model(n_train=40, batch_size=16, n_samples_test=4, n_latent_test=3)
        trainer = _fit(model, epochs=2, val_every=val_every)
        finals.append(torch.cat([p.detach().flatten() for p in model.parameters()]))
        if val_every == 2:
            assert "val/nll" in trainer.callback_metrics
    assert torch.equal(finals[0], finals[1]) and torch.equal(finals[0], finals[2])


@LIGHTNING_FIT
def test_a_large_table_trains_with_sparse_gradients_to_the_same_result(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """From SPARSE_TABLE_ROWS rows on (lowered here), one-process training gives the per-point
    table sparse gradients; the updates are the dense path's up to summation order."""
    finals, sparse = [], []
    for rows in (10**9, 10):  # threshold above / below the 40-row table
        monkeypatch.setattr(bnnlv.model.lit_module, "SPARSE_TABLE_ROWS", rows)
        model = _model(n_train=40, batch_size=16)
        _fit(model, epochs=2)
        sparse.append(model.latent.table.sparse)  # type: ignore[union-attr]
        finals.append(torch.cat([p.detach().flatten() for p in model.parameters()]))
    assert sparse == [False, True]
    torch.testing.assert_close(finals[1], finals[0], rtol=1e-5, atol=1e-6)


def test_an_interrupt_between_optimiser_steps_waits_for_the_whole_update(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Ctrl-C landing after the weights' step and before the latent table's: with the runner's
    guard (interrupts_deferred, handed in as update_guard) the update finishes (both steps) before
    KeyboardInterrupt surfaces, so a checkpoint never holds half an update. Python's own SIGINT
    handler is set for the test: a shell starts a background job with SIGINT ignored."""
    model = _model(n_train=40, batch_size=8)
    model.update_guard = interrupts_deferred
    optimisers = model.configure_optimizers()
    assert len(optimisers) == 2
    calls: list[str] = []
    for name, optimiser in zip(("weights", "table"), optimisers, strict=True):

        def step(optimiser: Any = optimiser, name: str = name) -> Any:
            calls.append(name)
            if name == "weights":
                os.kill(os.getpid(), signal.SIGINT)  # handled at once, were it not deferred
            return type(optimiser).step(optimiser)

        monkeypatch.setattr(optimiser, "step", step)
    monkeypatch.setattr(model, "optimizers", lambda: optimisers)
    monkeypatch.setattr(model, "manual_backward", lambda loss: loss.backward())
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with pytest.raises(KeyboardInterrupt):
            model.training_step([_batch()], 0)
    finally:
        signal.signal(signal.SIGINT, previous)
    assert calls == ["weights", "table"]


@LIGHTNING_FIT
def test_grouping_minibatches_changes_nothing_numerical() -> None:
    """Groups of 1, 2 or 3 minibatches a Lightning batch: the same updates, bit for bit."""
    finals = []
    for group in (1, 2, 3):
        model = _model(n_train=40, batch_size=16)
        trainer = _fit(model, epochs=2, group=group)
        assert trainer.global_step == 2 * 3 * 2  # 2 optimisers × 3 updates × 2 epochs
        finals.append(torch.cat([p.detach().flatten() for p in model.parameters()]))
    assert torch.equal(finals[0], finals[1]) and torch.equal(finals[0], finals[2])


@LIGHTNING_FIT
@pytest.mark.filterwarnings("ignore:.*torch.jit.script_method.*:DeprecationWarning")
@pytest.mark.slow
def test_compiled_training_step_trains() -> None:
    model = _model(n_train=40, batch_size=16, compile=True)
    before = model.network.layers[0].weight_mean.detach().clone()
    _fit(model, epochs=2)
    assert not torch.equal(before, model.network.layers[0].weight_mean)
    assert torch.isfinite(model.model_step(*_batch(), n_samples=2).energy).all()


@pytest.mark.filterwarnings("ignore:.*torch.jit.script_method.*:DeprecationWarning")
def test_fused_step_applies_to_one_full_precision_process_of_a_covered_model() -> None:
    one = SingleDeviceStrategy(torch.device("cpu"))
    assert _model().fused_applies(one, "32-true")
    assert _model(latent="none", stochastic_layers=[]).fused_applies(one, "64-true")
    assert _model(latent="amortised").fused_applies(one, "32-true")
    assert not _model().fused_applies(DDPStrategy(), "32-true")
    assert not _model().fused_applies(one, "bf16-mixed")
    for kwargs in (dict(fused=False), dict(weight_sampler="flipout"), dict(compile=True)):
        assert not _model(**kwargs).fused_applies(one, "32-true"), kwargs


@LIGHTNING_FIT
@pytest.mark.parametrize("latent", ["per_point", "amortised"])
def test_fused_and_autograd_training_agree(latent: str) -> None:
    """Same draws, same gradient up to rounding: a few epochs end at the same parameters."""
    finals = []
    for fused in (True, False):
        model = _model(n_train=40, batch_size=16, fused=fused, latent=latent)
        _fit(model, epochs=3)
        assert model._fused is fused
        finals.append({k: v.clone() for k, v in model.state_dict().items()})
    for name, value in finals[0].items():
        torch.testing.assert_close(value, finals[1][name], rtol=1e-4, atol=1e-5, msg=name)


def test_fused_must_be_a_bool() -> None:
    with pytest.raises(ValueError, match=r"^fused must be true or false, got 'yes'$"):
        _model(fused="yes")


def test_an_empty_group_makes_no_update() -> None:
    """The groups a resumed run had already trained come as empty lists."""
    model = _model()
    model.optimizers = lambda: model.configure_optimizers()  # type: ignore[method-assign]
    before = [p.detach().clone() for p in model.parameters()]
    assert model.training_step([], 0) is None
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True))


def test_the_epochs_running_sums_continue_after_a_resume() -> None:
    """The model hands its running sums (model.figures) to a checkpoint and takes them back."""
    model = _model()
    model.on_train_epoch_start()
    model.figures.add_training(torch.ones(1), torch.ones(1), torch.ones(1), 8)
    resumed = _model()
    resumed.continue_epoch(model.epoch_totals())
    resumed.on_train_epoch_start()  # the resumed epoch: the sums go on from where they were
    assert torch.equal(resumed.figures.train_sums, model.figures.train_sums)
    assert resumed.figures.train_rows == 8
