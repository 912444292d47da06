"""One training run, end to end: compose → fit → evaluate → results folder.

The entry point only orchestrates; every piece it calls is built from the config by ``_target_``.
Any failure is recorded in ``metrics.json`` as ``status: failed`` with the reason (and the epoch
and step when training had started), then re-raised for the CLI to report in one line. SIGINT and
SIGTERM save ``checkpoints/last.ckpt`` and record ``status: interrupted`` instead.
"""

from __future__ import annotations

import logging
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

import lightning as L
import torch
from hydra.utils import instantiate
from lightning.pytorch.callbacks import TQDMProgressBar
from lightning.pytorch.loggers import CSVLogger
from lightning.pytorch.utilities import rank_zero_only
from omegaconf import DictConfig, OmegaConf

from bnnlv.data.module import RegressionDataModule
from bnnlv.model.allocator import keep_freed_memory
from bnnlv.model.lit_module import BNNLV, optimiser_updates
from bnnlv.runs.checkpoints import RunCheckpoints, save_checkpoint
from bnnlv.runs.config import check_config
from bnnlv.runs.errors import describe, root_cause
from bnnlv.runs.interrupts import interrupts_deferred, interrupts_raised
from bnnlv.runs.results import METRICS_FILE, write_json, write_text
from bnnlv.runs.resume import join_logs, resume_from, set_aside_logs
from bnnlv.runs.saved import score
from bnnlv.runs.state import RunState

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
    """Instantiate the data module (loaded and standardised) and the model it sizes.

    ``_convert_="all"`` passes plain lists, so the hyperparameters saved in checkpoints load
    with ``weights_only=True`` (no OmegaConf classes in the pickle).
    """
    check_config(cfg)
    data: RegressionDataModule = instantiate(cfg.data, seed=cfg.seed, _convert_="all")
    data.prepare()
    model: BNNLV = instantiate(
        cfg.model,
        _convert_="all",
        in_features=data.in_features,
        out_features=data.out_features,
        n_train=data.n_train,
        batch_size=data.batch_size,
    )
    model.update_guard = interrupts_deferred
    return data, model


def train(cfg: DictConfig, run_dir: Path) -> dict[str, Any]:
    """Fit the configured model and write the whole results folder; return the metrics.

    In a distributed run only global rank 0 writes; the other processes fit and return (each
    says so in its log, ``<run>/train_ddp_process_<rank>.log``).
    """
    rank = getattr(rank_zero_only, "rank", 0)
    if rank != 0:
        log.info("distributed process %d trains with process 0, which writes %s", rank, run_dir)
        return _train(cfg, run_dir, RunCheckpoints(run_dir / "checkpoints", None))
    checkpoints = RunCheckpoints(run_dir / "checkpoints", cfg.get("checkpoint_every"))
    return recorded(cfg, run_dir, checkpoints, lambda: _train(cfg, run_dir, checkpoints))


class StopPoint(Protocol):
    """Where a run stopped and the checkpoint it left (:class:`RunCheckpoints` and the like)."""

    stopped_at: tuple[int, int] | None  # (epoch, step)

    @property
    def saved(self) -> Path | None: ...


def recorded(
    cfg: DictConfig, run_dir: Path, checkpoints: StopPoint, body: Callable[[], dict[str, Any]]
) -> dict[str, Any]:
    """Run ``body`` as a run in ``run_dir``, keeping its record: ``metrics.json`` says
    ``running`` first, then ``body``'s metrics, or the :func:`stopped_record` of an interrupt
    or failure (re-raised); ``config.yaml`` holds the resolved config. SIGTERM interrupts like
    Ctrl-C while ``body`` runs."""
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        write_json(run_dir / METRICS_FILE, {"status": "running"})
    except OSError as error:
        reason = f"cannot write the run folder ({error.strerror or error})"
        raise OSError(error.errno, reason, str(run_dir)) from None
    try:
        with interrupts_raised():
            write_text(run_dir / "config.yaml", OmegaConf.to_yaml(cfg, resolve=True))
            metrics = body()
    except BaseException as error:
        write_json(run_dir / METRICS_FILE, stopped_record(error, checkpoints, run_dir))
        raise
    write_json(run_dir / METRICS_FILE, metrics)
    return metrics


def stopped_record(error: BaseException, checkpoints: StopPoint, run_dir: Path) -> dict[str, Any]:
    """metrics.json of a run that did not finish: status, reason, where it stopped, checkpoint."""
    status = "interrupted" if isinstance(error, KeyboardInterrupt) else "failed"
    record: dict[str, Any] = {
        "status": status,
        "error": describe(error),
        "error_type": type(root_cause(error)).__name__,
    }
    if checkpoints.stopped_at is not None:
        record["epoch"], record["step"] = checkpoints.stopped_at
    saved = checkpoints.saved
    record["checkpoint"] = str(saved.relative_to(run_dir)) if saved else None
    return record


def _train(cfg: DictConfig, run_dir: Path, checkpoints: RunCheckpoints) -> dict[str, Any]:
    quiet_lightning()
    L.seed_everything(cfg.seed, workers=False, verbose=False)
    if cfg.get("threads"):
        torch.set_num_threads(int(cfg.threads))
    keep_freed_memory()
    data, model = build(cfg)
    show_bar = _progress_bar(cfg.progress_bar)
    callbacks: list[L.Callback] = [checkpoints, RunState()]
    if show_bar:
        callbacks.append(TQDMProgressBar(refresh_rate=max(1, len_epoch(data))))
    trainer: L.Trainer = instantiate(
        cfg.trainer,
        logger=CSVLogger(save_dir=run_dir, name="", version="logs"),
        callbacks=callbacks,
        enable_progress_bar=show_bar,
        enable_checkpointing=False,
        default_root_dir=run_dir,
    )
    data.device = trainer.strategy.root_device
    resumed = bool(cfg.get("resume")) and trainer.is_global_zero
    if resumed:
        set_aside_logs(run_dir)
    start = time.perf_counter()
    try:
        trainer.fit(model, datamodule=data, ckpt_path=resume_from(cfg), weights_only=True)
    except SystemExit:
        # Lightning answers Ctrl-C (and its own SIGTERM flag) with on_exception hooks, where
        # the checkpoint is saved, then sys.exit(1): report it as the interrupt it was.
        if checkpoints.interrupt is not None:
            raise checkpoints.interrupt from None
        raise
    finally:
        if resumed:
            join_logs(run_dir)
    fit_seconds = time.perf_counter() - start
    save_checkpoint(trainer, checkpoints.path)
    if not trainer.is_global_zero:
        return {"status": "ok"}
    metrics: dict[str, Any] = {"status": "ok", "fit_seconds": fit_seconds}
    metrics |= score(model, data, run_dir, cfg.seed, bool(cfg.plots), cfg.get("interval"))
    metrics["epochs"] = trainer.current_epoch
    metrics["steps"] = optimiser_updates(trainer)
    metrics["n_train"] = data.n_train
    return metrics


def len_epoch(data: RegressionDataModule) -> int:
    """Optimiser steps per epoch."""
    return -(-data.n_train // data.batch_size)
