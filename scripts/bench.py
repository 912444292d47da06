"""Speed and memory benchmark of the runner (issue 7): fit times, training throughput, prediction.

    python scripts/bench.py [--device cpu|cuda] [--threads N] [--compile] [--autograd] [--quick]
                            [--out DIR]

Rows, each on ``--device``:
1. ``experiment=seed_tutorial``: fit seconds and ms per optimiser step (its 250 epochs × 12 steps);
2. the default config as a whole ``bnnlv train`` command: wall seconds, fit seconds (metrics.json),
   with the configured torch threads and again with ``threads=1`` (CPU only);
3. training throughput at batch 1k, 10k and 100k, K = 10, hidden [50, 50, 50], per-point q(z_n), on
   a synthetic 1,000,000 × 8 data set (one full epoch each, the first steps not timed), with the
   peak resident memory of each case: every case runs in its own process, so the peaks are its own;
4. prediction of 10,000 points with 50 weight × 20 latent = 1,000 predictive samples each
   (``BNNLV.predict`` with targets: moments and mixture log-density), the same with the mixture's
   90 % central interval (``interval: 0.9``), the mixture quantiles alone for 10,000 points × 5,000
   components of a bimodal mixture (``bnnlv.model.quantiles``, float32 as the model gives them),
   and the entropy
   decomposition of 1,000 points (``bnnlv.model.entropy.entropy_decomposition``, the evaluation's
   draws).

Rows 1, 3 and 4 use ``--threads`` torch threads (default 1); row 2 also runs the config as it is.
``--autograd`` trains rows 1-3 with ``model.fused=false`` (autograd's backward instead of the
hand-written gradient of bnnlv/model/fused.py), for a before/after on the same machine.
``--quick`` runs every row at small sizes (a smoke test). Writes <out>/bench.md and bench.json.
Wall times include whatever else the machine runs: the load average is recorded beside them.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from bnnlv.data.module import RegressionDataModule, Splits
from bnnlv.runs.benchmark import (
    BENCH_DIR,
    bnnlv_train,
    compose_config,
    markdown_table,
    write_report,
)
from bnnlv.runs.results import write_json

FULL = {"rows": 1_000_000, "batches": (1_000, 10_000, 100_000), "epochs": {}, "points": 10_000,
        "samples": (50, 20), "entropy_points": 1_000, "quantile_components": 5_000}  # fmt: skip
QUICK = {"rows": 20_000, "batches": (200, 1_000, 4_000), "epochs": {"default": 3, "tutorial": 1},
         "points": 1_000, "samples": (10, 10), "entropy_points": 100,
         "quantile_components": 200}  # fmt: skip
# Issue 7's targets (full sizes; CPU figures are for the 2-core development machine).
TARGETS = {"seed_tutorial fit": "fit ≤ 12 s", "default `bnnlv train`": "wall ≤ 20 s",
           "train batch 10,000": "RSS ≤ 3,072 MiB", "predict": "≤ 10 s"}  # fmt: skip
GPU_TARGETS = {"train batch 100,000": "≥ 5,000,000 points/s (H100)"}
FEATURES = 8
WARMUP_STEPS = 3  # not timed: first-call allocations (and compilation with --compile)


def peak_rss_mib() -> float:
    """Peak resident set size of this process so far (ru_maxrss: KiB on Linux, bytes on macOS)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 2**10


class SyntheticRegression(RegressionDataModule):
    """``rows`` × ``features`` inputs x ~ N(0, I), y = tanh(x·w) + 0.1 ε; all rows train."""

    def __init__(self, rows: int, features: int, batch_size: int, seed: int = 0) -> None:
        super().__init__(batch_size=batch_size, seed=seed)
        self.rows, self.features, self.seed = rows, features, seed

    def load(self) -> Splits:
        rng = np.random.default_rng(self.seed)
        x = rng.standard_normal((self.rows, self.features), dtype=np.float32)
        w = rng.standard_normal((self.features, 1), dtype=np.float32) / np.sqrt(self.features)
        y = np.tanh(x @ w) + 0.1 * rng.standard_normal((self.rows, 1), dtype=np.float32)
        x_none, y_none = np.zeros((0, self.features), np.float32), np.zeros((0, 1), np.float32)
        names = [f"x{i}" for i in range(self.features)]
        return Splits(x, y, x_none, y_none, x_none, y_none, names, ["y"])


