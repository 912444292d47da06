"""Where one training update goes: the update alone, timed for R replicas, and its heaviest ops.

    python scripts/bench_update.py [--replicas 1,8] [--updates 300] [--compile] [--out DIR]
                                   [overrides ...]

For each R, seeds 0 … R−1 of the configured run (``overrides``, e.g. ``experiment=seed_tutorial``)
are built as one model of R replicas, as ``launcher=replicas`` builds them, and BNNLV's update
(draws, gradient, every optimiser's step, the epoch's sums) runs again and again on each replica's
first minibatch of its own training rows, on one torch thread (``threads=2`` for two), with the
runner's allocator setting (bnnlv.model.allocator). No Trainer: this is the cost of the update,
not of Lightning's loop around it (compare bench_replicas.py's fit seconds). The time is the
fastest of three rounds of ``--updates`` updates; the table of operations is torch.profiler's self
time over one more round, and "ops / update" counts the tensor operations one update dispatches.
``--compile`` puts model.fused's step through ``torch.compile`` first and reports its first
update (compiling included) apart. Writes <out>/update.md; the load average is recorded beside.
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import torch
from omegaconf import DictConfig
from torch.profiler import ProfilerActivity, profile
from torch.utils._python_dispatch import TorchDispatchMode

from bnnlv.runs.benchmark import (
    BENCH_DIR,
    Job,
    int_list,
    job_config,
    markdown_table,
    write_report,
)
from bnnlv.runs.errors import describe

REPLICAS = (1, 8)
TOP_OPS = 12  # rows of the profile table per R


def configs(overrides: Sequence[str], replicas: int) -> list[DictConfig]:
    """Seeds 0 … replicas−1 of the run the overrides configure, composed as every benchmark's jobs
    are (bnnlv.runs.benchmark.job_config: quiet, one thread, composed once, seeds set on copies)."""
    return [
        job_config(Job(f"seed{seed}", (*overrides, f"seed={seed}"))) for seed in range(replicas)
    ]


def updater(cfgs: Sequence[DictConfig]) -> tuple[Callable[[], object], str]:
    """One update of the replicas' model on their first minibatch, as a call, and the path it
    trains with (model.fused's hand-written gradient or autograd)."""
    from lightning.pytorch.strategies import SingleDeviceStrategy

    from bnnlv.runs.train import build_replicas, prepare_process

    prepare_process(cfgs[0])  # the config's torch threads, the runner's allocator setting
    datas, model = build_replicas(cfgs)
    model._fused = model.fused_applies(SingleDeviceStrategy(torch.device("cpu")), "32-true")
    model.manual_backward = lambda loss: loss.backward()  # type: ignore[method-assign]  # no Trainer
    optimisers = model.configure_optimizers()
    batches = []
    for data in datas:
        data.setup("fit")
        for parts in data.train_batches():  # an ensemble's members: one order each
            batches.append(next(iter(parts)))
    x, y, index = (torch.stack(tensors) for tensors in zip(*batches, strict=True))
    model.figures.start_epoch()
    path = "fused" if model._fused else "autograd"
    return (lambda: model._update(optimisers, x, y, index)), path


def time_updates(update: Callable[[], object], updates: int, rounds: int = 3) -> float:
    """The fastest of ``rounds`` rounds, ms per update."""
    best = float("inf")
    for _ in range(rounds):
        start = time.perf_counter()
        for _ in range(updates):
            update()
        best = min(best, (time.perf_counter() - start) / updates)
    return best * 1e3


class OpCount(TorchDispatchMode):
    """Counts the tensor operations dispatched (those a Python call makes; not the ones a kernel
    makes inside, which torch.profiler lists as well)."""

    def __init__(self) -> None:
        super().__init__()
        self.count = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # type: ignore[no-untyped-def]
        self.count += 1
        return func(*args, **(kwargs or {}))


def count_ops(update: Callable[[], object]) -> int:
    """Tensor operations of one update."""
    with OpCount() as mode:
        update()
    return mode.count


def top_ops(update: Callable[[], object], updates: int) -> list[list[str]]:
    """torch.profiler's heaviest ops by self time over ``updates`` updates: rows (op, calls per
    update, µs per call, ms per update, share of the aten ops' self time)."""
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(updates):
            update()
    events = [e for e in prof.key_averages() if e.key.startswith("aten::")]
    total = sum(e.self_cpu_time_total for e in events) or 1.0
    return [
        [f"`{e.key}`", f"{e.count / updates:.1f}", f"{e.self_cpu_time_total / e.count:.1f}",
         f"{e.self_cpu_time_total / updates / 1e3:.3f}", f"{e.self_cpu_time_total / total:.1%}"]
        for e in sorted(events, key=lambda e: -e.self_cpu_time_total)[:TOP_OPS]
    ]  # fmt: skip


def row(replicas: int, path: str, ms: float, one: float | None, ops: int | None) -> list[str]:
    """R, path, ms per update, × R = 1, ms per replica, tensor operations per update (None:
    not counted)."""
    ratio = f"{ms / one:.2f}" if one else "–"
    counted = "–" if ops is None else str(ops)
    return [str(replicas), path, f"{ms:.2f}", ratio, f"{ms / replicas:.2f}", counted]


def main() -> None:
    cli = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    cli.add_argument("--replicas", type=int_list, default=list(REPLICAS), help="e.g. 1,2,8")
    cli.add_argument("--updates", type=int, default=300, help="per timed round (default 300)")
    cli.add_argument("--compile", action="store_true", help="torch.compile model.fused's step")
    cli.add_argument("--out", type=Path, default=BENCH_DIR, help="default %(default)s")
    cli.add_argument("overrides", nargs="*", help="Hydra overrides, e.g. experiment=seed_tutorial")
    args = cli.parse_args()
    if min(args.replicas) < 1:
        cli.error(f"--replicas: every R must be ≥ 1, got {args.replicas}")
    if args.updates < 1:
        cli.error(f"--updates must be ≥ 1, got {args.updates}")
    try:
        configs(args.overrides, 1)  # composed once here; every R reuses it
    except Exception as error:  # Hydra's and OmegaConf's, said in one line
        cli.error(f"overrides: {describe(error)}")
    load = os.getloadavg()
    if args.compile:  # BNNLV._update calls the step through its module's name
        import bnnlv.model.lit_module as lit_module

        lit_module.fused_step = torch.compile(lit_module.fused_step, dynamic=False)
    rows, profiles, firsts = [], [], []
    one: float | None = None
    for replicas in args.replicas:
        update, path = updater(configs(args.overrides, replicas))
        start = time.perf_counter()
        update()  # the first update: allocation, and compiling with --compile
        firsts.append(f"R = {replicas}: {time.perf_counter() - start:.2f} s")
        for _ in range(min(args.updates, 50)):
            update()
        ms = time_updates(update, args.updates)
        # a compiled step runs as inductor's kernels, which a dispatch mode does not see
        counted = None if args.compile else count_ops(update)
        one = ms if replicas == 1 else one
        rows.append(row(replicas, path, ms, one, counted))
        profiles.append((replicas, top_ops(update, args.updates)))
        print(f"R = {replicas}: {' | '.join(rows[-1][1:])}", flush=True)
    header = ["R", "path", "ms / update", "× R = 1", "ms / replica", "ops / update"]
    text = [
        "# One training update\n",
        "The update alone (draws, gradient, optimiser steps; no Lightning loop), fastest of "
        f"three rounds of {args.updates}, {torch.get_num_threads()} torch thread(s)"
        + (", model.fused's step compiled" if args.compile else "")
        + ".\n",
        markdown_table(header, rows),
    ]
    for replicas, heaviest in profiles:
        text += [
            f"\n## R = {replicas}: the heaviest operations (torch.profiler, self time)\n",
            markdown_table(["op", "calls / update", "µs / call", "ms / update", "share"], heaviest),
        ]
    loads = ", ".join(f"{a:.1f}/{b:.1f}" for a, b in zip(load, os.getloadavg(), strict=True))
    text.append(
        f"\nOverrides: {args.overrides or 'none'}. First update: {'; '.join(firsts)}. "
        f"{os.cpu_count()} CPUs; load average before/after (1, 5, 15 min): {loads}."
    )
    write_report("update", "\n".join(text), args.out)


if __name__ == "__main__":
    main()
