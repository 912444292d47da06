"""One table for a multirun: ``summary.csv``, ``summary_by_setting.csv``, ``summary.md`` and
``summary.png`` in the sweep folder.

Each job folder (``<sweep>/<job number>``) holds ``metrics.json`` (with ``status``) and Hydra's
``.hydra/overrides.yaml``. A *swept* key is an override whose value differs between jobs; ``seed``
is the replicate axis, every other swept key defines the *setting*. Per setting the metrics of the
jobs with ``status: ok`` are reduced to mean ± standard error (see :func:`mean_se`).

:class:`~bnnlv.runs.sweep_callback.SummaryCallback` writes the summary when a multirun ends and
makes the command exit 1 if any job failed;
``bnnlv summarize <sweep dir>`` rebuilds the same files from the folders alone, with the metric,
table and plots that the sweep's command configured (its ``multirun.yaml``:
:func:`recorded_summary`).
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from omegaconf import OmegaConf

from bnnlv.report.sweep_plot import plot_sweep
from bnnlv.runs.results import METRICS_FILE, read_metrics, write_csv, write_text

REPLICATE_KEY = "seed"
# plotted by default: the validation NLL (hparams_search=optuna's objective) and the test NLL
PLOTTED_METRICS = ("val_nll", "test_nll")
# Shown in summary.md when present; summary_by_setting.csv reduces every numeric metric.
TABLE_METRICS = ("val_nll", "test_nll", "test_rmse", "test_crps", "test_miscal_area")
OVERRIDES_FILE = Path(".hydra") / "overrides.yaml"
HOOK_PACKAGE = "bnnlv."  # where the summary functions a sweep names must come from
FIXED_COLUMNS = ("job", "status", "error")
# Hydra's record of a multirun's config, in the sweep folder; the summary callback's target there
MULTIRUN_FILE = "multirun.yaml"
SUMMARY_TARGET = "bnnlv.runs.sweep_callback.SummaryCallback"


@dataclass(frozen=True)
class Summary:
    jobs: pd.DataFrame  # one row per job: job, status, error, overrides…, metrics…
    settings: pd.DataFrame  # one row per setting: swept keys, n_jobs, n_ok, <m>_mean, <m>_se
    swept: list[str]  # override keys whose value differs between jobs
    fixed: dict[str, str]  # overrides shared by every job

    @property
    def n_failed(self) -> int:
        return int((self.jobs["status"] != "ok").sum()) if len(self.jobs) else 0


def mean_se(values: Sequence[float]) -> tuple[float, float]:
    """Mean and standard error of the mean of n replicates.

    m = (1/n) Σ v_i,  se = s / √n with s² = Σ (v_i − m)² / (n − 1) (the unbiased sample variance).
    One replicate has no spread estimate: se = NaN. No replicates: (NaN, NaN).
    """
    v = np.asarray(values, dtype=np.float64)
    if v.ndim != 1:
        raise ValueError(f"mean_se needs a 1-D sequence, got shape {v.shape}")
    if v.size == 0:
        return math.nan, math.nan
    if v.size == 1:
        return float(v[0]), math.nan
    return float(v.mean()), float(v.std(ddof=1) / math.sqrt(v.size))


def _job_number(path: Path) -> tuple[int, str]:
    return (int(path.name), "") if path.name.isdigit() else (sys.maxsize, path.name)


def _read_overrides(job_dir: Path) -> dict[str, str]:
    path = job_dir / OVERRIDES_FILE
    if not path.is_file():
        return {}
    overrides: dict[str, str] = {}
    for item in OmegaConf.to_container(OmegaConf.load(path)) or []:
        key, _, value = str(item).partition("=")
        overrides[key.lstrip("+~")] = value
    return overrides


def read_jobs(sweep_dir: Path) -> tuple[pd.DataFrame, list[str]]:
    """One row per job folder (a sub-folder with metrics.json or Hydra's overrides), in job
    order, and the override keys in first-seen order. A job without metrics.json is ``missing``."""
    rows: list[dict[str, Any]] = []
    keys: list[str] = []
    folders = [p for p in Path(sweep_dir).iterdir() if p.is_dir()]
    for job_dir in sorted(folders, key=_job_number):
        has_metrics = (job_dir / METRICS_FILE).is_file()
        if not has_metrics and not (job_dir / OVERRIDES_FILE).is_file():
            continue
        overrides = _read_overrides(job_dir)
        keys += [k for k in overrides if k not in keys]
        metrics = read_metrics(job_dir) if has_metrics else {"status": "missing"}
        row: dict[str, Any] = {"job": job_dir.name, "status": metrics.pop("status", "unknown"),
                               "error": metrics.pop("error", "")}  # fmt: skip
        rows.append(row | overrides | {k: v for k, v in metrics.items() if k not in overrides})
    return pd.DataFrame(rows, columns=None if rows else list(FIXED_COLUMNS)), keys


def _metric_columns(jobs: pd.DataFrame, keys: list[str]) -> list[str]:
    skip = set(FIXED_COLUMNS) | set(keys)
    return [c for c in jobs.columns if c not in skip and pd.api.types.is_numeric_dtype(jobs[c])]


def aggregate(jobs: pd.DataFrame, setting_keys: list[str], metrics: list[str]) -> pd.DataFrame:
    """Per setting: n_jobs, n_ok and ``<m>_mean`` / ``<m>_se`` over its ok jobs (mean_se)."""
    groups = jobs.groupby(setting_keys, sort=False, dropna=False) if setting_keys else [((), jobs)]
    rows = []
    for values, group in groups:
        values = values if isinstance(values, tuple) else (values,)
        ok = group[group["status"] == "ok"]
        row: dict[str, Any] = dict(zip(setting_keys, values, strict=True))
        row |= {"n_jobs": len(group), "n_ok": len(ok)}
        for metric in metrics:
            row[f"{metric}_mean"], row[f"{metric}_se"] = mean_se(ok[metric].dropna().tolist())
        rows.append(row)
    return pd.DataFrame(rows)


# A command's own figure of a sweep: (summary, setting keys, sweep folder) → the file it wrote
# there (linked from summary.md), or None when it had nothing to draw.
SweepPlot = Callable[[Summary, list[str], Path], str | None]
# A command's own section of summary.md: (summary, setting keys, sweep folder) → markdown lines,
# after writing whatever files they link to there.
SweepSection = Callable[[Summary, list[str], Path], list[str]]


def summarize(
    sweep_dir: Path,
    metric: str | None = None,
    table_metrics: Sequence[str] = TABLE_METRICS,
    plots: Sequence[SweepPlot] = (),
    sections: Sequence[SweepSection] = (),
) -> Summary:
    """Read every job of ``sweep_dir`` and write summary.csv, summary_by_setting.csv,
    summary.md (``table_metrics`` in its tables, then each of ``sections``) and, when a metric is
    available, summary.png (``metric``, or by default those of :data:`PLOTTED_METRICS` the jobs
    have) and each of ``plots`` there."""
    sweep_dir = Path(sweep_dir)
    if not sweep_dir.is_dir():
        raise ValueError(f"sweep folder {str(sweep_dir)!r} does not exist")
    jobs, keys = read_jobs(sweep_dir)
    if jobs.empty:
        raise ValueError(
            f"{sweep_dir}: no job folders (none has {METRICS_FILE} or {OVERRIDES_FILE})"
        )
    swept = [k for k in keys if jobs[k].astype(str).nunique(dropna=False) > 1]
    fixed = {k: str(jobs[k].iloc[0]) for k in keys if k not in swept}
    setting_keys = [k for k in swept if k != REPLICATE_KEY]
    metrics = _metric_columns(jobs, keys)
    if metric is not None and metric not in metrics and (jobs["status"] == "ok").any():
        raise ValueError(f"metric {metric!r} is not in the jobs' metrics; choose from {metrics}")
    settings = aggregate(jobs, setting_keys, metrics)
    summary = Summary(jobs, settings, swept, fixed)
    write_csv(sweep_dir / "summary.csv", jobs)
    write_csv(sweep_dir / "summary_by_setting.csv", settings)
    shown = [m for m in ([metric] if metric else PLOTTED_METRICS) if m in metrics]
    shown = [m for m in shown if settings[f"{m}_mean"].notna().any()]
    figures: list[str] = []
    if shown:
        plot_sweep(settings, setting_keys, shown, sweep_dir / "summary.png")
        figures.append("summary.png")
        figures += [name for plot in plots if (name := plot(summary, setting_keys, sweep_dir))]
    text = to_markdown(summary, sweep_dir, setting_keys, figures, table_metrics)
    for section in sections:
        text += "\n".join(["", *section(summary, setting_keys, sweep_dir)]) + "\n"
    write_text(sweep_dir / "summary.md", text)
    return summary


def summarize_by_name(
    sweep_dir: Path,
    metric: str | None = None,
    table_metrics: Sequence[str] | None = None,
    plots: Sequence[str] = (),
    sections: Sequence[str] = (),
) -> Summary:
    """:func:`summarize` with the command's plots and sections named by dotted path (functions
    of the bnnlv package only) and its table metrics by default :data:`TABLE_METRICS`."""
    return summarize(
        sweep_dir, metric, table_metrics or TABLE_METRICS,
        [bnnlv_function(name) for name in plots], [bnnlv_function(name) for name in sections],
    )  # fmt: skip


def bnnlv_function(name: str) -> Any:
    """The function at dotted path ``name``, which must be in the bnnlv package."""
    from hydra.utils import get_method

    if not str(name).startswith(HOOK_PACKAGE):
        raise ValueError(f"summary function {name!r}: only functions of the bnnlv package")
    return get_method(str(name))


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return "—" if math.isnan(value) else f"{value:.4g}"
    return str(value).replace("|", "\\|").replace("\n", " ")


def _table(header: list[str], rows: list[list[Any]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return lines + ["| " + " | ".join(_cell(v) for v in row) + " |" for row in rows]


def to_markdown(
    summary: Summary,
    sweep_dir: Path,
    setting_keys: list[str],
    figures: Sequence[str],
    table_metrics: Sequence[str] = TABLE_METRICS,
) -> str:
    jobs, settings = summary.jobs, summary.settings
    shown = [m for m in table_metrics if f"{m}_mean" in settings.columns]
    n_ok = len(jobs) - summary.n_failed
    lines = [
        f"# Sweep summary: {sweep_dir}",
        "",
        f"{len(jobs)} jobs: {n_ok} ok, {summary.n_failed} not ok.",
    ]
    if summary.fixed:
        lines.append(
            "Shared overrides: " + " ".join(f"`{k}={v}`" for k, v in summary.fixed.items())
        )
    spread = "mean ± standard error over seeds" if (settings["n_ok"] > 1).any() else "one job each"
    lines += ["", f"## By setting ({spread}, ok jobs only)", ""]
    rows = []
    for _, row in settings.iterrows():
        cells = [row[k] for k in setting_keys] + [f"{int(row['n_ok'])}/{int(row['n_jobs'])}"]
        for m in shown:
            mean, se = row[f"{m}_mean"], row[f"{m}_se"]
            cells.append("—" if math.isnan(mean) else
                         f"{mean:.4g}" + ("" if math.isnan(se) else f" ± {se:.2g}"))  # fmt: skip
        rows.append(cells)
    lines += _table([*setting_keys, "ok/jobs", *shown], rows)
    lines += ["", "## Jobs", ""]
    job_metrics = [m for m in table_metrics if m in jobs.columns]
    columns = ["job", "status", *summary.swept, *job_metrics, "error"]
    table = jobs.reindex(columns=columns).astype(object)
    lines += _table(columns, table.where(table.notna(), "").values.tolist())
    lines += [f"\n![{Path(name).stem} of the sweep]({name})" for name in figures]
    return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class RecordedSummary:
    """What a sweep's command asked its summary for: the main metric, summary.md's table, plots."""

    metric: str | None
    table_metrics: Sequence[str]
    plots: list[SweepPlot]
    sections: Sequence[SweepSection] = ()


def recorded_summary(sweep_dir: Path) -> RecordedSummary:
    """``hydra.callbacks.summary`` of the ``multirun.yaml`` Hydra wrote into ``sweep_dir``
    (``bnnlv policy`` names its metric, table and risk–return plot there, ``bnnlv active`` its
    learning-curve section; functions of the bnnlv package only); train's defaults when the
    record has none."""
    path = Path(sweep_dir) / MULTIRUN_FILE
    recorded = OmegaConf.load(path) if path.is_file() else OmegaConf.create()
    node = OmegaConf.select(recorded, "hydra.callbacks.summary", default=None)
    if node is None or node.get("_target_") != SUMMARY_TARGET:
        return RecordedSummary(None, list(TABLE_METRICS), [])
    table = node.get("table_metrics") or TABLE_METRICS
    plots = [bnnlv_function(name) for name in node.get("plots") or ()]
    sections = [bnnlv_function(name) for name in node.get("sections") or ()]
    return RecordedSummary(node.get("metric"), list(table), plots, sections)


def summarize_main() -> None:
    """``bnnlv summarize SWEEP_DIR [--metric NAME]``: rebuild the summary of a sweep folder, with
    the metric, table and plots its command's own summary used (:func:`recorded_summary`)."""
    parser = argparse.ArgumentParser(prog="bnnlv summarize", description=summarize_main.__doc__)
    parser.add_argument("sweep_dir", type=Path)
    parser.add_argument("--metric", default=None,
                        help="metric to plot (default: the sweep's command's own: "
                        "true_reward for policy, val_nll and test_nll for train)")  # fmt: skip
    args = parser.parse_args(sys.argv[1:])
    try:
        recorded = recorded_summary(args.sweep_dir)
        summary = summarize(args.sweep_dir, args.metric or recorded.metric,
                            recorded.table_metrics, recorded.plots, recorded.sections)  # fmt: skip
    except ValueError as error:
        print(f"bnnlv: error: {error}", file=sys.stderr)
        raise SystemExit(1) from None
    n_ok = len(summary.jobs) - summary.n_failed
    print(f"bnnlv: {n_ok} ok, {summary.n_failed} not ok → {args.sweep_dir / 'summary.md'}")
