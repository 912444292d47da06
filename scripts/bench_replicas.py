"""R-scaling of the replica axis: fit time of the default run, R seeds trained together, one thread.

    python scripts/bench_replicas.py [--replicas 1,2,4,8,16,64] [--epochs N] [--out DIR]
                                     [overrides ...]

For each R, seeds 0 … R−1 of the default ``bnnlv train`` config (``threads=1``, no plots) train
together as one model of R replicas (bnnlv.runs.benchmark.run_group → train_replicas, as
``launcher=replicas`` and the benchmark scripts do); the fit seconds are those of metrics.json,
the same for every run of the group. ``overrides`` go to every run (``trainer=gpu`` for the GPU,
``threads=2``). ``--epochs`` shortens the fit for a quick check; the issue's figure is the
default run's. Writes <out>/replicas.md; the load average is recorded beside the times.
Target (issue 17): R = 8 takes ≤ 2× the fit time of R = 1 on one CPU thread.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bnnlv.runs.benchmark import (
    BENCH_DIR,
    Job,
    Stopwatch,
    epochs_override,
    int_list,
    markdown_table,
    run_group,
    write_report,
)

REPLICAS = (1, 2, 4, 8, 16, 64)


def group(replicas: int, extra: Sequence[str]) -> list[Job]:
    """Seeds 0 … replicas−1 of the default run (one thread: bnnlv.runs.benchmark.QUIET)."""
    return [Job(f"R{replicas}-seed{s}", (f"seed={s}", *extra)) for s in range(replicas)]


def row(replicas: int, runs: Sequence[dict[str, Any]], one: float | None) -> list[str]:
    """R, fit s, × R = 1, fit s per replica, ms per update, runs that failed."""
    finished = [run for run in runs if run.get("status") == "ok"]
    if not finished:
        return [str(replicas), "–", "–", "–", "–", f"{len(runs)} of {len(runs)}"]
    fit, steps = finished[0]["fit_seconds"], finished[0]["steps"]
    ratio = f"{fit / one:.2f}" if one else "–"
    failed = len(runs) - len(finished)
    return [str(replicas), f"{fit:.1f}", ratio, f"{fit / replicas:.2f}",
            f"{fit / steps * 1e3:.2f}", str(failed)]  # fmt: skip


def render(rows: list[list[str]], note: str) -> str:
    header = ["R", "fit s", "× R = 1", "fit s / replica", "ms / update", "failed runs"]
    return (
        "# Replica scaling\n\n"
        "Fit seconds (metrics.json) of R seeds of the default run trained together on the "
        "replica axis, one torch thread.\n\n" + markdown_table(header, rows) + f"\n\n{note}\n"
    )


def main() -> None:
    cli = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    cli.add_argument("--replicas", type=int_list, default=list(REPLICAS), help="e.g. 1,8")
    cli.add_argument("--epochs", type=int, default=None, help="trainer.max_epochs for a quick look")
    cli.add_argument("--out", type=Path, default=BENCH_DIR, help="default %(default)s")
    cli.add_argument("overrides", nargs="*", help="Hydra overrides for every run, e.g. trainer=gpu")
    args = cli.parse_args()
    if min(args.replicas) < 1:
        cli.error(f"--replicas: every R must be ≥ 1, got {args.replicas}")
    extra = [*epochs_override(args), *args.overrides]
    clock, load = Stopwatch(), os.getloadavg()
    rows: list[list[str]] = []
    one: float | None = None
    for replicas in args.replicas:
        runs = run_group(group(replicas, extra), args.out / "replicas")
        if replicas == 1 and runs[0].get("status") == "ok":
            one = runs[0]["fit_seconds"]
        rows.append(row(replicas, runs, one))
        print(f"R = {replicas}: {' | '.join(rows[-1][1:])}", flush=True)
    loads = ", ".join(f"{a:.1f}/{b:.1f}" for a, b in zip(load, os.getloadavg(), strict=True))
    note = (
        f"Overrides: {extra or 'none'}. {os.cpu_count()} CPUs; load average before/after "
        f"(1, 5, 15 min): {loads}. Wall time {clock.minutes():.1f} min (fits and scoring)."
    )
    write_report("replicas", render(rows, note), args.out)


if __name__ == "__main__":
    main()
