"""Why a run stopped, in one line: failures and interrupts as the user should read them.

Hydra wraps constructor errors (``InstantiationException``) and OmegaConf wraps key errors; the
user needs neither wrapper, only the innermost reason with the key, the value and, where there is
a fixed set, the allowed values. :func:`describe` produces that line for the CLI and for
``metrics.json``; an interrupt (:mod:`bnnlv.runs.interrupts`) reads ``interrupted by SIGINT``.
"""

from __future__ import annotations

import difflib
import functools
import pickle
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from hydra.core.hydra_config import HydraConfig
from hydra.errors import (
    ConfigCompositionException,
    InstantiationException,
    MissingConfigException,
    OverrideParseException,
)
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import InterpolationResolutionError, OmegaConfBaseException

from bnnlv.runs.folders import release_if_unused
from bnnlv.runs.interrupts import as_run_interrupted, interrupts_surfaced

T = TypeVar("T")

# Run folders of the sweep jobs that failed in this process (a sweep carries on past them);
# the CLI reports them and exits 1 when the sweep ends.
FAILED_JOBS: list[Path] = []


def reported(task: Callable[[DictConfig], T]) -> Callable[[DictConfig], T]:
    """A Hydra task whose failure is one ``bnnlv: error:`` line on stderr and exit status 1
    (an interrupt: one line and 128 + signal), instead of Hydra's report and a traceback. Its
    output folder, if the failure left nothing in it, is removed (:func:`release_if_unused`)."""

    @functools.wraps(task)
    def run(cfg: DictConfig) -> T:
        try:
            with interrupts_surfaced():
                return task(cfg)
        except KeyboardInterrupt as stop:
            print(f"bnnlv: {describe(stop)}", file=sys.stderr)
            release_if_unused(Path(HydraConfig.get().runtime.output_dir))
            raise SystemExit(as_run_interrupted(stop).exit_code) from None
        except Exception as error:
            print(f"bnnlv: error: {describe(error)}", file=sys.stderr)
            release_if_unused(Path(HydraConfig.get().runtime.output_dir))
            raise SystemExit(1) from None

    return run


def describe(error: BaseException) -> str:
    """One line saying what went wrong, without the wrappers of Hydra and OmegaConf."""
    if isinstance(error, KeyboardInterrupt):
        return str(as_run_interrupted(error))
    if isinstance(error, MissingConfigException) and error.missing_cfg_file:
        return _unknown_option(error)
    if isinstance(error, ConfigCompositionException) and isinstance(
        error.__cause__, OmegaConfBaseException
    ):
        return _unknown_key(error, error.__cause__)
    if isinstance(error, ConfigCompositionException):
        return _composition(error)
    if isinstance(error, OverrideParseException):
        return f"cannot parse the override: {_first_line(error)}"
    if isinstance(error, InstantiationException) and error.__cause__ is not None:
        inner = describe(error.__cause__)
        match = re.search(r"^full_key: (\S+)$", str(error), flags=re.MULTILINE)
        key = match.group(1) if match else ""
        return inner if not key or inner.startswith(key) else f"{key}: {inner}"
    if isinstance(error, InterpolationResolutionError) and root_cause(error) is not error:
        return describe(root_cause(error))
    if isinstance(error, pickle.UnpicklingError):
        found = re.search(r"GLOBAL (\S+)", str(error))
        return (
            "refused to unpickle a file that holds objects other than tensors and plain data"
            + (f" ({found.group(1)})" if found else "")
            + "; bnnlv loads checkpoints with weights_only=True only"
        )
    if isinstance(error, OSError) and error.filename is not None:
        return f"{error.strerror or type(error).__name__}: {error.filename}"
    return _first_line(error)


def root_cause(error: BaseException) -> BaseException:
    """The error inside Hydra's instantiation and OmegaConf's resolver wrappers.

    OmegaConf drops ``__cause__`` (unless OC_CAUSE=1) but keeps the chain in ``__context__``.
    """
    inner: BaseException | None = error
    while isinstance(inner, (InstantiationException, InterpolationResolutionError)):
        inner = inner.__cause__ or inner.__context__
    return inner if inner is not None else error


def _first_line(error: BaseException) -> str:
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return lines[0] if lines else type(error).__name__


def _unknown_option(error: MissingConfigException) -> str:
    """``model=foo``: Hydra lists the options of the group from the config search path."""
    group, _, option = (error.missing_cfg_file or "").rpartition("/")
    if not group:
        return _first_line(error)
    options = ", ".join(error.options or []) or "(none)"
    return f"{group}={option}: no such option in configs/{group}/; choose from {options}"


def _unknown_key(error: ConfigCompositionException, cause: OmegaConfBaseException) -> str:
    """``max_epochs=5`` or ``model.fooo=1``: name the key, suggest the closest keys of the whole
    config (``trainer.max_epochs``), else list the keys that do exist there."""
    key = getattr(cause, "full_key", None)
    override = re.search(r"use \+(\S+)", str(error))
    if not key:
        return _first_line(error)
    parent = getattr(cause, "parent_node", None)
    where = key.rpartition(".")[0] or "the root config"
    text = f"unknown key {key}" + (f" (in {override.group(1)})" if override else "")
    if not isinstance(parent, DictConfig):
        return text
    root = OmegaConf.to_container(parent._get_root(), resolve=False)
    close = closest_keys(key, dotted_keys(root))
    if close:
        return f"{text}; did you mean {' or '.join(close)}?"
    known = sorted(k for k in parent if isinstance(k, str) and k != "hydra" and k[0] != "_")
    return f"{text}; {where} has keys: {', '.join(known)}"


def dotted_keys(node: Any, prefix: str = "") -> list[str]:
    """Every key of a plain config (``OmegaConf.to_container``), nested ones dotted
    (``trainer.max_epochs``); Hydra's own and the ``_target_`` keys left out."""
    keys: list[str] = []
    if isinstance(node, dict):
        for name, value in node.items():
            if not isinstance(name, str) or name.startswith("_") or f"{prefix}{name}" == "hydra":
                continue
            keys += [f"{prefix}{name}", *dotted_keys(value, f"{prefix}{name}.")]
    return keys


def closest_keys(key: str, keys: list[str], n: int = 3) -> list[str]:
    """The keys whose last part is closest to the typed key's last part (difflib, at least 0.75
    alike), best first: ``max_epochs`` → ``trainer.max_epochs``, ``model.latent_dims`` →
    ``model.latent_dim``. Whole keys are not compared: a shared ``model.`` would make any two
    model keys look alike."""
    last = key.rpartition(".")[2]
    scored = [(difflib.SequenceMatcher(None, last, k.rpartition(".")[2]).ratio(), k) for k in keys]
    return [k for ratio, k in sorted(scored, key=lambda item: -item[0]) if ratio >= 0.75][:n]


def _composition(error: ConfigCompositionException) -> str:
    """Hydra's other composition errors, its own hints kept: ``alpha=0.5,1`` without ``-m``
    (use a list, quote it, or add ``--multirun``), a group the command does not take."""
    text = str(error)
    group = re.match(r"Could not override '([^']+)'\. No match in the defaults list", text)
    if group:
        return (
            f"{group.group(1)}: this command takes no {group.group(1)} option "
            "(its --help lists what it takes)"
        )
    lines = [re.sub(r"^\d+\.\s*", "", line.strip()) for line in text.splitlines() if line.strip()]
    return "; ".join(lines) if lines else type(error).__name__
