"""Active-learning benchmark: epistemic vs total vs random acquisition on both toys.

    python scripts/bench_active.py [--seeds 0-4] [--datasets toy_bimodal] [--rounds N]
                                   [--acquisitions epistemic,total,random] [overrides ...]
    python scripts/bench_active.py --speed

``--speed`` instead times scoring 1,000 candidates with each acquisition (the default model and
mixture, untrained: the cost does not depend on the weights; best of 3) and the whole default
``bnnlv active`` command, and writes outputs/benchmarks/active_speed.md.

One ``bnnlv active -m`` sweep per data set (acquisition × seed, one process), the seeds of each
acquisition going through their rounds together (``launcher=replicas``: one fit of all the seeds'
replicas a round; ``--no-group``: every job alone, one after the other), each ending in the
sweep summary with its learning curves (mean ± s.e. over seeds) and
areas under the test-NLL curve. The protocol (PROTOCOL below) is the same for every acquisition:
a fresh pool from the generator, the same initial set per seed. Writes outputs/benchmarks/
active.md and active_<data set>.png; the sweeps stay in outputs/benchmarks/active/<data set>/.
Targets: epistemic's area below total's and random's, each paired difference larger
than 2 s.e.; on the heteroscedastic toy, total spends more picks in |x| < 1 than epistemic.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from omegaconf import OmegaConf

from bnnlv.active.acquire import score_candidates
from bnnlv.active.config import ACQUISITIONS as ALL_ACQUISITIONS
from bnnlv.active.config import active_settings
from bnnlv.active.curve import paired_difference, separation
from bnnlv.active.loop import CSV_FILE, load_pool
from bnnlv.active.pool import LabelledPool, pool_scaler
from bnnlv.runs.benchmark import (
    Stopwatch,
    compose_config,
    int_list,
    markdown_table,
    parser,
    write_report,
)
from bnnlv.runs.cli import main as bnnlv_main
from bnnlv.runs.sweep import mean_se
from bnnlv.runs.train import build_model, prepare_process

DATASETS = ("toy_heteroscedastic", "toy_bimodal")
ACQUISITIONS = ("epistemic", "total", "random")
# The protocol, the same for every acquisition and both toys (written down in scripts/README.md).
PROTOCOL = (
    "active.pool_size=2000",
    "active.init_size=20",
    "active.query_size=10",
    "active.rounds=20",
    "active.candidates=1000",
    "active.batch=topk",
    "plots=false",
)
CENTRE = 1.0  # |x| below this: the noisy centre of the heteroscedastic toy
SCORED = 1000  # candidates of the speed row
REPEATS = 3


def run_sweep(sweep_dir: Path, data: str, seeds: list[int], acquisitions: list[str],
              extra: list[str], group: bool = True) -> pd.DataFrame:  # fmt: skip
    """Run the sweep (unless its summary exists; ``group``: each acquisition's seeds together)
    and return its summary.csv."""
    if not (sweep_dir / "summary.csv").is_file():
        shutil.rmtree(sweep_dir, ignore_errors=True)
        try:
            bnnlv_main(["active", "-m", f"data={data}",
                        f"active.acquisition={','.join(acquisitions)}",
                        f"seed={','.join(map(str, seeds))}", *PROTOCOL, *extra,
                        *(["launcher=replicas"] if group else []),
                        f"hydra.sweep.dir={sweep_dir}"])  # fmt: skip
        except SystemExit as stop:
            if stop.code:
                print(f"{data}: the sweep exited {stop.code}; its summary lists the failed jobs")
    return pd.read_csv(sweep_dir / "summary.csv")


def centre_fraction(job_dir: Path) -> float:
    """The fraction of a job's picks with |x| < CENTRE (1-D input)."""
    cfg = OmegaConf.load(job_dir / "config.yaml")
    x_pool = load_pool(cfg, active_settings(cfg)).x_train[:, 0]  # type: ignore[arg-type]
    rows = pd.read_csv(job_dir / CSV_FILE)
    picks = np.array([int(i) for text in rows["acquired"].dropna() for i in str(text).split()])
    return float(np.mean(np.abs(x_pool[picks]) < CENTRE))


def cell(values: list[float], digits: int = 3) -> str:
    """mean ± s.e. (sample std / √n, as the sweep summary)."""
    finite = [v for v in values if np.isfinite(v)]
    if not finite:
        return "–"
    mean, se = mean_se(finite)
    return f"{mean:.{digits}f}" + ("" if np.isnan(se) else f" ± {se:.{digits}f}")


def paired(ours: pd.Series, theirs: pd.Series) -> str:
    """Our area minus theirs, paired by seed: mean ± s.e. (and in s.e.)."""
    common = sorted(set(ours.index) & set(theirs.index))
    mean, se, n = paired_difference(ours[common].tolist(), theirs[common].tolist())
    if n == 0:
        return "–"
    return f"{mean:+.3f} ± {se:.3f} ({separation(mean, se):.1f} s.e.)"


def speed(out: Path, extra: list[str]) -> None:
    """The --speed report: scoring 1,000 candidates per acquisition, and the default run."""
    cfg = compose_config(extra, "active")
    settings = active_settings(cfg)
    prepare_process(cfg)  # threads=null: torch's default
    splits = load_pool(cfg, settings)
    labelled = list(range(min(settings.final_size, len(splits.x_train))))
    data = LabelledPool(splits, labelled, pool_scaler(splits, labelled), cfg.data.batch_size, 0)
    model = build_model(cfg, data).eval()
    x = torch.randn(SCORED, data.in_features)  # standardised inputs
    rows = []
    for acquisition in ALL_ACQUISITIONS:
        chosen = replace(settings, acquisition=acquisition)
        seconds = []
        for _ in range(REPEATS):
            start = time.perf_counter()
            score_candidates(model, x, chosen, torch.Generator().manual_seed(0))
            seconds.append(time.perf_counter() - start)
        rows.append([f"scoring {SCORED:,} candidates: {acquisition}", f"{min(seconds):.3f}"])
    run_dir = out / "active_speed_run"
    shutil.rmtree(run_dir, ignore_errors=True)
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "bnnlv.runs.cli", "active", *extra,
                    f"hydra.run.dir={run_dir}"], check=True)  # fmt: skip
    rows.append(["the default `bnnlv active` command", f"{time.perf_counter() - start:.1f}"])
    mixture = f"{model.predictor.n_weights} × {model.predictor.n_latent} components"
    text = (
        "# Active learning: speed\n\n"
        f"{torch.get_num_threads()} torch thread(s) (threads={cfg.threads}); the default model "
        f"and mixture ({mixture}, {settings.entropy_draws} entropy draws); best of {REPEATS} "
        "for the scoring rows. "
        f"Targets: scoring ≤ 1 s, the default run ≤ 180 s (2-core CPU, idle).\n\n"
        + markdown_table(["what", "seconds"], rows)
    )
    write_report("active_speed", text, out)


