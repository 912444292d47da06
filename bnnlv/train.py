"""One training run, end to end: compose → fit → evaluate → results folder.

The entry point only orchestrates; every piece it calls is built from the config by ``_target_``.
Any failure is recorded in ``metrics.json`` as ``status: failed`` with the reason, then re-raised
for the CLI to report in one line.
"""

from __future__ import annotations

import logging
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import lightning as L
import torch
from hydra.utils import instantiate
from lightning.pytorch.callbacks import TQDMProgressBar
from lightning.pytorch.loggers import CSVLogger
from omegaconf import DictConfig, OmegaConf

from bnnlv.data.module import RegressionDataModule
from bnnlv.energy import check_alpha
from bnnlv.evaluate import evaluate
from bnnlv.module import BNNLV
from bnnlv.results import METRICS_FILE, write_json, write_text

log = logging.getLogger("bnnlv")


def quiet_lightning() -> None:
    """Keep Lightning's start-up chatter (GPU/TPU availability, tips) out of the run output."""
    for name in ("lightning", "lightning.pytorch", "lightning.fabric"):
        logging.getLogger(name).setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", message=".*does not have many workers.*")
    warnings.filterwarnings("ignore", message=".*LeafSpec.*")


def _progress_bar(setting: Any) -> bool:
    if setting == "auto":
        return sys.stderr.isatty()
    if isinstance(setting, bool):
        return setting
    raise ValueError(f"progress_bar must be auto, true or false, got {setting!r}")


def build(cfg: DictConfig) -> tuple[RegressionDataModule, BNNLV]:
    """Instantiate the data module (loaded and standardised) and the model it sizes."""
    check_alpha(cfg.alpha)
    data: RegressionDataModule = instantiate(cfg.data, seed=cfg.seed)
    data.prepare()
    model: BNNLV = instantiate(
        cfg.model,
        in_features=data.in_features,
        out_features=data.out_features,
        n_train=data.n_train,
        batch_size=data.batch_size,
    )
    return data, model


def train(cfg: DictConfig, run_dir: Path) -> dict[str, Any]:
    """Fit the configured model and write the whole results folder; return the metrics."""
    run_dir.mkdir(parents=True, exist_ok=True)
    write_text(run_dir / "config.yaml", OmegaConf.to_yaml(cfg, resolve=True))
    metrics: dict[str, Any] = {"status": "running"}
    write_json(run_dir / METRICS_FILE, metrics)
    try:
        metrics = _train(cfg, run_dir)
    except BaseException as error:
        reason = "interrupted" if isinstance(error, KeyboardInterrupt) else "failed"
        write_json(run_dir / METRICS_FILE, {"status": reason, "error": _one_line(error)})
        raise
    write_json(run_dir / METRICS_FILE, metrics)
    return metrics


def _one_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0] if text else ''}".rstrip(": ")


def _train(cfg: DictConfig, run_dir: Path) -> dict[str, Any]:
    quiet_lightning()
    L.seed_everything(cfg.seed, workers=False, verbose=False)
    if cfg.get("threads"):
        torch.set_num_threads(int(cfg.threads))
    data, model = build(cfg)
    show_bar = _progress_bar(cfg.progress_bar)
    callbacks = [TQDMProgressBar(refresh_rate=max(1, len_epoch(data)))] if show_bar else []
    trainer: L.Trainer = instantiate(
        cfg.trainer,
        logger=CSVLogger(save_dir=run_dir, name="", version="logs"),
        callbacks=callbacks,
        enable_progress_bar=show_bar,
        enable_checkpointing=False,
        default_root_dir=run_dir,
    )
    data.device = trainer.strategy.root_device
    start = time.perf_counter()
    trainer.fit(model, datamodule=data)
    fit_seconds = time.perf_counter() - start
    checkpoint_dir = run_dir / "checkpoints"
    checkpoint_dir.mkdir(exist_ok=True)
    trainer.save_checkpoint(checkpoint_dir / "last.ckpt")
    metrics: dict[str, Any] = {"status": "ok", "fit_seconds": fit_seconds}
    metrics |= evaluate(model, data, run_dir, make_plots=bool(cfg.plots))
    metrics["epochs"] = trainer.current_epoch
    metrics["steps"] = trainer.global_step
    metrics["n_train"] = data.n_train
    return metrics


def len_epoch(data: RegressionDataModule) -> int:
    """Optimiser steps per epoch."""
    return -(-data.n_train // data.batch_size)
