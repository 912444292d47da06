"""The ``bnnlv`` command: the composed config, and ``bnnlv train`` end to end in a subprocess."""

from __future__ import annotations

import gc
import json
import math
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest
from omegaconf import DictConfig

from tests.cli_inprocess import run_bnnlv

TINY = ["trainer.max_epochs=3", "data.n_points=100", "model.hidden=[8]", "threads=1",
        "model.n_samples_test=5", "model.n_latent_test=4", "checkpoint_every=null"]  # fmt: skip
METRIC_KEYS = {"test_nll", "test_rmse", "test_mae", "test_r2", "test_crps", "test_miscal_area",
               "fit_seconds", "test_oracle_nll"}  # fmt: skip
COLUMNS = ["x", "y", "mean", "std", "epistemic_std", "aleatoric_std"]


def bnnlv(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run the installed CLI module with this interpreter; outputs land under ``cwd``."""
    return subprocess.run(
        [sys.executable, "-m", "bnnlv.runs.cli", *args],
        cwd=cwd, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip


# ---------------------------------------------------------------------------------------------
# Composition (in-process)


def test_default_config(compose_train: Callable[..., DictConfig]) -> None:
    cfg = compose_train()
    assert cfg.model._target_ == "bnnlv.model.lit_module.BNNLV"
    assert cfg.model.latent == "per_point"
    assert cfg.data._target_ == "bnnlv.data.toy.ToyHeteroscedastic"
    assert cfg.data.n_points == 800
    assert cfg.trainer.accelerator == "cpu"
    assert 0.0 <= cfg.alpha <= 1.0 and cfg.model.alpha == cfg.alpha
    assert cfg.model.prior_var == cfg.prior.weight_var


def test_seed_tutorial_experiment(compose_train: Callable[..., DictConfig]) -> None:
    cfg = compose_train("experiment=seed_tutorial")
    assert list(cfg.model.hidden) == [50, 50, 50]
    assert cfg.data.batch_size == 50 and cfg.data.n_points == 800
    assert (cfg.model.n_samples_train, cfg.model.n_samples_test) == (10, 50)
    assert cfg.model.lr == 1e-3
    assert cfg.alpha == 1e-3 and cfg.model.alpha == 1e-3
    assert cfg.trainer.max_epochs == 250
    assert cfg.model.latent == "amortised" and list(cfg.model.latent_hidden) == [20]
    assert cfg.model.stochastic_layers == "all"
    assert cfg.prior.weight_var == 1.0
    # the tutorial's posterior_rho_init = −6 is a softplus std
    assert cfg.model.posterior_std_init == pytest.approx(math.log1p(math.exp(-6)), rel=1e-3)


def test_model_group(compose_train: Callable[..., DictConfig]) -> None:
    bnn = compose_train("model=bnn")
    assert bnn.model.latent == "none" and bnn.model.stochastic_layers == "all"
    mlp = compose_train("model=mlp")
    assert mlp.model.latent == "none" and list(mlp.model.stochastic_layers) == []
    assert mlp.model.noise == bnn.model.noise == "homoscedastic"
    het = compose_train("model=het_mlp")
    assert het.model.latent == "none" and list(het.model.stochastic_layers) == []
    assert het.model.noise == "heteroscedastic" and het.model.hidden == mlp.model.hidden


@pytest.mark.parametrize("model", ["model=het_mlp", "model.noise=heteroscedastic"])
def test_heteroscedastic_models_train_and_predict_a_noise_per_point(
    model: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A het_mlp and a bnn_lv with a noise head, end to end with the figures: the aleatoric std
    of predictions.csv differs from point to point."""
    run_dir = tmp_path / "run"
    code = run_bnnlv(monkeypatch, "train", model, *TINY, "progress_bar=false",
                     f"hydra.run.dir={run_dir}")  # fmt: skip
    assert code == 0
    assert json.loads((run_dir / "metrics.json").read_text())["status"] == "ok"
    predictions = pd.read_csv(run_dir / "predictions.csv")
    assert predictions["aleatoric_std"].std() > 1e-3
    assert (run_dir / "fit.png").is_file()


# ---------------------------------------------------------------------------------------------
# End to end


@pytest.fixture(scope="module")
def tiny_run(
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[subprocess.CompletedProcess[str], Path]:
    tmp = tmp_path_factory.mktemp("cli")
    run_dir = tmp / "run"
    return bnnlv("train", *TINY, f"hydra.run.dir={run_dir}", cwd=tmp), run_dir


def test_train_exits_zero_and_reports(
    tiny_run: tuple[subprocess.CompletedProcess[str], Path],
) -> None:
    result, run_dir = tiny_run
    assert result.returncode == 0, result.stderr
    assert "test NLL" in result.stdout and str(run_dir) in result.stdout


def test_train_metrics(tiny_run: tuple[subprocess.CompletedProcess[str], Path]) -> None:
    _, run_dir = tiny_run
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["status"] == "ok"
    assert metrics.keys() >= METRIC_KEYS
    assert all(math.isfinite(metrics[key]) for key in METRIC_KEYS)
    assert metrics["epochs"] == 3 and metrics["n_train"] == 70
    assert not list(run_dir.glob(".*.tmp"))


def test_train_predictions_plots_and_logs(
    tiny_run: tuple[subprocess.CompletedProcess[str], Path],
) -> None:
    _, run_dir = tiny_run
    predictions = pd.read_csv(run_dir / "predictions.csv")
    assert set(COLUMNS) <= set(predictions.columns)
    assert len(predictions) == 20  # ceil(0.2 · 100) test points
    assert predictions[COLUMNS].notna().all().all()
    for name in ("data.png", "fit.png", "training_curves.png"):
        assert (run_dir / name).read_bytes()[:4] == b"\x89PNG"
    assert len(list(run_dir.glob("*.png"))) >= 4  # and the calibration figure
    log = pd.read_csv(run_dir / "logs" / "metrics.csv")
    assert {"epoch", "train/energy_per_point", "train/rmse"} <= set(log.columns)
    assert log["train/energy_per_point"].notna().sum() == 3
    config = (run_dir / "config.yaml").read_text()
    assert "n_points: 100" in config and "max_epochs: 3" in config


def test_cfg_job_prints_the_config(tmp_path: Path) -> None:
    result = bnnlv("train", "--cfg", "job", "alpha=0.25", "model=mlp", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "alpha: 0.25" in result.stdout
    assert "_target_: bnnlv.model.lit_module.BNNLV" in result.stdout
    assert "latent: none" in result.stdout
    assert not list(tmp_path.iterdir())  # printing the config runs nothing


def test_train_help_lists_the_config_groups(tmp_path: Path) -> None:
    result = bnnlv("train", "--help", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    section = result.stdout.split("== Configuration groups ==")[1].split("== Config ==")[0]
    groups = {
        name.strip(): {option.strip() for option in options.split(",")}
        for name, options in (line.split(":", 1) for line in section.splitlines() if ": " in line)
    }
    assert set(groups) >= {"model", "data", "prior", "trainer", "experiment"}
    assert groups["model"] >= {"bnn", "bnn_lv", "mlp"}
    assert "seed_tutorial" in groups["experiment"]
    assert "toy_heteroscedastic" in groups["data"]
    assert groups["trainer"] >= {"cpu", "gpu"}
    assert "default" in groups["prior"]


def test_bnnlv_help_lists_commands(tmp_path: Path) -> None:
    result = bnnlv("--help", cwd=tmp_path)
    assert result.returncode == 0
    assert "commands:" in result.stdout and "train" in result.stdout
    unknown = bnnlv("nonsense", cwd=tmp_path)
    assert unknown.returncode == 2 and "nonsense" in unknown.stderr


def test_multirun_makes_one_folder_per_job_and_runs_bnn_and_mlp(tmp_path: Path) -> None:
    sweep = tmp_path / "sweep"
    result = bnnlv("train", "-m", "model=bnn,mlp", *TINY, "plots=false",
                   f"hydra.sweep.dir={sweep}", cwd=tmp_path)  # fmt: skip
    assert result.returncode == 0, result.stderr
    jobs = sorted(p for p in sweep.rglob("metrics.json"))
    assert len(jobs) == 2  # one folder per job
    stochastic = set()
    for metrics in jobs:
        job = metrics.parent
        assert json.loads(metrics.read_text())["status"] == "ok"
        config = (job / "config.yaml").read_text()
        assert "latent: none" in config
        stochastic |= {line.split(":", 1)[1].strip() for line in config.splitlines()
                       if line.strip().startswith("stochastic_layers:")}  # fmt: skip
        assert (job / "predictions.csv").is_file()
    assert stochastic == {"all", "[]"}  # model=bnn and model=mlp


def test_freeze_imports_leaves_the_imported_objects_out_of_collection() -> None:
    from bnnlv.runs.cli import freeze_imports

    gc.unfreeze()
    tracked = len(gc.get_objects())
    try:
        freeze_imports()
        assert gc.get_freeze_count() >= 0.9 * tracked
        assert len(gc.get_objects()) < 0.1 * tracked  # what a collection still walks
    finally:
        gc.unfreeze()
