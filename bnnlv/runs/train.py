"""One training run, end to end: compose → fit → evaluate → results folder; or several runs at
once, each with its own folder, trained in one process on the model's replica axis.

The entry point only orchestrates; every piece it calls is built from the config by ``_target_``.
Any failure is recorded in ``metrics.json`` as ``status: failed`` with the reason (and the epoch
and step when training had started), then re-raised for the CLI to report in one line. SIGINT and
SIGTERM save ``checkpoints/last.ckpt`` and record ``status: interrupted`` instead.

:func:`train_replicas` trains runs whose configs differ only in ``seed`` / ``data.split``
(bnnlv.runs.replicas) together: one model of G runs × M members on one replica axis, each run's
data in its own order, each run's log rows to its own ``logs/metrics.csv``, each run's periodic
checkpoints split off into its own folder; after the fit the model is split into the runs'
models (BNNLV.split_runs), each scored and saved as a run alone would be. Every file a run
folder gets is what :func:`train` would have written for that config, to float rounding.
"""

from __future__ import annotations

import logging
import sys
import time
import warnings
from collections.abc import Callable, Sequence
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
from bnnlv.data.replicas import ReplicaData
from bnnlv.model.allocator import keep_freed_memory
from bnnlv.model.divergence import Divergence, DivergenceError
from bnnlv.model.lit_module import BNNLV, optimiser_updates
from bnnlv.model.replicas import member_seeds
from bnnlv.runs.checkpoints import RunCheckpoints
from bnnlv.runs.config import check_config
from bnnlv.runs.errors import describe, root_cause
from bnnlv.runs.grouping import check_group
from bnnlv.runs.interrupts import interrupts_raised, interrupts_surfaced, update_deferred
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


def progress_bar(setting: Any) -> bool:
    if setting == "auto":
        return sys.stderr.isatty()
    if isinstance(setting, bool):
        return setting
    raise ValueError(f"progress_bar must be auto, true or false, got {setting!r}")


def build(cfg: DictConfig) -> tuple[RegressionDataModule, BNNLV]:
    """Instantiate the data module (loaded and standardised) and the model it sizes."""
    (data,), model = build_replicas([cfg])
    return data, model


def build_replicas(cfgs: Sequence[DictConfig]) -> tuple[list[RegressionDataModule], BNNLV]:
    """:func:`build` for runs trained together: each run's data module, and one model holding
    every run's members as replicas, run g's block g (seeds in the same order)."""
    for cfg in cfgs:
        check_config(cfg)
    check_group(cfgs)
    runs = []
    for cfg in cfgs:
        data: RegressionDataModule = instantiate(cfg.data, seed=cfg.seed, _convert_="all")
        data.prepare()
        runs.append(data)
    seeds = [seed for cfg, data in zip(cfgs, runs, strict=True) for seed in members(cfg, data)]
    return runs, build_model(cfgs[0], runs[0], seeds)


def members(cfg: DictConfig, data: RegressionDataModule) -> list[int]:
    """The seeds of the run's members (model.replicas.member_seeds: one for every model but the
    ensemble), each its random stream and its order of ``data`` (set here)."""
    data.shuffle_seeds = member_seeds(cfg.seed, cfg.model.get("members", 1))
    return list(data.shuffle_seeds)


def build_model(
    cfg: DictConfig, data: RegressionDataModule, seeds: Sequence[int] | None = None
) -> BNNLV:
    """The configured model, sized by ``data`` (prepared), its replicas the run's
    :func:`members` (or ``seeds``: the members of runs trained together).

    ``_convert_="all"`` passes plain lists, so the hyperparameters saved in checkpoints load
    with ``weights_only=True`` (no OmegaConf classes in the pickle).
    """
    model: BNNLV = instantiate(
        cfg.model,
        _convert_="all",
        in_features=data.in_features,
        out_features=data.out_features,
        n_train=data.n_train,
        batch_size=data.batch_size,
        seeds=list(members(cfg, data) if seeds is None else seeds),
    )
    model.update_guard = update_deferred
    return model


def train(cfg: DictConfig, run_dir: Path) -> dict[str, Any]:
    """Fit the configured model and write the whole results folder; return the metrics.

    In a distributed run only global rank 0 writes; the other processes fit and return (each
    says so in its log, ``<run>/train_ddp_process_<rank>.log``).
    """
    rank = getattr(rank_zero_only, "rank", 0)
    if rank != 0:
        log.info("distributed process %d trains with process 0, which writes %s", rank, run_dir)
        return _train([cfg], [run_dir], RunCheckpoints(run_dir / "checkpoints", None))[0]
    (metrics,) = train_replicas([cfg], [run_dir])  # one run's divergence stops the fit: raised
    return metrics


