"""evaluate(): metrics, the predictions table and the unit conversions of a trained model."""

from __future__ import annotations

import math
from pathlib import Path
from statistics import NormalDist

import numpy as np
import pytest
import torch

from bnnlv.data.toy import ToyHeteroscedastic, heteroscedastic_generator, shuffle_split
from bnnlv.data.wet_chicken import WetChicken
from bnnlv.model.lit_module import BNNLV
from bnnlv.report.evaluate import evaluate, interval_columns

REQUIRED = {"test_nll", "test_rmse", "test_mae", "test_r2", "test_crps", "test_miscal_area",
            "test_oracle_nll"}  # fmt: skip
COLUMNS = ["x", "y", "mean", "std", "epistemic_std", "aleatoric_std", "nll"]


@pytest.fixture(scope="module")
def data() -> ToyHeteroscedastic:
    data = ToyHeteroscedastic(n_points=60, batch_size=16)
    data.prepare()
    return data


def _model(data: ToyHeteroscedastic, **kwargs: object) -> BNNLV:
    torch.manual_seed(0)
    args = dict(in_features=1, out_features=1, n_train=data.n_train, batch_size=16, hidden=[8],
                n_samples_test=4, n_latent_test=3)  # fmt: skip
    return BNNLV(**(args | kwargs))  # type: ignore[arg-type]


def test_evaluate_gives_predictions_and_metrics(data: ToyHeteroscedastic, tmp_path: Path) -> None:
    metrics, frame = evaluate(_model(data), data, tmp_path, make_plots=False)
    assert metrics.keys() >= REQUIRED
    assert all(math.isfinite(metrics[k]) for k in REQUIRED)
    assert len(frame) == len(data.splits.x_test)
    assert set(COLUMNS) <= set(frame.columns)
    np.testing.assert_allclose(frame["x"], data.splits.x_test[:, 0])
    np.testing.assert_allclose(frame["y"], data.splits.y_test[:, 0])
    np.testing.assert_allclose(
        frame["std"] ** 2, frame["epistemic_std"] ** 2 + frame["aleatoric_std"] ** 2
    )
    assert frame["nll"].mean() == pytest.approx(metrics["test_nll"], rel=1e-6)
    log_scale = math.log(data.scaler.y_std[0])
    # the same mixture density in two units, each summed in float32
    assert metrics["test_nll"] - metrics["test_nll_standardised"] == pytest.approx(
        log_scale, abs=1e-5
    )
    oracle = -data.splits.oracle_log_density(data.splits.x_test, data.splits.y_test).mean()  # type: ignore[misc]
    assert metrics["test_oracle_nll"] == pytest.approx(oracle)
    assert not list(tmp_path.glob("*.png"))  # make_plots=False


