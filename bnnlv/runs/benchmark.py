"""Benchmark plumbing shared by ``scripts/bench_*.py``: run composed configs, summarise, tabulate.

Each run is an ordinary ``bnnlv train`` run (or another command's: ``Job.config`` and
``Job.runner``), with the same config composition and results folder, executed in-process or,
with ``jobs > 1``, in worker processes (one torch thread each). ``train`` runs whose configs
differ only in the run keys (bnnlv.runs.grouping.RUN_KEYS: seed, split, data draw) are trained
together on the model's replica axis (bnnlv.runs.train.train_replicas, as ``launcher=replicas``
does), each still its own folder and its own figures; ``group=False`` trains every run alone.
The summary statistic is the one the UCI literature reports: mean ± standard error over runs with
SE = std(ddof = 0) / √n, as in the MC-dropout reference code.
"""

from __future__ import annotations

import argparse
import copy
import math
import os
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from functools import lru_cache
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import numpy as np
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig, OmegaConf

from bnnlv.runs.config import check_config
from bnnlv.runs.folders import config_dir
from bnnlv.runs.grouping import RUN_KEYS, group_key
from bnnlv.runs.results import read_metrics, write_text

BENCH_DIR = Path("outputs") / "benchmarks"
# Every benchmark run: quiet, no figures, one torch thread (runs go in parallel instead).
QUIET = ("progress_bar=false", "plots=false", "threads=1")
TRAIN = "bnnlv.runs.train.train"
# The models every benchmark puts side by side (issue 14): table row → the overrides that select
# it. A new peer or variant is one entry here.
MODELS: dict[str, tuple[str, ...]] = {
    "bnn_lv": ("model=bnn_lv",),
    "bnn_lv_het": ("model=bnn_lv", "model.noise=heteroscedastic"),
    "bnn": ("model=bnn",),
    "mlp": ("model=mlp",),
    "het_mlp": ("model=het_mlp",),
    "ensemble": ("model=ensemble",),
}


@dataclass(frozen=True)
class Job:
    """One run: a label for its folder and table row, and its Hydra overrides; the root config
    it composes and the dotted name of the function (cfg, run_dir) → metrics that runs it."""

    label: str
    overrides: tuple[str, ...]
    config: str = "train"
    runner: str = TRAIN

    @property
    def values(self) -> dict[str, str]:
        """The overrides as {key: value}, the last of a key winning (as in Hydra)."""
        return {key: value for key, _, value in (o.partition("=") for o in self.overrides)}


