"""Where a run's files go: the configs folder, and run folders that are never shared (each new
folder is claimed with an atomic ``mkdir``).

Hydra names folders by the clock, so two runs started in the same second (or microsecond, on two
machines writing to one file system) would land in the same folder. The ``bnnlv.claim``
resolver used by ``hydra.run.dir`` / ``hydra.sweep.dir`` creates the folder itself with
``os.mkdir``, which fails if the name exists; on a clash it tries ``<name>-2``, ``<name>-3``, …
Hydra caches the resolved value per config and copies that cache to sweep jobs and launcher
workers, so each run claims exactly one folder. A command that fails before writing anything
gives its folder back (:func:`release_if_unused`), so failed attempts leave no clutter.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from omegaconf import OmegaConf

import bnnlv

MAX_TRIES = 10_000
RESUMED_HYDRA_SUBDIR = ".hydra/resumed"
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


def release_if_unused(folder: Path) -> bool:
    """Remove ``folder`` if :func:`claim_dir` created it in this process and it holds nothing but
    Hydra's record of the command (``.hydra/`` and the job's ``*.log``): what a command that
    failed before writing a result leaves. The parent folders claimed with it go too while they
    are empty. Returns whether the folder was removed; a folder that was not claimed here (a
    resumed run's, one given by ``hydra.run.dir`` that existed) is never touched."""
    folder = _absolute(folder)
    if folder not in _CLAIMED or not folder.is_dir():
        return False
    for entry in folder.iterdir():
        hydra_record = entry.name == ".hydra" and entry.is_dir()
        if not (hydra_record or (entry.suffix == ".log" and entry.is_file())):
            return False
    shutil.rmtree(folder)
    for parent in _CLAIMED.pop(folder):  # innermost first
        try:
            parent.rmdir()
        except OSError:  # not empty (or gone): it is someone's now
            break
    return True


def _absolute(path: Path) -> Path:
    """The absolute, normalised path, as Hydra gives ``hydra.runtime.output_dir``."""
    return Path(os.path.abspath(path))


def run_dir(resume: str | None, prefix: str) -> str:
    """The folder of a single run: the resumed run's own folder, or a newly claimed one."""
    if resume is not None and str(resume).strip():
        if not (Path(resume) / "config.yaml").is_file():
            raise ValueError(f"resume={resume}: not a bnnlv run folder (no config.yaml)")
        return str(resume)
    return claim_dir(prefix)


def hydra_subdir(resume: str | None) -> str:
    """Where Hydra records the command: ``.hydra``, or a sub-folder when resuming, so the
    original run's record of its overrides (read by the sweep summary) is kept."""
    return RESUMED_HYDRA_SUBDIR if resume is not None and str(resume).strip() else ".hydra"


def register_resolvers() -> None:
    """Register ``${bnnlv.claim:prefix}``, ``${bnnlv.run_dir:resume,prefix}`` and
    ``${bnnlv.hydra_subdir:resume}`` (cached per config, like Hydra's ``now``)."""
    for name, function in (
        ("bnnlv.claim", claim_dir),
        ("bnnlv.run_dir", run_dir),
        ("bnnlv.hydra_subdir", hydra_subdir),
    ):
        if not OmegaConf.has_resolver(name):
            OmegaConf.register_new_resolver(name, function, use_cache=True)