def train_case(
    rows: int, batch: int, device: str, compile_model: bool, fused: bool = True
) -> dict[str, Any]:
    """One epoch of the Lightning fit on :class:`SyntheticRegression`, timed per step."""
    import lightning as L
    from hydra.utils import instantiate

    from bnnlv.model.allocator import keep_freed_memory
    from bnnlv.runs.train import quiet_lightning

    if -(-rows // batch) < WARMUP_STEPS + 2:
        raise ValueError(f"batch {batch} leaves too few steps in {rows} rows to time")
    quiet_lightning()
    keep_freed_memory()  # as the runner does
    overrides = ["model.hidden=[50,50,50]", "model.n_samples_train=10", "model.latent=per_point"]
    overrides += [f"model.compile={compile_model}".lower(), f"model.fused={fused}".lower()]
    cfg = compose_config(overrides)
    data = SyntheticRegression(rows, FEATURES, batch)
    data.prepare()
    model = instantiate(cfg.model, _convert_="all", in_features=FEATURES, out_features=1,
                        n_train=rows, batch_size=batch)  # fmt: skip
    rss_before = peak_rss_mib()
    stamps: list[float] = []

    class Clock(L.Callback):
        """A stamp per update, as its first optimiser steps (a Lightning batch holds several)."""

        def on_before_optimizer_step(
            self, trainer: L.Trainer, module: L.LightningModule, optimizer: Any
        ) -> None:
            if optimizer is trainer.optimizers[0]:
                if device == "cuda":
                    torch.cuda.synchronize()
                stamps.append(time.perf_counter())

    trainer = L.Trainer(
        accelerator="gpu" if device == "cuda" else "cpu", devices=1, max_epochs=1, logger=False,
        enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
        num_sanity_val_steps=0, callbacks=[Clock()],
    )  # fmt: skip
    data.device = trainer.strategy.root_device
    start = time.perf_counter()
    trainer.fit(model, datamodule=data)
    epoch_seconds = time.perf_counter() - start
    ms_per_step = float(np.diff(stamps[WARMUP_STEPS - 1 :]).mean() * 1e3)
    result = {"steps": len(stamps), "wall_seconds": epoch_seconds, "ms_per_step": ms_per_step,
              "points_per_s": batch / ms_per_step * 1e3, "peak_rss_mib": peak_rss_mib(),
              "rss_before_fit_mib": rss_before}  # fmt: skip
    if device == "cuda":
        result["peak_gpu_mib"] = torch.cuda.max_memory_allocated() / 2**20
    return result


def run_train_case(rows: int, batch: int, args: argparse.Namespace) -> dict[str, Any]:
    """:func:`train_case` in a fresh process (its own peak RSS), JSON on its last stdout line."""
    options = f"--case-rows {rows} --case-batch {batch} --device {args.device} "
    options += f"--threads {args.threads}" + (" --compile" if args.compile else "")
    options += " --autograd" if args.autograd else ""
    done = subprocess.run([sys.executable, __file__, *options.split()], capture_output=True,
                          text=True, check=False)  # fmt: skip
    if done.returncode != 0:
        raise RuntimeError(f"train case batch {batch} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def timed(fn: Any, device: str) -> float:
    start = time.perf_counter()
    fn()
    if device == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - start


def prediction_rows(sizes: dict[str, Any], device: str) -> list[dict[str, Any]]:
    """``BNNLV.predict`` (with targets; again with the 90 % interval), the mixture quantiles of
    many components, and the entropy decomposition, default model config."""
    from bnnlv.model.entropy import entropy_decomposition
    from bnnlv.model.quantiles import central_probs, mixture_quantiles
    from bnnlv.report.evaluate import ENTROPY_DRAWS
    from bnnlv.runs.train import build

    model = build(compose_config([]))[1].to(device).eval()
    n_weights, n_latent = sizes["samples"]
    x = torch.randn(sizes["points"], model.hparams["in_features"], device=device)
    y = torch.randn(sizes["points"], model.hparams["out_features"], device=device)
    seconds = timed(lambda: model.predict(x, y, n_weights=n_weights, n_latent=n_latent), device)
    probs = central_probs(0.9)
    with_interval = timed(lambda: model.predict(x, y, n_weights=n_weights, n_latent=n_latent,
                                                quantile_probs=probs), device)  # fmt: skip
    # a bimodal predictive, the harder case: 30 % of the components 3 noise stds up
    components = sizes["quantile_components"]
    means = torch.randn(components, 1, sizes["points"], 1, device=device)  # [C, 1, B, 1]
    means += 3.0 * (torch.rand(components, 1, 1, 1, device=device) < 0.3)
    noise_var = torch.full((1,), 0.1, device=device)
    quantiles = timed(lambda: mixture_quantiles(means, noise_var, probs), device)
    f, noise_var = model.components(x[: sizes["entropy_points"]], n_weights, n_latent)
    entropy = timed(lambda: entropy_decomposition(f, noise_var.log(), ENTROPY_DRAWS), device)
    samples = f"{n_weights * n_latent:,}"
    return [
        {"row": "predict", "setting": f"{sizes['points']:,} points × {samples} samples",
         "wall_seconds": seconds},
        {"row": "predict with interval 0.9", "wall_seconds": with_interval,
         "setting": f"{sizes['points']:,} points × {samples} samples, q05 and q95"},
        {"row": "mixture quantiles", "wall_seconds": quantiles,
         "setting": f"{sizes['points']:,} points × {components:,} components, 2 levels"},
        {"row": "entropy decomposition", "wall_seconds": entropy,
         "setting": f"{sizes['entropy_points']:,} points × {samples}, {ENTROPY_DRAWS} draws"},
    ]  # fmt: skip


def benchmark(args: argparse.Namespace) -> list[dict[str, Any]]:
    """Every row of the table, in order (module docstring)."""
    sizes = QUICK if args.quick else FULL
    runs, threads = args.out / "bench_runs", f"threads={args.threads}"
    on_device = ["trainer=gpu"] if args.device == "cuda" else []
    on_device += ["model.fused=false"] if args.autograd else []

    def epochs(name: str) -> list[str]:
        return [f"trainer.max_epochs={sizes['epochs'][name]}"] if name in sizes["epochs"] else []

    def setting(run: dict[str, Any], label: str) -> str:
        return f"{run['steps']:,} steps, batch {run['batch']}, K {run['samples']}, {label}"

    tutorial = ["experiment=seed_tutorial", "plots=false", threads, *on_device, *epochs("tutorial")]
    run = bnnlv_train(tutorial, runs / "seed_tutorial")
    rows = [progress({"row": "seed_tutorial fit", "setting": setting(run, threads), **run})]
    variants = [("configured threads", "", [])]
    if args.device == "cpu":
        variants.append(("threads=1", "-threads1", ["threads=1"]))
    for label, suffix, extra in variants:
        run = bnnlv_train([*extra, *on_device, *epochs("default")], runs / f"default{suffix}")
        rows.append(
            progress({"row": "default `bnnlv train`", "setting": setting(run, label), **run})
        )
    for batch in sizes["batches"]:
        case = run_train_case(sizes["rows"], batch, args)
        shape = f"{sizes['rows']:,} rows × {FEATURES}, K 10, [50, 50, 50], {case['steps']} steps"
        rows.append(progress({"row": f"train batch {batch:,}", "setting": shape, **case}))
    rows += [progress(row) for row in prediction_rows(sizes, args.device)]
    return rows


def progress(row: dict[str, Any]) -> dict[str, Any]:
    """Print a finished row's main figure on stderr (a full run takes minutes); return it."""
    figure = row.get("fit_seconds", row["wall_seconds"])
    print(f"bench: {row['row']} ({row['setting']}): {figure:.2f} s", file=sys.stderr, flush=True)
    return row


def fmt(value: float | None, digits: int) -> str:
    return "–" if value is None else f"{value:,.{digits}f}"


def note(row: dict[str, Any]) -> str:
    """Test NLL of a fit, the peak before training of a throughput case, GPU memory."""
    parts = []
    if "test_nll_standardised" in row:
        parts.append(f"test NLL {row['test_nll_standardised']:.3f} (standardised)")
    if "rss_before_fit_mib" in row:
        parts.append(f"RSS {row['rss_before_fit_mib']:,.0f} MiB before the fit")
    if "peak_gpu_mib" in row:
        parts.append(f"GPU peak {row['peak_gpu_mib']:,.0f} MiB")
    return "; ".join(parts)


def render(report: dict[str, Any]) -> str:
    """The markdown report: a header with the machine's load, then the table."""
    targets = (
        {} if report["quick"] else TARGETS | (GPU_TARGETS if report["device"] == "cuda" else {})
    )
    header = ["row", "setting", "wall s", "fit s", "ms / step", "points / s", "peak RSS MiB",
              "target", "note"]  # fmt: skip
    table = markdown_table(header, [
        [r["row"], r["setting"], fmt(r.get("wall_seconds"), 2), fmt(r.get("fit_seconds"), 2),
         fmt(r.get("ms_per_step"), 2), fmt(r.get("points_per_s"), 0),
         fmt(r.get("peak_rss_mib"), 0), targets.get(r["row"], ""), note(r)]
        for r in report["rows"]
    ])  # fmt: skip
    load = ", ".join(f"{a:.1f}/{b:.1f}" for a, b in zip(*report["load"], strict=True))
    tags = [report["device"]] + [tag for tag in ("compile", "autograd", "quick") if report.get(tag)]
    return (
        f"# Speed benchmark ({', '.join(tags)})\n\n"
        f"torch {report['torch']}, {report['cpus']} CPUs, {report['threads']} torch thread(s) "
        f"unless the row says otherwise; load average before/after (1, 5, 15 min): {load}.\n\n"
        + table
    )


def main() -> None:
    cli = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    cli.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    cli.add_argument("--threads", type=int, default=1, help="torch threads (default %(default)s)")
    cli.add_argument("--compile", action="store_true", help="model.compile=true in the train rows")
    cli.add_argument("--autograd", action="store_true", help="model.fused=false in the train rows")
    cli.add_argument("--quick", action="store_true", help="every row at small sizes")
    cli.add_argument("--out", type=Path, default=BENCH_DIR, help="default %(default)s")
    cli.add_argument("--case-rows", type=int, help=argparse.SUPPRESS)
    cli.add_argument("--case-batch", type=int, help=argparse.SUPPRESS)
    args = cli.parse_args()
    torch.set_num_threads(args.threads)
    if args.case_batch:
        case = train_case(
            args.case_rows, args.case_batch, args.device, args.compile, not args.autograd
        )
        print(json.dumps(case))
        return
    if args.device == "cuda" and not torch.cuda.is_available():
        cli.error("--device cuda: torch sees no CUDA device")
    load_before = os.getloadavg()
    rows = benchmark(args)
    report = {"device": args.device, "torch": torch.__version__, "threads": args.threads,
              "compile": args.compile, "autograd": args.autograd, "quick": args.quick,
              "cpus": os.cpu_count(),
              "load": [load_before, os.getloadavg()], "rows": rows}  # fmt: skip
    if args.device == "cuda":
        report["gpu"] = torch.cuda.get_device_name()
    write_report("bench", render(report), args.out)
    write_json(args.out / "bench.json", report)


if __name__ == "__main__":
    main()
