"""The published tutorial, lightning-uq-box 0.4.0's BNN_LV_VI_Batched_Regression, run as a script.

Runs in the tutorial's own venv (scripts/tutorial/setup_luq.sh; Python 3.12), not bnnlv's, with
the tutorial's settings and its library's defaults (torch's own thread count, no validation during
the fit). Prints one JSON line: the fit time, test RMSE and R², NLL, CRPS and miscalibration area
from uncertainty-toolbox (standardised units, as bnnlv's ``test_nll_standardised``) and the NLL of
the generator itself. Usage: python luq_seed.py [max_epochs]
"""

import json
import sys
import tempfile
import time
from functools import partial
from pathlib import Path

import numpy as np
import torch
import uncertainty_toolbox as uct
from lightning import Trainer
from lightning.pytorch import seed_everything
from lightning.pytorch.loggers import CSVLogger
from lightning_uq_box.datamodules import ToyHeteroscedasticDatamodule
from lightning_uq_box.models import MLP
from lightning_uq_box.uq_methods import BNN_LV_VI_Batched_Regression
from sklearn.model_selection import train_test_split
from torch import nn

# bnnlv is not installed in the tutorial's venv; its toy data module needs only what that venv has
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from bnnlv.data.toy import heteroscedastic_generator


def oracle(y_test: np.ndarray, x_test_standardised: np.ndarray) -> tuple[float, float]:
    """(NLL, R²) of the generator in standardised units: its data rebuilt as the datamodule does."""
    xs, ys = heteroscedastic_generator(800, seed=42)  # the datamodule's, bit for bit
    x_other, x_test, y_other, _ = train_test_split(
        xs[:, None], ys[:, None], test_size=0.2, random_state=42
    )
    x_train, _, y_train, _ = train_test_split(
        x_other, y_other, test_size=0.1 / 0.8, random_state=42
    )
    x_mean, x_std, y_mean, y_std = x_train.mean(), x_train.std(), y_train.mean(), y_train.std()
    if not np.allclose((x_test[:, 0] - x_mean) / x_std, x_test_standardised, atol=1e-5):
        raise RuntimeError("the rebuilt generator does not reproduce the datamodule's test inputs")
    x = x_test[:, 0]
    mean = (7 * np.sin(x) - y_mean) / y_std
    std = 3 * np.abs(np.cos(x / 2)) / y_std
    nll = float(np.mean(0.5 * np.log(2 * np.pi * std**2) + 0.5 * ((y_test - mean) / std) ** 2))
    r2 = 1 - np.sum((y_test - mean) ** 2) / np.sum((y_test - y_test.mean()) ** 2)
    return nll, float(r2)


def main(epochs: int) -> dict:
    start = time.perf_counter()
    seed_everything(0)
    tmp = tempfile.mkdtemp()
    dm = ToyHeteroscedasticDatamodule(batch_size=50, n_points=800)
    bnn = MLP(n_inputs=1, n_hidden=[50, 50, 50], n_outputs=1, activation_fn=nn.ReLU())
    latent_net = MLP(n_inputs=2, n_outputs=2, n_hidden=[20], activation_fn=nn.ReLU())
    model = BNN_LV_VI_Batched_Regression(
        bnn, latent_net, optimizer=partial(torch.optim.Adam, lr=1e-3),
        num_training_points=dm.X_train.shape[0], n_mc_samples_train=10, n_mc_samples_test=50,
        output_noise_scale=1.3, prior_mu=0.0, prior_sigma=1.0, posterior_mu_init=0.0,
        posterior_rho_init=-6.0, alpha=1e-03, bayesian_layer_type="reparameterization",
    )  # fmt: skip
    trainer = Trainer(
        accelerator="cpu", max_epochs=epochs, logger=CSVLogger(tmp), log_every_n_steps=1,
        enable_checkpointing=False, enable_progress_bar=False, limit_val_batches=0.0,
        default_root_dir=tmp, enable_model_summary=False,
    )  # fmt: skip
    fit_start = time.perf_counter()
    trainer.fit(model, dm)
    fit_seconds = time.perf_counter() - fit_start
    scores = trainer.test(model, dm, verbose=False)[0]
    preds = model.predict_step(dm.X_test.to(model.device))
    total_seconds = time.perf_counter() - start
    mean = preds["pred"].squeeze().numpy()
    std = np.maximum(preds["pred_uct"].squeeze().numpy(), 1e-6)
    y = dm.Y_test.squeeze().numpy()
    metrics = uct.metrics.get_all_metrics(mean, std, y, verbose=False)
    oracle_nll, oracle_r2 = oracle(y, dm.X_test.squeeze().numpy())
    return {
        "impl": "lightning-uq-box 0.4.0", "torch": torch.__version__,
        "threads": torch.get_num_threads(), "epochs": epochs,
        "n_train": int(dm.X_train.shape[0]), "fit_s": round(fit_seconds, 2),
        "total_s": round(total_seconds, 2), "test_rmse": scores.get("testRMSE"),
        "test_r2": scores.get("testR2"), "nll": float(metrics["scoring_rule"]["nll"]),
        "crps": float(metrics["scoring_rule"]["crps"]),
        "miscal_area": float(metrics["avg_calibration"]["miscal_area"]),
        "oracle_nll": oracle_nll, "oracle_r2": oracle_r2,
    }  # fmt: skip


if __name__ == "__main__":
    print(json.dumps(main(int(sys.argv[1]) if len(sys.argv) > 1 else 250)))
