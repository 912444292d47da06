"""The ``bnnlv`` command: the composed config, and ``bnnlv train`` end to end in a subprocess."""

from __future__ import annotations

import json
import math
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest
from omegaconf import DictConfig

from bnnlv import __version__ as bnnlv_version
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
    ensemble = compose_train("model=ensemble")
    assert ensemble.model.members == 5 and bnn.model.members == 1
    assert (
        ensemble.model.noise == "heteroscedastic" and list(ensemble.model.stochastic_layers) == []
    )


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


def test_train_help_explains_every_key_sweeps_and_resume(tmp_path: Path) -> None:
    result = bnnlv("train", "--help", "model=mlp", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    text = result.stdout
    assert "-m KEY=V1,V2" in text and "--multirun" in text and "resume=DIR" in text
    groups = entries(text, "Config groups", "Keys")
    assert groups["model: bnn, bnn_lv, ensemble, het_mlp, mlp [mlp]"]  # the override shows
    assert any("seed_tutorial" in group for group in groups)
    keys = {entry.split("=")[0]: (entry, text) for entry, text in entries(text, "Keys").items()}
    assert "fraction of the prior" in keys["model.latent_init_var_frac"][1]
    assert "M·L components" in keys["model.n_latent_test"][1]
    assert keys["model.latent"][0] == "model.latent=none"
    assert not list(tmp_path.iterdir())  # help runs nothing


def entries(text: str, start: str, end: str = "Other flags") -> dict[str, str]:
    """The entries between the headings ``start`` and ``end`` of a help text: each an indented
    line and its description, indented further, on the next."""
    lines = text.split(f"\n{start}")[1].split(f"\n{end}")[0].splitlines()[1:]
    named = [line for line in lines if line.strip()]
    return {
        entry.strip(): about.strip() for entry, about in zip(named[::2], named[1::2], strict=True)
    }


@pytest.mark.parametrize("command", ["evaluate", "predict"])
def test_evaluate_and_predict_help_list_only_what_they_take(tmp_path: Path, command: str) -> None:
    result = bnnlv(command, "--help", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    groups = [entry.split(":")[0] for entry in entries(result.stdout, "Config groups", "Keys")]
    assert groups == ["data"]  # not model, trainer or launcher: the run's own are used
    assert entries(result.stdout, "Keys")["run_dir=???"].startswith("the run folder to load")


def test_bnnlv_alone_shows_the_usage_and_exits_2_and_version(tmp_path: Path) -> None:
    alone = bnnlv(cwd=tmp_path)
    assert alone.returncode == 2 and "usage: bnnlv COMMAND" in alone.stderr
    version = bnnlv("--version", cwd=tmp_path)
    assert version.returncode == 0 and version.stdout.strip() == f"bnnlv {bnnlv_version}"
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


FOLDER_NAME = re.compile(r"\d{4}-\d\d-\d\d_\d\d-\d\d-\d\d(-\d+)?")


def test_one_folder_name_scheme_and_a_log_file_only_with_something_in_it(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Runs and evaluations are <date>_<time>[-k] folders, sorting as they started; the command's
    log (train.log) holds what was logged (the clamped batch's warning) or does not exist."""
    monkeypatch.chdir(tmp_path)
    assert run_bnnlv(monkeypatch, "train", *TINY, "plots=false", "data.batch_size=5000") == 0
    assert run_bnnlv(monkeypatch, "train", *TINY, "plots=false", "data.n_points=300") == 0
    warned, quiet = sorted((tmp_path / "outputs").iterdir())
    assert FOLDER_NAME.fullmatch(warned.name) and FOLDER_NAME.fullmatch(quiet.name)
    assert "data.batch_size=5000 is larger than" in (warned / "train.log").read_text()
    assert not (quiet / "train.log").exists()
    assert run_bnnlv(monkeypatch, "evaluate", f"run_dir={quiet}", "plots=false") == 0
    (evaluated,) = (quiet / "evaluate").iterdir()
    assert FOLDER_NAME.fullmatch(evaluated.name)
