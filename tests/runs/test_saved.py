"""runs.saved: loading a run folder, the validation NLL, seeded scoring, prediction columns."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from bnnlv.data.columns import InputColumns
from bnnlv.data.module import RegressionDataModule, Splits, Standardiser
from bnnlv.model.lit_module import BNNLV
from bnnlv.runs.saved import SavedRun, prediction_frame, score, validation_nll
from bnnlv.runs.state import SavedData

RNG = np.random.default_rng(0)


class Fixed(RegressionDataModule):
    """Given arrays: 30 train, 10 validation (or none), 10 test rows."""

    def __init__(self, n_val: int = 10, n_out: int = 1) -> None:
        super().__init__(batch_size=30)
        self.n_val, self.n_out = n_val, n_out

    def load(self) -> Splits:
        x = RNG.normal(size=(50, 2))
        y = 3.0 * x[:, :1] + RNG.normal(size=(50, self.n_out)) + 5.0
        v = 30 + self.n_val
        return Splits(x[:30], y[:30], x[30:v], y[30:v], x[40:], y[40:], ["a", "b"],
                      [f"t{d}" for d in range(self.n_out)])  # fmt: skip


def mlp(n_out: int = 1) -> BNNLV:
    """Deterministic network: the predictive is one Gaussian N(f(x), σ²)."""
    return BNNLV(2, n_out, 30, 30, hidden=[4], latent="none", stochastic_layers=[],
                 n_samples_test=1, noise_std_init=0.7)  # fmt: skip


def test_validation_nll_of_a_single_gaussian_in_original_units() -> None:
    data, model = Fixed(), mlp()
    x, y = data.tensors("val")
    f = model.network(x[None, None])[0][0, 0]  # [B, 1]: one replica, one sample
    var = 0.7**2
    log_p_std = -0.5 * (math.log(2 * math.pi * var) + (y - f).square() / var)  # [B, 1]
    s_y = float(data.scaler.y_std[0])
    expected = -(log_p_std.mean().item() - math.log(s_y))
    assert validation_nll(model, data) == pytest.approx(expected, rel=1e-5)


def test_validation_nll_without_validation_rows_is_none() -> None:
    assert validation_nll(mlp(), Fixed(n_val=0)) is None


def test_score_is_seeded(tmp_path: Path) -> None:
    data = Fixed()
    model = BNNLV(2, 1, 30, 30, hidden=[4], n_samples_test=3, n_latent_test=2)
    first = score(model, data, tmp_path, seed=5, make_plots=False)
    torch.randn(100)  # whatever happened to the generator in between
    assert score(model, data, tmp_path, seed=5, make_plots=False) == first
    assert score(model, data, tmp_path, seed=6, make_plots=False) != first


def test_prediction_columns_per_target_in_original_units() -> None:
    model = mlp(n_out=2)
    scaler = Standardiser(np.zeros(2), np.ones(2), np.array([1.0, -1.0]), np.array([2.0, 10.0]))
    saved = SavedData(scaler, ["a", "b"], ["u", "v"], InputColumns(["a", "b"], {}))
    run = SavedRun(None, model, saved)  # type: ignore[arg-type]
    x = RNG.normal(size=(7, 2))
    columns = prediction_frame(run, x, seed=0)
    kinds = ("mean", "std", "epistemic_std", "aleatoric_std")
    assert list(columns) == [f"{kind}_{target}" for target in ("u", "v") for kind in kinds]
    f = model.network(torch.as_tensor(x, dtype=torch.float32)[None, None])[0][0, 0].detach()
    np.testing.assert_allclose(columns["mean_v"], f[:, 1].numpy() * 10.0 - 1.0, rtol=1e-5)
    np.testing.assert_allclose(columns["aleatoric_std_u"], 0.7 * 2.0, rtol=1e-5)
    np.testing.assert_allclose(columns["epistemic_std_u"], 0.0, atol=1e-6)
    variance = columns["epistemic_std_v"] ** 2 + columns["aleatoric_std_v"] ** 2
    np.testing.assert_allclose(columns["std_v"] ** 2, variance)
