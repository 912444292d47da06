"""Benchmark plumbing shared by ``scripts/bench_*.py``: run composed configs, summarise, tabulate.

Each run is an ordinary ``bnnlv train`` run (or another command's: ``Job.config`` and
``Job.runner``), with the same config composition and results folder, executed in-process or,
with ``jobs > 1``, in worker processes (one torch thread each). The
summary statistic is the one the UCI literature reports: mean ± standard error over runs with
SE = std(ddof = 0) / √n, as in the MC-dropout reference code.
"""

from __future__ import annotations

import argparse
import math
import os
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import numpy as np
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig, OmegaConf

from bnnlv.runs.folders import config_dir
from bnnlv.runs.results import read_metrics, write_text

BENCH_DIR = Path("outputs") / "benchmarks"
# Every benchmark run: quiet, no figures, one torch thread (runs go in parallel instead).
QUIET = ("progress_bar=false", "plots=false", "threads=1")


@dataclass(frozen=True)
class Job:
    """One run: a label for its folder and table row, and its Hydra overrides; the root config
    it composes and the dotted name of the function (cfg, run_dir) → metrics that runs it."""

    label: str
    overrides: tuple[str, ...]
    config: str = "train"
    runner: str = "bnnlv.runs.train.train"


def parser(description: str) -> argparse.ArgumentParser:
    """The options every benchmark script shares; its own are added by the caller."""
    cli = argparse.ArgumentParser(description=description)
    cli.add_argument(
        "--epochs",
        type=int,
        default=None,
        help="override the script's trainer.max_epochs for every run",
    )
    cli.add_argument(
        "--jobs", type=int, default=1, help="runs in parallel (worker processes, one thread each)"
    )
    cli.add_argument(
        "--out",
        type=Path,
        default=BENCH_DIR,
        help="folder for <name>.md and the run folders (default %(default)s)",
    )
    cli.add_argument(
        "overrides", nargs="*", help="extra Hydra overrides for every run, e.g. model.lr=3e-3"
    )
    return cli


def int_list(text: str) -> list[int]:
    """'0,1,2' or '0-4' (inclusive) → [0, 1, 2]; for --seeds and --splits."""
    values: list[int] = []
    for part in text.split(","):
        lo, sep, hi = part.strip().partition("-")
        values += list(range(int(lo), int(hi) + 1)) if sep else [int(lo)]
    return values


def compose_config(overrides: Sequence[str], config: str = "train") -> DictConfig:
    """The root ``config`` with overrides, exactly as ``bnnlv <config>`` composes it."""
    with initialize_config_dir(config_dir=config_dir(), version_base="1.3"):
        return compose(config_name=config, overrides=list(overrides))


def run_job(job: Job, root: Path) -> dict[str, Any]:
    """Run one job into ``root/<label>`` and return its metrics (status failed on error)."""
    from hydra.utils import get_method

    run_dir = root / job.label
    try:
        return get_method(job.runner)(compose_config([*QUIET, *job.overrides], job.config), run_dir)
    except Exception as error:
        return {"status": "failed", "error": f"{type(error).__name__}: {error}"}


def bnnlv_train(overrides: list[str], run_dir: Path) -> dict[str, Any]:
    """Run ``bnnlv train`` as a command: its wall seconds, fit seconds, steps and test NLL."""
    program = Path(sys.executable).with_name("bnnlv")
    command = [str(program)] if program.is_file() else [sys.executable, "-m", "bnnlv.runs.cli"]
    command += ["train", *overrides, f"hydra.run.dir={run_dir}"]
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{done.stderr[-3000:]}")
    metrics = read_metrics(run_dir)
    cfg = OmegaConf.load(run_dir / "config.yaml")
    batch = min(cfg.data.batch_size, metrics["n_train"])
    steps = metrics["epochs"] * -(-metrics["n_train"] // batch)
    return {"wall_seconds": wall, "fit_seconds": metrics["fit_seconds"], "steps": steps,
            "batch": batch, "samples": cfg.model.n_samples_train,
            "ms_per_step": metrics["fit_seconds"] / steps * 1e3,
            "test_nll_standardised": metrics["test_nll_standardised"]}  # fmt: skip


def run_jobs(
    jobs: Sequence[Job],
    root: Path,
    n_workers: int = 1,
    report: Callable[[Job, dict[str, Any]], None] | None = None,
) -> dict[str, dict[str, Any]]:
    """Run every job (``n_workers`` processes at a time); metrics by label, in job order."""
    if len({job.label for job in jobs}) != len(jobs):
        raise ValueError("benchmark job labels must be unique")
    results: dict[str, dict[str, Any]] = {}
    if n_workers <= 1:
        for job in jobs:
            results[job.label] = run_job(job, root)
            if report:
                report(job, results[job.label])
        return results
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    with ProcessPoolExecutor(n_workers, mp_context=get_context("spawn")) as pool:
        futures = [(job, pool.submit(run_job, job, root)) for job in jobs]
        for job, future in futures:
            results[job.label] = future.result()
            if report:
                report(job, results[job.label])
    return results


def mean_se(values: Sequence[float]) -> tuple[float, float]:
    """(mean, std(ddof=0)/√n) of finite values; (nan, nan) when there are none."""
    array = np.asarray([v for v in values if v is not None and math.isfinite(v)], dtype=float)
    if array.size == 0:
        return math.nan, math.nan
    return float(array.mean()), float(array.std() / math.sqrt(array.size))


def format_mean_se(values: Sequence[float], digits: int = 3) -> str:
    """'mean ± se (n)' of the finite values, or '–' when there are none."""
    finite = [v for v in values if v is not None and math.isfinite(v)]
    if not finite:
        return "–"
    mean, se = mean_se(finite)
    n = "" if len(finite) == len(values) else f" ({len(finite)}/{len(values)} runs)"
    return f"{mean:.{digits}f} ± {se:.{digits}f}{n}"


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A GitHub markdown table; every row must have as many cells as the header."""
    for row in rows:
        if len(row) != len(header):
            raise ValueError(f"table row {list(row)} has {len(row)} cells, header {len(header)}")
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(" --- " for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def write_report(name: str, text: str, bench_dir: Path = BENCH_DIR) -> Path:
    """Write ``<bench_dir>/<name>.md`` atomically, print it, and return its path."""
    path = bench_dir / f"{name}.md"
    write_text(path, text.rstrip() + "\n")
    print(text)
    print(f"\n→ {path}")
    return path


class Stopwatch:
    """Elapsed wall time of a whole benchmark, for its report."""

    def __init__(self) -> None:
        self.start = time.perf_counter()

    def minutes(self) -> float:
        return (time.perf_counter() - self.start) / 60.0
