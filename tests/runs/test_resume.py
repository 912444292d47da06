"""bnnlv.runs.resume: the resumed config and the training log joined across the stop."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from omegaconf import OmegaConf

from bnnlv.runs.resume import LOG_BEFORE, LOG_FILE, join_logs, resume_config, set_aside_logs


@pytest.fixture
def run(tmp_path: Path) -> Path:
    (tmp_path / "checkpoints").mkdir()
    (tmp_path / "checkpoints" / "last.ckpt").write_bytes(b"")
    cfg = {"seed": 3, "resume": None, "trainer": {"max_epochs": 10}, "model": {"lr": 0.1}}
    OmegaConf.save(OmegaConf.create(cfg), tmp_path / "config.yaml")
    return tmp_path


def test_resume_config_is_the_saved_config_with_plain_overrides(run: Path) -> None:
    cfg = resume_config(str(run), [f"resume={run}", "trainer.max_epochs=20"])
    assert cfg.seed == 3 and cfg.model.lr == 0.1
    assert cfg.trainer.max_epochs == 20 and cfg.resume == str(run)


@pytest.mark.parametrize("override", ["model=mlp", "+extra=1", "~seed", "hydra.verbose=true"])
def test_resume_config_rejects_edits_of_the_config(run: Path, override: str) -> None:
    with pytest.raises(ValueError, match="cannot be combined with resume="):
        resume_config(str(run), [override])


def test_resume_config_rejects_an_unknown_key(run: Path) -> None:
    with pytest.raises(Exception, match="max_epoch"):
        resume_config(str(run), ["trainer.max_epoch=20"])


def test_resume_config_needs_a_checkpoint(run: Path) -> None:
    (run / "checkpoints" / "last.ckpt").unlink()
    with pytest.raises(ValueError, match="no checkpoint"):
        resume_config(str(run), [])


def log(epochs: range, value: float) -> pd.DataFrame:
    return pd.DataFrame({"epoch": list(epochs), "train/rmse": [value] * len(epochs)})


def test_logs_before_the_stop_are_joined_with_the_resumed_ones(tmp_path: Path) -> None:
    (tmp_path / "logs").mkdir()
    log(range(4), 1.0).to_csv(tmp_path / LOG_FILE, index=False)  # epochs 0-3 logged, then stop
    set_aside_logs(tmp_path)
    assert (tmp_path / LOG_BEFORE).is_file() and not (tmp_path / LOG_FILE).exists()
    log(range(2, 6), 2.0).to_csv(tmp_path / LOG_FILE, index=False)  # resumed from epoch 2
    join_logs(tmp_path)
    joined = pd.read_csv(tmp_path / LOG_FILE)
    assert list(joined["epoch"]) == [0, 1, 2, 3, 4, 5]
    assert list(joined["train/rmse"]) == [1.0, 1.0, 2.0, 2.0, 2.0, 2.0]
    assert not (tmp_path / LOG_BEFORE).exists()
    join_logs(tmp_path)  # nothing set aside: unchanged
    assert pd.read_csv(tmp_path / LOG_FILE).equals(joined)
