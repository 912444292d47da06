"""One job of a Hydra task (``bnnlv train``, ``bnnlv policy``): its stop reported in one line, its
folder kept or given back.

A single run that stops before its first update (a bad value, a missing file, Ctrl-C during the
imports) leaves no folder: its folder would hold nothing but the record of why it stopped, which
the one line on stderr already says. A run that trained keeps its folder with ``metrics.json``
saying ``failed`` or ``interrupted`` (and a checkpoint to resume from), as does a resumed run's
folder and every job of a sweep, whose summary counts the failures. Exit status: 1 for a failed
run, 128 + signal for an interrupt; in a sweep (``-m``) a failed job is reported and the others
carry on (the CLI exits 1 at the end).
"""

from __future__ import annotations

import gc
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from bnnlv.runs.errors import FAILED_JOBS, describe
from bnnlv.runs.folders import release_if_unused
from bnnlv.runs.interrupts import as_run_interrupted, interrupts_surfaced
from bnnlv.runs.results import METRICS_FILE, read_metrics, write_json

T = TypeVar("T")
# What a run writes into its folder before its first update (beside Hydra's record).
RUN_RECORD = (METRICS_FILE, "config.yaml", "logs")


def run_job(run_dir: Path, run: Callable[[], T], resumed: bool) -> T | None:
    """``run()`` as one job of a Hydra task writing into ``run_dir`` (a ``resumed`` run's own).

    An interrupt: one line and exit 128 + signal. A failure: one line and exit 1, or, in a sweep,
    the job joins FAILED_JOBS and None is returned (the sweep carries on). Either way
    ``metrics.json`` says why, unless the folder was given back (see the module docstring).
    """
    sweep = HydraConfig.get().mode == RunMode.MULTIRUN
    try:
        with interrupts_surfaced():
            return run()
    except KeyboardInterrupt as stop:
        kept = _record_stop(stop, run_dir, keep=sweep or resumed)
        where = f"; status in {run_dir / METRICS_FILE}" if kept else "; no run folder was kept"
        print(f"bnnlv: {describe(stop)}{where}", file=sys.stderr)
        raise SystemExit(as_run_interrupted(stop).exit_code) from None
    except Exception as error:
        kept = _record_stop(error, run_dir, keep=sweep or resumed)
        where = f" (run folder: {run_dir})" if kept else ""
        print(f"bnnlv: error: {describe(error)}{where}", file=sys.stderr)
        if sweep:
            FAILED_JOBS.append(run_dir)
            return None
        raise SystemExit(1) from None


def _record_stop(stop: BaseException, run_dir: Path, keep: bool) -> bool:
    """Record why the run stopped in its ``metrics.json`` (the run has, once it began) and keep
    its folder if ``keep`` or the run made an update; else give it back. Whether it was kept."""
    record = read_metrics(run_dir)
    if record.get("status") in (None, "running"):
        status = "interrupted" if isinstance(stop, KeyboardInterrupt) else "failed"
        record = {"status": status, "error": describe(stop)}
        write_json(run_dir / METRICS_FILE, record)
    if keep or record.get("step"):
        return True
    return not release_if_unused(run_dir, RUN_RECORD)


def freeze_imports() -> None:
    """Leave what has been imported so far out of the cyclic garbage collector (gc.freeze).

    torch, Lightning and what they import are ≈ 450,000 objects that live as long as the process,
    and each full collection walks them all, the interpreter's last one at exit included
    (measured: importing Lightning and exiting takes 1.0 s longer than importing it alone).
    Freezing them after the imports took ≈ 1 s off the default ``bnnlv train`` (20.2 → 19.1 s).
    Objects made later are collected as usual.
    """
    gc.freeze()


def job_config(
    cfg: DictConfig, groups: Sequence[str] | None = None, need_checkpoint: bool = True
) -> DictConfig:
    """The config a job runs with: for ``resume=DIR`` that run's saved config with the command
    line's overrides (:func:`bnnlv.runs.resume.resume_config`; ``groups``: the command's config
    groups, default train's), and in a sweep checked to need no re-launch."""
    from bnnlv.runs.resume import GROUPS, resume_config

    job_cfg = cfg
    if cfg.get("resume"):
        overrides = HydraConfig.get().overrides.task
        job_cfg = resume_config(cfg.resume, overrides, groups or GROUPS, need_checkpoint)
    if HydraConfig.get().mode == RunMode.MULTIRUN:
        check_no_relaunch(job_cfg)
    return job_cfg


def check_no_relaunch(cfg: DictConfig) -> None:
    """A sweep job must not ask Lightning to re-launch the command (local multi-device DDP):
    the re-launched processes would re-run the whole sweep. Under SLURM (srun) the cluster
    starts every process, so launcher=slurm with several tasks is fine."""
    strategy, devices = str(cfg.trainer.get("strategy", "")), cfg.trainer.get("devices", 1)
    if strategy.startswith("ddp") and devices not in (1, "1") and "SLURM_NTASKS" not in os.environ:
        raise ValueError(
            f"trainer.strategy={strategy} with trainer.devices={devices} cannot run inside a "
            "sweep (-m): Lightning re-launches the command. Sweep with one device per job, or "
            "run each multi-device job on its own (or under launcher=slurm)"
        )