def cores() -> int:
    """The CPU cores this process may run on (its affinity where the OS has one): a benchmark's
    default number of workers, since every run uses one torch thread."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


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
        "--jobs",
        type=int,
        default=cores(),
        help="groups of runs in parallel, in worker processes of one torch thread each (default: "
        "this machine's cores, %(default)s; 1 runs everything in this process)",
    )
    cli.add_argument(
        "--no-group",
        dest="group",
        action="store_false",
        help="train every run alone (default: runs that differ only in seed, split or data draw "
        "train together on the replica axis, each still its own run)",
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


def choices(cli: argparse.ArgumentParser, text: str, known: Sequence[str], what: str) -> list[str]:
    """The comma-separated ``text`` as a list; a name not in ``known`` ends the script (exit 2)
    with a one-line message."""
    names = text.split(",")
    for name in names:
        if name not in known:
            cli.error(f"unknown {what} {name!r}; choose from {list(known)}")
    return names


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


def job_config(job: Job) -> DictConfig:
    """The job's config, as :func:`compose_config` composes it with :data:`QUIET` first.

    Hydra's compose takes about half a second and a UCI benchmark has a thousand jobs, most of
    them differing only in integer run keys (``seed=3``, ``data.split=7``: RUN_KEYS of
    bnnlv.runs.grouping): those are composed once without them, the keys then set on a copy,
    in the order given. A key the config lacks falls back to Hydra's compose, and its error.
    """
    run_keys = tuple(f"{key}=" for key in RUN_KEYS)
    rest = [o for o in job.overrides if not o.startswith(run_keys)]
    keys = [o.partition("=") for o in job.overrides if o.startswith(run_keys)]
    if not all(value.lstrip("-").isdigit() for _, _, value in keys):
        return compose_config([*QUIET, *job.overrides], job.config)
    cfg = copy.deepcopy(_composed(job.config, (*QUIET, *rest)))
    for key, _, value in keys:
        if OmegaConf.select(cfg, key) is None:
            return compose_config([*QUIET, *job.overrides], job.config)
        OmegaConf.update(cfg, key, int(value))
    return cfg


@lru_cache(maxsize=256)
def _composed(config: str, overrides: tuple[str, ...]) -> DictConfig:
    return compose_config(overrides, config)


def run_job(job: Job, root: Path) -> dict[str, Any]:
    """Run one job into ``root/<label>`` and return its metrics (status failed on error)."""
    from hydra.utils import get_method

    try:
        cfg = job_config(job)
        return get_method(job.runner)(cfg, root / job.label)
    except Exception as error:
        return failed(error)


def failed(error: BaseException) -> dict[str, Any]:
    return {"status": "failed", "error": f"{type(error).__name__}: {error}"}


def run_group(group: Sequence[Job], root: Path) -> list[dict[str, Any]]:
    """Run the jobs of one group (:func:`groups`), each into ``root/<label>``: one alone as
    :func:`run_job`, several together (train_replicas); every run's metrics get
    ``fit_seconds_per_run``, its share of the fit that trained it."""
    if len(group) == 1:
        results = [run_job(group[0], root)]
    else:
        from bnnlv.runs.train import train_replicas

        cfgs = [job_config(job) for job in group]
        try:
            results = train_replicas(cfgs, [root / job.label for job in group])
        except Exception as error:  # recorded in every run's folder by train_replicas
            results = [failed(error)] * len(group)
    for metrics in results:
        if "fit_seconds" in metrics:
            metrics["fit_seconds_per_run"] = metrics["fit_seconds"] / len(group)
    return results


def groups(jobs: Sequence[Job], together: bool = True) -> list[list[Job]]:
    """The jobs in the groups they train in, in the order of each group's first job: ``train``
    jobs whose configs are good and equal but for the run keys (bnnlv.runs.grouping.group_key)
    share a group when ``together``; every other job is alone."""
    grouped: dict[str, list[Job]] = {}
    for job in jobs:
        key = job.label  # alone: a job of another command, a bad config, or no grouping
        if together and job.runner == TRAIN:
            try:
                cfg = job_config(job)
                check_config(cfg)
                key = group_key(cfg)
            except Exception:  # reported when the job runs alone
                key = job.label
        grouped.setdefault(key, []).append(job)
    return list(grouped.values())


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


def warm_up() -> None:
    """Import what a worker's first group trains with (run_group imports it lazily)."""
    import bnnlv.runs.train  # noqa: F401


def run_jobs(
    jobs: Sequence[Job],
    root: Path,
    n_workers: int = 1,
    report: Callable[[Job, dict[str, Any]], None] | None = None,
    group: bool = True,
) -> dict[str, dict[str, Any]]:
    """Run every job, in :func:`groups` (``group``: runs that may train together do), ``n_workers``
    groups at a time in worker processes; metrics by label, in job order."""
    if len({job.label for job in jobs}) != len(jobs):
        raise ValueError("benchmark job labels must be unique")
    results: dict[str, dict[str, Any]] = {}

    def done(members: Sequence[Job], outcomes: Sequence[dict[str, Any]]) -> None:
        for job, metrics in zip(members, outcomes, strict=True):
            results[job.label] = metrics
            if report:
                report(job, metrics)

    if n_workers <= 1:
        for unit in groups(jobs, group):
            done(unit, run_group(unit, root))
    else:
        os.environ.setdefault("OMP_NUM_THREADS", "1")
        with ProcessPoolExecutor(n_workers, mp_context=get_context("spawn")) as pool:
            # the workers start and import the training stack (seconds each) while this process
            # composes the jobs' configs to group them
            for _ in range(n_workers):
                pool.submit(warm_up)
            futures = [(unit, pool.submit(run_group, unit, root)) for unit in groups(jobs, group)]
            for unit, future in futures:
                done(unit, future.result())
    return {job.label: results[job.label] for job in jobs}


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


def epochs_override(args: argparse.Namespace) -> tuple[str, ...]:
    """``--epochs N`` as the override that sets it; none when not given."""
    return () if args.epochs is None else (f"trainer.max_epochs={args.epochs}",)


def run_note(args: argparse.Namespace, clock: Stopwatch) -> str:
    """How a report's runs were made: the :func:`parser` options, wall time, grouping."""
    how = (
        "runs that differ only in seed, split or data draw trained together as replicas"
        if args.group
        else "every run trained alone (--no-group)"
    )
    return (
        f"Extra overrides: {list(args.overrides) or 'none'}; epochs: "
        f"{args.epochs or 'as configured'}. Wall time {clock.minutes():.1f} min "
        f"({args.jobs} job(s) in parallel; {how})."
    )


class Stopwatch:
    """Elapsed wall time of a whole benchmark, for its report."""

    def __init__(self) -> None:
        self.start = time.perf_counter()

    def minutes(self) -> float:
        return (time.perf_counter() - self.start) / 60.0
