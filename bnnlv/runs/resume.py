"""``bnnlv train resume=DIR``: continue an interrupted (or finished) run in its own folder.

The run's saved ``config.yaml`` is the config (plain ``key=value`` overrides on the command line
apply on top, e.g. ``trainer.max_epochs=4000`` to train longer); Lightning restores the model,
optimiser states, epoch and step from ``checkpoints/last.ckpt`` (``ckpt_path``, loaded with
``weights_only=True``) and :class:`~bnnlv.runs.state.RunState` the random streams, so on the CPU a
resumed run ends with the same metrics as one that was never stopped; only ``fit_seconds``
differs (it counts the resumed part). Lightning's CSV logger starts ``logs/metrics.csv`` afresh,
so the rows logged before the stop are set aside and joined back after the fit.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pandas as pd
from omegaconf import DictConfig, OmegaConf, open_dict

from bnnlv.runs.config import read_saved_config
from bnnlv.runs.results import write_csv
from bnnlv.runs.saved import CONFIG_FILE, checkpoint_path

# Config groups: choosing another option would not describe the run being resumed.
GROUPS = ("model", "data", "prior", "trainer", "experiment", "hparams_search", "launcher")
LOG_FILE = Path("logs") / "metrics.csv"
LOG_BEFORE = Path("logs") / "metrics_before_resume.csv"


def resume_config(resume: str, overrides: Sequence[str]) -> DictConfig:
    """The saved config of run folder ``resume`` with the command line's ``key=value``
    overrides applied (group choices, ``+``/``~`` edits and unknown keys are rejected) and
    ``resume`` set."""
    checkpoint_path(Path(resume))
    saved = read_saved_config(Path(resume) / CONFIG_FILE)
    extra = []
    for item in overrides:
        key = item.partition("=")[0]
        if key == "resume":
            continue
        if key.startswith(("+", "~", "hydra")) or key in GROUPS:
            raise ValueError(
                f"{item!r} cannot be combined with resume=: a resumed run keeps its config; "
                "only key=value overrides of existing keys apply (e.g. trainer.max_epochs=…)"
            )
        extra.append(item)
    with open_dict(saved):
        saved.resume = str(resume)
    OmegaConf.set_struct(saved, True)
    merged = OmegaConf.merge(saved, OmegaConf.from_dotlist(extra))
    OmegaConf.set_struct(merged, False)
    assert isinstance(merged, DictConfig)
    return merged


def resume_from(cfg: DictConfig) -> Path | None:
    """The checkpoint a ``resume=DIR`` config continues from; None for a fresh run."""
    return checkpoint_path(Path(cfg.resume)) if cfg.get("resume") else None


def join_logs(run_dir: Path) -> None:
    """Put the rows set aside by :func:`set_aside_logs` back in front of ``logs/metrics.csv``
    (rows of the epochs the resumed fit logged again are taken from the new file)."""
    before_path, log_path = run_dir / LOG_BEFORE, run_dir / LOG_FILE
    if not before_path.is_file():
        return
    before = pd.read_csv(before_path)
    if log_path.is_file():
        after = pd.read_csv(log_path)
        if "epoch" in after and "epoch" in before and len(after):
            before = before[before["epoch"] < after["epoch"].min()]
        before = pd.concat([before, after], ignore_index=True)
    write_csv(log_path, before)
    before_path.unlink()


def set_aside_logs(run_dir: Path) -> None:
    """Move the run's ``logs/metrics.csv`` (joined with any earlier part) out of the logger's
    way before a resumed fit."""
    join_logs(run_dir)
    if (run_dir / LOG_FILE).is_file():
        (run_dir / LOG_FILE).replace(run_dir / LOG_BEFORE)
