"""The sweep summary's part for ``bnnlv active`` (a hook of :func:`bnnlv.runs.sweep.summarize`).

For a sweep such as ``bnnlv active -m active.acquisition=epistemic,total,random seed=0,1,2,3,4``
it writes ``learning_curves.png`` (test NLL against labelled points, mean ± standard error over
the seeds, one line per setting) and ``areas.csv``, and returns the table of ``summary.md``: the
area under each setting's test-NLL curve and, where the sweep has ``active.acquisition=random``,
the paired difference of each setting's area from random's (same seed, same other settings).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bnnlv.active.curve import paired_difference, separation
from bnnlv.active.loop import CSV_FILE
from bnnlv.active.plots import plot_curves
from bnnlv.runs.results import write_csv
from bnnlv.runs.sweep import REPLICATE_KEY, Summary, mean_se

ACQUISITION_KEY = "active.acquisition"
BASELINE = "random"
AREA = "test_nll_area"


def _mean_curve(sweep_dir: Path, jobs: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(n_labelled, mean, se) of test_nll per round over the jobs' active.csv (rounds that every
    job reached)."""
    curves = [pd.read_csv(sweep_dir / str(job) / CSV_FILE) for job in jobs["job"]]
    rounds = min(len(c) for c in curves)
    nll = np.stack([c["test_nll"].to_numpy()[:rounds] for c in curves])  # [jobs, rounds]
    stats = np.array([mean_se(nll[:, r].tolist()) for r in range(rounds)])  # [rounds, 2]
    return curves[0]["n_labelled"].to_numpy()[:rounds], stats[:, 0], np.nan_to_num(stats[:, 1])


def learning_curves(summary: Summary, keys: list[str], sweep_dir: Path) -> list[str]:
    """Write learning_curves.png and areas.csv; return the markdown section of summary.md (a
    :data:`bnnlv.runs.sweep.SweepSection`; ``keys``: the swept settings other than the seed)."""
    jobs = summary.jobs[summary.jobs["status"] == "ok"]
    jobs = jobs[[(sweep_dir / str(j) / CSV_FILE).is_file() for j in jobs["job"]]]
    if jobs.empty or AREA not in jobs:
        return ["## Learning curves", "", "No finished active-learning job."]
    keys = [k for k in keys if k in jobs]
    groups = list(jobs.groupby(keys, sort=False)) if keys else [((), jobs)]
    curves, rows = {}, []
    for values, group in groups:
        setting = dict(zip(keys, values if isinstance(values, tuple) else (values,), strict=True))
        curves[", ".join(f"{k}={v}" for k, v in setting.items()) or "all jobs"] = _mean_curve(
            sweep_dir, group
        )
        rows.append(setting | _area_row(group, _baseline(jobs, setting)))
    plot_curves(curves, "test NLL (nats, original units)",
                "Learning curves: mean ± standard error over seeds",
                sweep_dir / "learning_curves.png")  # fmt: skip
    table = pd.DataFrame(rows)
    write_csv(sweep_dir / "areas.csv", table)
    return _markdown(table, keys)


def _baseline(jobs: pd.DataFrame, setting: dict[str, Any]) -> pd.DataFrame | None:
    """The random-acquisition jobs with the same other settings; None for random itself or
    when the sweep has none."""
    if str(setting.get(ACQUISITION_KEY, BASELINE)) == BASELINE:
        return None
    match = jobs[ACQUISITION_KEY].astype(str) == BASELINE
    for key, value in setting.items():
        if key != ACQUISITION_KEY:
            match &= jobs[key] == value
    return jobs[match] if match.any() else None


def _by_seed(jobs: pd.DataFrame) -> pd.Series:
    """The jobs' areas indexed by their seed (one unnamed seed when the sweep sets none)."""
    seeds = jobs[REPLICATE_KEY].astype(str) if REPLICATE_KEY in jobs else ["default"] * len(jobs)
    return pd.Series(jobs[AREA].astype(float).to_numpy(), index=list(seeds))


def _area_row(group: pd.DataFrame, baseline: pd.DataFrame | None) -> dict[str, Any]:
    """Area mean ± se of one setting, and its difference from the baseline paired by seed."""
    mean, se = mean_se(group[AREA].astype(float).tolist())
    row: dict[str, Any] = {"n_jobs": len(group), "area_mean": mean, "area_se": se}
    if baseline is None:
        return row
    ours, theirs = _by_seed(group), _by_seed(baseline)
    common = sorted(set(ours.index) & set(theirs.index))
    diff, diff_se, n_pairs = paired_difference(ours[common].tolist(), theirs[common].tolist())
    return row | {"vs_random_mean": diff, "vs_random_se": diff_se, "vs_random_pairs": n_pairs,
                  "vs_random_in_se": separation(diff, diff_se)}  # fmt: skip


def _markdown(table: pd.DataFrame, keys: list[str]) -> list[str]:
    def cell(mean: float, se: float) -> str:
        if math.isnan(mean):
            return "—"
        return f"{mean:.4f}" + ("" if math.isnan(se) else f" ± {se:.4f}")

    paired = "vs_random_mean" in table
    header = [*keys, "jobs", "area under test NLL (mean ± s.e.)"]
    header += ["minus random's, paired (mean ± s.e.)", "in s.e."] if paired else []
    lines = [
        "## Learning curves",
        "",
        "Area under the test-NLL curve per labelled point (nats, original units; lower is "
        "better); paired differences by seed against `active.acquisition=random`.",
        "",
        "| " + " | ".join(header) + " |",
        "|" + "---|" * len(header),
    ]
    for _, row in table.iterrows():
        cells = [str(row[k]) for k in keys] + [str(int(row["n_jobs"]))]
        cells.append(cell(row["area_mean"], row["area_se"]))
        if paired:
            diff, se = row.get("vs_random_mean", math.nan), row.get("vs_random_se", math.nan)
            in_se = row.get("vs_random_in_se", math.nan)
            cells += [cell(diff, se), "—" if math.isnan(in_se) else f"{in_se:.1f}"]
        lines.append("| " + " | ".join(cells) + " |")
    return [*lines, "", "![learning curves](learning_curves.png)"]