def train_replicas(cfgs: Sequence[DictConfig], run_dirs: Sequence[Path]) -> list[dict[str, Any]]:
    """Train the runs ``cfgs`` (differing only in ``seed`` / ``data.split``) together, run g into
    ``run_dirs[g]``, each folder as :func:`train` writes it; return each run's metrics.

    A run whose replicas diverge is recorded as failed (its last good checkpoint kept) while the
    others train on; a failure of the whole (a bad config, an interrupt, every run diverged) is
    recorded in every run's ``metrics.json`` and raised.
    """
    return recorded_group(cfgs, run_dirs, lambda checkpoints: _train(cfgs, run_dirs, checkpoints))


def recorded_group(
    cfgs: Sequence[DictConfig],
    run_dirs: Sequence[Path],
    body: Callable[[RunCheckpoints], list[dict[str, Any]]],
) -> list[dict[str, Any]]:
    """:func:`recorded_runs` of runs made together by ``body``, which saves each run's
    checkpoint in ``<run_dirs[g]>/checkpoints`` through the :class:`RunCheckpoints` it is
    given (every ``checkpoint_every`` epochs, and on interrupt)."""
    if len(cfgs) != len(run_dirs):
        raise ValueError(f"{len(cfgs)} run configs but {len(run_dirs)} run folders")
    every = cfgs[0].get("checkpoint_every")
    checkpoints = RunCheckpoints([run_dir / "checkpoints" for run_dir in run_dirs], every)
    stops = [checkpoints.run(g) for g in range(len(run_dirs))]
    return recorded_runs(cfgs, run_dirs, stops, lambda: body(checkpoints))


class StopPoint(Protocol):
    """Where a run stopped and the checkpoint it left (:class:`RunCheckpoints` and the like)."""

    @property
    def stopped_at(self) -> tuple[int, int] | None: ...  # (epoch, step)

    @property
    def saved(self) -> Path | None: ...


def recorded(
    cfg: DictConfig, run_dir: Path, checkpoints: StopPoint, body: Callable[[], dict[str, Any]]
) -> dict[str, Any]:
    """Run ``body`` as a run in ``run_dir``, keeping its record: ``metrics.json`` says
    ``running`` first, then ``body``'s metrics, or the :func:`stopped_record` of an interrupt
    or failure (re-raised); ``config.yaml`` holds the resolved config. SIGTERM interrupts like
    Ctrl-C while ``body`` runs."""
    (metrics,) = recorded_runs([cfg], [run_dir], [checkpoints], lambda: [body()])
    return metrics


def recorded_runs(
    cfgs: Sequence[DictConfig],
    run_dirs: Sequence[Path],
    stops: Sequence[StopPoint],
    body: Callable[[], list[dict[str, Any]]],
) -> list[dict[str, Any]]:
    """:func:`recorded` for runs made by one ``body`` together, run g's record in
    ``run_dirs[g]``; a failure of ``body`` is recorded in every run's folder."""
    try:
        for run_dir in run_dirs:
            run_dir.mkdir(parents=True, exist_ok=True)
            write_json(run_dir / METRICS_FILE, {"status": "running"})
    except OSError as error:
        reason = f"cannot write the run folder ({error.strerror or error})"
        raise OSError(error.errno, reason, str(run_dir)) from None
    try:
        with interrupts_raised(), interrupts_surfaced():
            for cfg, run_dir in zip(cfgs, run_dirs, strict=True):
                write_text(run_dir / "config.yaml", OmegaConf.to_yaml(cfg, resolve=True))
            results = body()
    except BaseException as error:
        for stop, run_dir in zip(stops, run_dirs, strict=True):
            write_json(run_dir / METRICS_FILE, stopped_record(error, stop, run_dir))
        raise
    for run_dir, metrics in zip(run_dirs, results, strict=True):
        write_json(run_dir / METRICS_FILE, metrics)
    return results


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


