"""Sweeps through the ``bnnlv`` command: the summary table, failures, Optuna, joblib, submitit."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from bnnlv.runs.folders import config_dir
from tests.cli_inprocess import TINY, run_bnnlv

SUMMARY_FILES = ("summary.csv", "summary_by_setting.csv", "summary.md")


def sweep_folders(root: Path) -> list[Path]:
    """The sweep folders the default ``hydra.sweep.dir`` created under ``root``."""
    return sorted(p for p in (root / "outputs" / "multirun").glob("*") if p.is_dir())


def statuses(sweep: Path) -> list[str]:
    jobs = sorted(sweep.glob("*/metrics.json"), key=lambda p: int(p.parent.name))
    return [json.loads(p.read_text())["status"] for p in jobs]


def test_2x2_sweep_with_a_failing_job_is_summarised_and_rebuilt(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sweep = tmp_path / "sweep"
    # stochastic layer 3 exists in [8, 8, 8] (4 layers) but not in [8] (2 layers): one bad job
    tiny = [o for o in TINY if not o.startswith("model.hidden")]
    code = run_bnnlv(monkeypatch, "train", "-m", *tiny, "model.stochastic_layers=all,[3]",
                     "model.hidden=[8],[8,8,8]", f"hydra.sweep.dir={sweep}")  # fmt: skip
    assert code == 1  # the sweep went on, then reports the failure
    assert statuses(sweep) == ["ok", "ok", "failed", "ok"]
    jobs = pd.read_csv(sweep / "summary.csv")
    assert len(jobs) == 4
    failed = jobs[jobs["status"] == "failed"].iloc[0]
    assert failed["model.stochastic_layers"] == "[3]" and failed["model.hidden"] == "[8]"
    assert "names no layer" in failed["error"]
    assert jobs.loc[jobs["status"] == "ok", "test_nll"].notna().all()
    text = (sweep / "summary.md").read_text()
    assert "3 ok, 1 not ok" in text and "names no layer" in text
    assert (sweep / "summary.png").read_bytes()[:4] == b"\x89PNG"

    before = {name: (sweep / name).read_text() for name in SUMMARY_FILES}
    for name in (*SUMMARY_FILES, "summary.png"):
        (sweep / name).unlink()
    assert run_bnnlv(monkeypatch, "summarize", str(sweep)) == 0
    assert before == {name: (sweep / name).read_text() for name in SUMMARY_FILES}
    assert (sweep / "summary.png").is_file()


def test_summarize_reports_a_bad_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_bnnlv(monkeypatch, "summarize", str(tmp_path / "nowhere")) == 1
    assert "does not exist" in capsys.readouterr().err


def test_optuna_preset_minimises_the_validation_nll(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("hydra_plugins.hydra_optuna_sweeper")
    sweep = tmp_path / "optuna"
    code = run_bnnlv(monkeypatch, "train", "hparams_search=optuna", "hydra.sweeper.n_trials=2",
                     *TINY, f"hydra.sweep.dir={sweep}")  # fmt: skip
    assert code == 0
    assert statuses(sweep) == ["ok", "ok"]
    result = OmegaConf.load(sweep / "optimization_results.yaml")
    assert set(result.best_params) == {"alpha", "prior.weight_var", "model.lr"}
    val_nll = [json.loads(p.read_text())["val_nll"] for p in sweep.glob("*/metrics.json")]
    assert result.best_value == pytest.approx(min(val_nll))  # the job returns its val NLL
    assert 0.0 <= result.best_params.alpha <= 1.0
    assert (sweep / "summary.md").is_file()


def test_joblib_preset_runs_jobs_in_parallel_processes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("hydra_plugins.hydra_joblib_launcher")
    monkeypatch.chdir(tmp_path)
    # alpha=2 is rejected: the failure, recorded by a worker process, still fails the command
    code = run_bnnlv(monkeypatch, "train", "-m", "launcher=joblib", "alpha=0.5,2.0", *TINY)
    assert code == 1
    (sweep,) = sweep_folders(tmp_path)  # one sweep folder, shared by the workers
    assert statuses(sweep) == ["ok", "failed"]
    assert "threads: 1" in (sweep / "0" / "config.yaml").read_text()
    assert "1 ok, 1 not ok" in (sweep / "summary.md").read_text()


@pytest.mark.slow  # each job starts a fresh Python (~30 s on 2 cores)
def test_submitit_local_mode_of_the_slurm_launcher(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("hydra_plugins.hydra_submitit_launcher")
    monkeypatch.chdir(tmp_path)
    code = run_bnnlv(monkeypatch, "train", "-m", "launcher=submitit_local", "seed=0,1", *TINY)
    assert code == 0
    (sweep,) = sweep_folders(tmp_path)
    assert statuses(sweep) == ["ok", "ok"]
    assert (sweep / ".submitit").is_dir()
    settings = pd.read_csv(sweep / "summary_by_setting.csv")
    assert settings.loc[0, "n_ok"] == 2 and settings.loc[0, "test_nll_se"] > 0


def test_slurm_preset_composes_a_submitit_slurm_launcher(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("hydra_plugins.hydra_submitit_launcher")
    monkeypatch.chdir(tmp_path)
    with initialize_config_dir(config_dir=config_dir(), version_base="1.3"):
        cfg = compose("train", ["launcher=slurm", "hydra.launcher.partition=gpu"],
                      return_hydra_config=True)  # fmt: skip
    launcher = OmegaConf.to_container(cfg.hydra.launcher)  # unresolved: resolving claims a folder
    assert isinstance(launcher, dict)
    assert launcher["_target_"].endswith("SlurmLauncher")
    assert launcher["partition"] == "gpu" and launcher["cpus_per_task"] == 2
    assert launcher["submitit_folder"] == "${hydra.sweep.dir}/.submitit/%j"
    assert cfg.hydra.callbacks.summary._target_ == "bnnlv.runs.sweep_callback.SummaryCallback"
    assert not list(tmp_path.iterdir())


def test_sweep_folder_summary_survives_a_missing_job(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sweep = tmp_path / "sweep"
    assert run_bnnlv(monkeypatch, "train", "-m", "seed=0,1", *TINY,
                     f"hydra.sweep.dir={sweep}") == 0  # fmt: skip
    shutil.rmtree(sweep / "1" / "checkpoints")
    (sweep / "1" / "metrics.json").unlink()  # a job whose machine died before it wrote
    assert run_bnnlv(monkeypatch, "summarize", str(sweep)) == 0
    jobs = pd.read_csv(sweep / "summary.csv")
    assert list(jobs["status"]) == ["ok", "missing"]


def test_a_sweep_job_cannot_relaunch_itself_for_ddp(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sweep = tmp_path / "sweep"
    ddp = ["trainer=ddp", "trainer.accelerator=cpu", "trainer.devices=2"]
    code = run_bnnlv(
        monkeypatch, "train", "-m", *ddp, "seed=0,1", *TINY, f"hydra.sweep.dir={sweep}"
    )
    assert code == 1
    assert statuses(sweep) == ["failed", "failed"]
    error = json.loads((sweep / "0" / "metrics.json").read_text())["error"]
    assert "cannot run inside a sweep" in error
