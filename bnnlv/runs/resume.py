"""``bnnlv train resume=DIR``: continue an interrupted (or finished) run in its own folder.

The run's saved ``config.yaml`` is the config (plain ``key=value`` overrides on the command line
apply on top, e.g. ``trainer.max_epochs=4000`` to train longer); Lightning restores the model and
optimiser states from ``checkpoints/last.ckpt`` (``ckpt_path``, loaded with ``weights_only=True``)
and :class:`~bnnlv.runs.state.RunState` the exact training position (epoch, the minibatches of the
epoch already trained, random streams, running sums), so on the CPU a resumed run ends with the
same ``metrics.json`` and ``logs/metrics.csv`` as one that was never stopped, wherever it stopped;
only ``fit_seconds``, which counts the resumed part, differs. Lightning's CSV logger starts
``logs/metrics.csv`` afresh, so the rows logged before the stop are set aside and joined back when
the resumed fit ends or stops (the rows of an epoch logged again replace the earlier ones).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from pathlib import Path

from omegaconf import DictConfig, OmegaConf, open_dict

from bnnlv.runs.config import read_saved_config
from bnnlv.runs.folders import CONFIG_FILE, checkpoint_path
from bnnlv.runs.results import write_text

# Config groups: choosing another option would not describe the run being resumed.
GROUPS = ("model", "data", "prior", "trainer", "experiment", "hparams_search", "launcher")
LOG_FILE = Path("logs") / "metrics.csv"
HPARAMS_FILE = Path("logs") / "hparams.yaml"
# outside logs/ (see set_aside_logs); joined back when the resumed fit ends or stops
LOG_BEFORE = Path("metrics_before_resume.csv")


def resume_config(
    resume: str,
    overrides: Sequence[str],
    groups: Sequence[str] = GROUPS,
    need_checkpoint: bool = True,
) -> DictConfig:
    """The saved config of run folder ``resume`` with the command line's ``key=value``
    overrides applied (choices of ``groups``, ``+``/``~`` edits and unknown keys are rejected)
    and ``resume`` set. ``need_checkpoint``: the folder must hold ``checkpoints/last.ckpt``."""
    if need_checkpoint:
        checkpoint_path(Path(resume), "resume")
    saved = read_saved_config(Path(resume) / CONFIG_FILE)
    extra = []
    for item in overrides:
        key = item.partition("=")[0]
        if key == "resume":
            continue
        if key.startswith(("+", "~", "hydra")) or key in groups:
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
    return checkpoint_path(Path(cfg.resume), "resume") if cfg.get("resume") else None


def join_logs(run_dir: Path) -> None:
    """Put the rows set aside by :func:`set_aside_logs` back in front of ``logs/metrics.csv``
    (rows of the epochs the resumed fit logged again are taken from the new file).

    Rows are joined as text, in the CSV dialect Lightning writes, so that the joined file is
    byte for byte the one an uninterrupted run writes (the columns are the sorted union).
    """
    before_path, log_path = run_dir / LOG_BEFORE, run_dir / LOG_FILE
    if not before_path.is_file():
        return
    columns, rows = _read_log(before_path)
    if log_path.is_file():
        after_columns, after = _read_log(log_path)
        resumed_epochs = [float(row["epoch"]) for row in after if row.get("epoch")]
        if resumed_epochs:
            first = min(resumed_epochs)
            rows = [row for row in rows if not row.get("epoch") or float(row["epoch"]) < first]
        columns = sorted(set(columns) | set(after_columns))
        rows += after
    buffer = io.StringIO(newline="")
    writer = csv.DictWriter(buffer, fieldnames=columns)
    writer.writeheader()
    writer.writerows(rows)
    write_text(log_path, buffer.getvalue())
    before_path.unlink()


def _read_log(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    with path.open(newline="") as handle:
        reader = csv.DictReader(handle)
        rows = list(reader)
        return list(reader.fieldnames or []), rows


def set_aside_logs(run_dir: Path) -> None:
    """Move the run's ``logs/metrics.csv`` (joined with any earlier part) out of the logger's
    way before a resumed fit, and its ``hparams.yaml`` (which the fit writes again): Lightning
    warns that it will delete the files of a ``logs/`` that is not empty."""
    join_logs(run_dir)
    if (run_dir / LOG_FILE).is_file():
        (run_dir / LOG_FILE).replace(run_dir / LOG_BEFORE)
    (run_dir / HPARAMS_FILE).unlink(missing_ok=True)