def diverged_record(divergence: Divergence, checkpoint: StopPoint) -> dict[str, Any]:
    """metrics.json of a run trained with others whose replica diverged while they trained on."""
    saved = checkpoint.saved
    return {
        "status": "failed",
        "error": divergence.reason,
        "error_type": DivergenceError.__name__,
        "epoch": divergence.epoch,
        "step": divergence.step,
        "checkpoint": str(Path("checkpoints") / saved.name) if saved else None,
    }


def prepare_process(cfg: DictConfig) -> None:
    """Quiet Lightning, seed every generator with ``cfg.seed``, set the torch threads."""
    quiet_lightning()
    L.seed_everything(cfg.seed, workers=False, verbose=False)
    if cfg.get("threads"):
        torch.set_num_threads(int(cfg.threads))
    keep_freed_memory()


def make_trainer(
    cfg: DictConfig,
    run_dir: Path,
    data: RegressionDataModule | ReplicaData,
    callbacks: list[L.Callback],
    show_bar: bool,
    **overrides: Any,
) -> L.Trainer:
    """The configured ``lightning.Trainer`` (``overrides`` replace its config keys), without
    Lightning's own checkpointing, and ``data`` moved to its device."""
    if show_bar:
        first = data.runs[0] if isinstance(data, ReplicaData) else data
        callbacks = [*callbacks, TQDMProgressBar(refresh_rate=max(1, len_epoch(first)))]
    trainer: L.Trainer = instantiate(
        cfg.trainer,
        callbacks=callbacks,
        enable_progress_bar=show_bar,
        enable_checkpointing=False,
        default_root_dir=run_dir,
        **overrides,
    )
    data.device = trainer.strategy.root_device
    return trainer


def fit(
    trainer: L.Trainer,
    model: BNNLV,
    data: RegressionDataModule | ReplicaData,
    checkpoints: RunCheckpoints,
    ckpt_path: Path | None,
) -> float:
    """``trainer.fit`` (continuing from ``ckpt_path`` if given); return its seconds. A signal
    that stops it is raised as the :class:`RunInterrupted` that ``checkpoints`` recorded."""
    start = time.perf_counter()
    try:
        trainer.fit(model, datamodule=data, ckpt_path=ckpt_path, weights_only=True)
    except SystemExit:
        # Lightning answers Ctrl-C (and its own SIGTERM flag) with on_exception hooks, where
        # the checkpoint is saved, then sys.exit(1): report it as the interrupt it was.
        if checkpoints.interrupt is not None:
            raise checkpoints.interrupt from None
        raise
    return time.perf_counter() - start


def _train(
    cfgs: Sequence[DictConfig], run_dirs: Sequence[Path], checkpoints: RunCheckpoints
) -> list[dict[str, Any]]:
    cfg = cfgs[0]
    prepare_process(cfg)
    runs, model = build_replicas(cfgs)
    data: RegressionDataModule | ReplicaData = runs[0] if len(runs) == 1 else ReplicaData(runs)
    trainer = make_trainer(
        cfg, run_dirs[0], data, [checkpoints, RunState()], progress_bar(cfg.progress_bar),
        logger=[CSVLogger(save_dir=run_dir, name="", version="logs") for run_dir in run_dirs],
    )  # fmt: skip
    resumed = bool(cfg.get("resume")) and trainer.is_global_zero
    if resumed:
        set_aside_logs(run_dirs[0])
    try:
        fit_seconds = fit(trainer, model, data, checkpoints, resume_from(cfg))
    finally:
        if resumed:
            join_logs(run_dirs[0])
    checkpoints.save(trainer, model)
    if not trainer.is_global_zero:
        return [{"status": "ok"}]
    diverged = model.diverged.by_run()
    results = []
    for g, (run_cfg, run_dir, run_data, run_model) in enumerate(
        zip(cfgs, run_dirs, runs, model.split_runs(), strict=True)
    ):
        if g in diverged:
            results.append(diverged_record(diverged[g], checkpoints.run(g)))
            continue
        metrics: dict[str, Any] = {"status": "ok", "fit_seconds": fit_seconds}
        metrics |= score(run_model.to(model.device), run_data, run_dir, run_cfg.seed,
                         bool(run_cfg.plots), run_cfg.get("interval"))  # fmt: skip
        metrics["epochs"] = trainer.current_epoch
        metrics["steps"] = optimiser_updates(trainer)
        metrics["n_train"] = run_data.n_train
        results.append(metrics)
    return results


def len_epoch(data: RegressionDataModule) -> int:
    """Optimiser steps per epoch."""
    return -(-data.n_train // data.batch_size)