def main() -> None:
    cli = parser(__doc__.splitlines()[0])
    cli.add_argument("--seeds", type=int_list, default=[0, 1, 2, 3, 4], help="e.g. 0-4 or 0,3")
    cli.add_argument("--datasets", default=",".join(DATASETS), help="comma-separated")
    cli.add_argument("--acquisitions", default=",".join(ACQUISITIONS), help="comma-separated")
    cli.add_argument("--rounds", type=int, default=None, help="override active.rounds")
    cli.add_argument("--speed", action="store_true", help="time scoring and the default run")
    args = cli.parse_args()
    if args.speed:
        speed(args.out, list(args.overrides))
        return
    extra = list(args.overrides)
    extra += [] if args.rounds is None else [f"active.rounds={args.rounds}"]
    extra += [] if args.epochs is None else [f"trainer.max_epochs={args.epochs}"]
    acquisitions = args.acquisitions.split(",")
    clock = Stopwatch()
    sections = []
    for data in args.datasets.split(","):
        sweep_dir = args.out / "active" / data
        jobs = run_sweep(sweep_dir, data, args.seeds, acquisitions, extra, args.group)
        jobs = jobs[jobs["status"] == "ok"]
        by_acquisition = {
            a: jobs[jobs["active.acquisition"] == a].set_index("seed") for a in acquisitions
        }
        rows = []
        for a, runs in by_acquisition.items():
            area = runs["test_nll_area"]
            fractions = [centre_fraction(sweep_dir / str(j)) for j in runs["job"]]
            rows.append([
                a, str(len(runs)), cell(area.tolist()),
                paired(area, by_acquisition["total"]["test_nll_area"])
                if a != "total" and "total" in by_acquisition else "–",
                paired(area, by_acquisition["random"]["test_nll_area"])
                if a != "random" and "random" in by_acquisition else "–",
                cell(runs["test_nll"].tolist()),
                cell(fractions, 2) if data == "toy_heteroscedastic" else "–",
                cell(runs["fit_seconds"].tolist(), 0),
            ])  # fmt: skip
        table = markdown_table(["acquisition", "seeds", "area under test NLL", "minus total's",
                                "minus random's", "final test NLL", f"picks with |x| < {CENTRE:g}",
                                "fit s"], rows)  # fmt: skip
        figure = args.out / f"active_{data}.png"
        if (sweep_dir / "learning_curves.png").is_file():
            shutil.copyfile(sweep_dir / "learning_curves.png", figure)
        sections.append(f"## {data}\n\n{table}\n\n![learning curves]({figure.name})\n")
    how = (
        "each acquisition's seeds trained together, fit s the shared fit of each round"
        if args.group
        else "every run alone, --no-group"
    )
    text = (
        "# Active-learning benchmark\n\n"
        "Area under the test-NLL curve per labelled point (nats, original units, lower is "
        f"better), mean ± s.e. over seeds {args.seeds}; differences are paired by seed. "
        f"Protocol: {' '.join(PROTOCOL)} {' '.join(extra)}. "
        f"Wall time {clock.minutes():.1f} min ({how}).\n\n" + "\n".join(sections)
    )
    write_report("active", text, args.out)


if __name__ == "__main__":
    main()