def test_deterministic_model_predictions_are_in_original_units(
    data: ToyHeteroscedastic, tmp_path: Path
) -> None:
    """An MLP's predictive is N(f(x), σ²): mean = s_y f + m_y, std = s_y σ, NLL by hand."""
    model = _model(data, latent="none", stochastic_layers=[])
    with torch.no_grad():
        model.noise.log_var.fill_(math.log(0.25))
    metrics, frame = evaluate(model, data, tmp_path, make_plots=False)
    x, _ = data.tensors("test")
    f = model.network(x[None, None]).output[0, 0, :, 0].detach().numpy()
    s_y, m_y = data.scaler.y_std[0], data.scaler.y_mean[0]
    mean, std = s_y * f + m_y, s_y * 0.5
    np.testing.assert_allclose(frame["mean"], mean, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(frame["std"], std, rtol=1e-5)
    np.testing.assert_allclose(frame["epistemic_std"], 0.0, atol=1e-6)
    y = data.splits.y_test[:, 0]
    nll = 0.5 * np.log(2 * np.pi * std**2) + (y - mean) ** 2 / (2 * std**2)
    assert metrics["test_nll"] == pytest.approx(nll.mean(), rel=1e-5)
    assert metrics["test_rmse"] == pytest.approx(np.sqrt(((y - mean) ** 2).mean()), rel=1e-5)


def test_heteroscedastic_predictions_are_in_original_units(
    data: ToyHeteroscedastic, tmp_path: Path
) -> None:
    """A het_mlp's predictive is N(f(x), σ²(x)): std = s_y σ(x) point by point, the entropy
    ½ log(2πe (s_y σ(x))²), the NLL by hand."""
    model = _model(data, latent="none", stochastic_layers=[], noise="heteroscedastic",
                   n_samples_test=1, noise_std_init=0.5)  # fmt: skip
    metrics, frame = evaluate(model, data, tmp_path, make_plots=False)
    x, _ = data.tensors("test")
    mean_std, log_var = model.noise.split(model.network(x[None, None]).output[0, 0])
    s_y, m_y = data.scaler.y_std[0], data.scaler.y_mean[0]
    mean = s_y * mean_std[:, 0].detach().numpy() + m_y
    std = s_y * log_var[:, 0].detach().mul(0.5).exp().numpy()
    assert std.std() > 0.01 * std.mean()  # σ depends on x
    np.testing.assert_allclose(frame["mean"], mean, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(frame["aleatoric_std"], std, rtol=1e-5)
    np.testing.assert_allclose(frame["epistemic_std"], 0.0, atol=1e-6)
    np.testing.assert_allclose(frame["entropy_total"], 0.5 * np.log(2 * np.pi * np.e * std**2),
                               rtol=1e-5)  # fmt: skip
    y = data.splits.y_test[:, 0]
    nll = 0.5 * np.log(2 * np.pi * std**2) + (y - mean) ** 2 / (2 * std**2)
    assert metrics["test_nll"] == pytest.approx(nll.mean(), rel=1e-5)


def test_entropy_columns_in_original_units(data: ToyHeteroscedastic, tmp_path: Path) -> None:
    """One Gaussian component (an MLP): H = ½ log(2πe (s_y σ)²) exactly and I(y; W) = 0; a BNN+LV:
    H = E_W H + I, I ≥ 0, and H below the Gaussian bound ½ log(2πe·Var) up to Monte Carlo noise."""
    mlp = _model(data, latent="none", stochastic_layers=[])
    with torch.no_grad():
        mlp.noise.log_var.fill_(math.log(0.25))
    frame = evaluate(mlp, data, tmp_path, make_plots=False).predictions
    expected = 0.5 * math.log(2 * math.pi * math.e * (data.scaler.y_std[0] * 0.5) ** 2)
    np.testing.assert_allclose(frame["entropy_total"], expected, rtol=1e-5)
    np.testing.assert_allclose(frame["entropy_aleatoric"], expected, rtol=1e-5)
    np.testing.assert_allclose(frame["entropy_epistemic"], 0.0, atol=1e-6)

    frame = evaluate(
        _model(data, posterior_std_init=0.3), data, tmp_path, make_plots=False
    ).predictions
    np.testing.assert_allclose(
        frame["entropy_total"], frame["entropy_aleatoric"] + frame["entropy_epistemic"], atol=1e-5
    )
    assert (frame["entropy_epistemic"] >= 0).all()
    assert (frame["entropy_epistemic"] > 0.01).any()
    bound = 0.5 * np.log(2 * np.pi * np.e * frame["std"] ** 2)
    assert (frame["entropy_total"] <= bound + 0.1).all()


def test_rows_join_the_predictions_back_to_the_generated_array(
    data: ToyHeteroscedastic, tmp_path: Path
) -> None:
    frame = evaluate(_model(data), data, tmp_path, make_plots=False).predictions
    assert frame.columns[0] == "row"
    x, y = heteroscedastic_generator(60, data.noise_seed)
    _, _, test = shuffle_split(60, data.split_seed)
    np.testing.assert_array_equal(frame["row"], test)
    np.testing.assert_array_equal(x[frame["row"]], frame["x"])
    np.testing.assert_array_equal(y[frame["row"]], frame["y"])


def test_interval_of_a_single_gaussian_and_its_coverage(
    data: ToyHeteroscedastic, tmp_path: Path
) -> None:
    """An MLP's predictive is one Gaussian: the 90 % interval is mean ± 1.645·std, and the
    coverage metric counts the test targets inside it."""
    model = _model(data, latent="none", stochastic_layers=[])
    metrics, frame = evaluate(model, data, tmp_path, make_plots=False, interval=0.9)
    half = NormalDist().inv_cdf(0.95) * frame["std"]
    np.testing.assert_allclose(frame["q05"], frame["mean"] - half, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(frame["q95"], frame["mean"] + half, rtol=1e-4, atol=1e-4)
    inside = ((frame["q05"] <= frame["y"]) & (frame["y"] <= frame["q95"])).mean()
    assert metrics["test_interval_coverage"] == pytest.approx(inside)
    assert "q05" not in evaluate(model, data, tmp_path, make_plots=False).predictions


@pytest.mark.parametrize(
    ("level", "names"),
    [(0.9, ("q05", "q95")), (0.95, ("q025", "q975")), (0.8, ("q10", "q90")),
     (0.99, ("q005", "q995")), (0.5, ("q25", "q75"))],
)  # fmt: skip
def test_interval_columns_are_named_from_the_level(level: float, names: tuple[str, str]) -> None:
    assert interval_columns(level) == names


def test_inputs_of_several_dimensions_get_a_fit_figure(tmp_path: Path) -> None:
    """Issue 12: a 2-D (here 4-D) input had no picture of the fit; now fit.png shows predicted
    against true with the mixture's interval, even when predictions.csv carries none."""
    data = WetChicken(n_points=40, batch_size=16)
    data.prepare()
    torch.manual_seed(0)
    model = BNNLV(4, 2, data.n_train, 16, hidden=[8], n_samples_test=4, n_latent_test=3)
    frame = evaluate(model, data, tmp_path, make_plots=True).predictions
    assert (tmp_path / "fit.png").stat().st_size > 5_000 and "q05_x_next" not in frame
    assert not (tmp_path / "data.png").exists()  # drawn for 1-D inputs only
