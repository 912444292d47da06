"""Where a run's files go: the configs folder, the run folder's layout, and run folders that are
never shared (each new folder is claimed with an atomic ``mkdir``) and not left behind unused.

Every folder a command creates is named ``<date>_<time>`` to the second, ``2026-11-28_17-39-52``:
runs ``outputs/<name>/``, sweeps ``outputs/multirun/<name>/``, and ``<run>/evaluate/<name>/`` and
``<run>/predict/<name>/``. The names sort as the commands started, in ``ls`` and in a file browser,
and read at a glance. Hydra names folders by the clock, so two runs started in the same second (or
on two machines writing to one file system) would land in the same folder. The ``bnnlv.claim``
resolver used by ``hydra.run.dir`` / ``hydra.sweep.dir`` creates the folder itself with
``os.mkdir``, which fails if the name exists; on a clash it tries ``<name>-2``, ``<name>-3``, …
(which sort after ``<name>`` and before the next second). Hydra caches the resolved value per config
and copies that cache to sweep jobs and launcher workers, so each run claims exactly one folder.

A command that stops before producing anything gives its folder back (:func:`release_if_unused`),
so failed attempts leave no clutter beside the real runs.

This module imports only the standard library at import time (OmegaConf when the resolvers are
registered): the CLI uses it before anything heavy is imported.
"""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Iterable
from pathlib import Path

import bnnlv
from bnnlv.runs.results import METRICS_FILE

MAX_TRIES = 10_000
RESUMED_HYDRA_SUBDIR = ".hydra/resumed"
CONFIG_FILE = "config.yaml"
CHECKPOINT = Path("checkpoints") / "last.ckpt"
# folder → the parent folders claim_dir created for it, in this process
_CLAIMED: dict[Path, list[Path]] = {}


def config_dir() -> str:
    """The configs folder: inside the installed package, or the repo's top-level ``configs/``."""
    package = Path(bnnlv.__file__).resolve().parent
    for candidate in (package / "configs", package.parent / "configs"):
        if (candidate / "train.yaml").is_file():
            return str(candidate)
    raise FileNotFoundError(f"no configs/train.yaml next to {package}")


def claim_dir(prefix: str) -> str:
    """Create and return ``prefix`` or the first free ``prefix-k`` (k = 2, 3, …)."""
    if not str(prefix).strip():
        raise ValueError(f"run folder prefix must be a non-empty path, got {prefix!r}")
    base = Path(prefix)
    created = [p for p in _absolute(base).parents if not p.exists()]
    if created:  # (a file where the parent should be: os.mkdir says "Not a directory: …")
        base.parent.mkdir(parents=True, exist_ok=True)
    for k in range(1, MAX_TRIES + 1):
        candidate = base if k == 1 else base.with_name(f"{base.name}-{k}")
        try:
            os.mkdir(candidate)
        except FileExistsError:
            continue
        _CLAIMED[_absolute(candidate)] = created
        return str(candidate)
    raise RuntimeError(f"no free run folder after {MAX_TRIES} tries at {prefix}")


def release_if_unused(folder: Path, ours: Iterable[str] = ()) -> bool:
    """Remove ``folder`` if :func:`claim_dir` created it in this process and it holds nothing but
    Hydra's record of the command (``.hydra/`` and the job's ``*.log``) and the entries named in
    ``ours`` (a run's ``metrics.json`` saying why it stopped): what a command that stopped before
    writing a result leaves. The parent folders claimed with it go too while they are empty.
    Returns whether the folder was removed; a folder that was not claimed here (a resumed run's,
    one given by ``hydra.run.dir`` that existed) is never touched. This process's log handlers
    writing into the folder are closed first (one would create its file again when it writes)."""
    folder = _absolute(folder)
    if folder not in _CLAIMED or not folder.is_dir():
        return False
    for entry in folder.iterdir():
        hydra_record = entry.name == ".hydra" and entry.is_dir()
        if not (hydra_record or entry.name in ours or (entry.suffix == ".log" and entry.is_file())):
            return False
    _close_logs_in(folder)
    shutil.rmtree(folder)
    for parent in _CLAIMED.pop(folder):  # innermost first
        try:
            parent.rmdir()
        except OSError:  # not empty (or gone): it is someone's now
            break
    return True


def release_claimed() -> None:
    """:func:`release_if_unused` for every folder claimed in this process, the latest first (so
    that a parent created by an earlier claim is empty when its turn comes)."""
    for folder in reversed(list(_CLAIMED)):
        release_if_unused(folder)


def _close_logs_in(folder: Path) -> None:
    loggers = [logging.getLogger(), *map(logging.getLogger, logging.root.manager.loggerDict)]
    for logger in loggers:
        for handler in list(logger.handlers):
            if isinstance(handler, logging.FileHandler) and Path(
                handler.baseFilename
            ).is_relative_to(folder):
                handler.close()
                logger.removeHandler(handler)


def _absolute(path: Path) -> Path:
    """The absolute, normalised path, as Hydra gives ``hydra.runtime.output_dir``."""
    return Path(os.path.abspath(path))


def run_dir(resume: str | None, prefix: str) -> str:
    """The folder of a single run: the resumed run's own folder, or a newly claimed one."""
    if resume is not None and str(resume).strip():
        saved_run_folder(Path(resume), "resume")
        return str(resume)
    return claim_dir(prefix)


def saved_run_folder(folder: Path, key: str = "run_dir") -> Path:
    """``folder`` if it holds a run's ``config.yaml``; else a ValueError naming ``key`` and the
    folder that says what to do."""
    folder = Path(folder)
    if (folder / CONFIG_FILE).is_file():
        return folder
    if (folder / METRICS_FILE).is_file():  # a sweep's job that stopped while it was set up
        raise ValueError(
            f"{key}={folder}: the run stopped before it began (no {CONFIG_FILE}): start it "
            f"again; its command line is in {folder / '.hydra/overrides.yaml'}"
        )
    raise ValueError(f"{key}={folder}: not a bnnlv run folder (no {CONFIG_FILE})")


def checkpoint_path(run_dir: Path, key: str = "run_dir") -> Path:
    """``run_dir/checkpoints/last.ckpt``; ValueError naming ``key`` and the folder, and saying
    what to do, if the folder holds no saved run."""
    path = saved_run_folder(run_dir, key) / CHECKPOINT
    if not path.is_file():
        raise ValueError(
            f"{key}={run_dir}: no checkpoint at {CHECKPOINT} (the run stopped before its first "
            f"update): start it again; its command line is in {run_dir / '.hydra/overrides.yaml'}"
        )
    return path


def hydra_subdir(resume: str | None) -> str:
    """Where Hydra records the command: ``.hydra``, or a sub-folder when resuming, so the
    original run's record of its overrides (read by the sweep summary) is kept."""
    return RESUMED_HYDRA_SUBDIR if resume is not None and str(resume).strip() else ".hydra"


def register_resolvers() -> None:
    """Register ``${bnnlv.claim:prefix}``, ``${bnnlv.run_dir:resume,prefix}`` and
    ``${bnnlv.hydra_subdir:resume}`` (cached per config, like Hydra's ``now``)."""
    from omegaconf import OmegaConf

    for name, function in (
        ("bnnlv.claim", claim_dir),
        ("bnnlv.run_dir", run_dir),
        ("bnnlv.hydra_subdir", hydra_subdir),
    ):
        if not OmegaConf.has_resolver(name):
            OmegaConf.register_new_resolver(name, function, use_cache=True)
