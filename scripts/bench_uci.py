"""UCI regression benchmark: test LL and RMSE over the published splits, beside published columns.

    python scripts/bench_uci.py [--datasets boston,yacht] [--splits 0-2] [--jobs 16]
                                [--candidates lv] [--select-splits 0,1] [--select-only]

Protocol (../shared/data/uci/README.md): the published 90/10 splits, inputs and target standardised
with training statistics, one hidden layer of 50 units (100 for protein), metrics in original
units, mean ± s.e. (std ddof = 0 / √n) over splits.

Hyperparameters are chosen on VALIDATION rows only. Stage 1 (skipped when one candidate is given)
trains every candidate of CANDIDATES on the splits ``--select-splits`` with 20 % of each training
split held out (``data.val_frac=0.2``, as PBP and the MC-dropout grid search do) and keeps, per
data set, the candidate with the lowest mean validation NLL. Stage 2 trains that candidate on the
whole training split of every benchmark split (``data.val_frac=0``) and reports the test figures.
The test rows are never read by stage 1. Writes outputs/benchmarks/uci.md.

Duration of the full run (8 data sets, 48 selection runs + 160 test runs): about 9 min with
``--jobs 16`` on a 16-core Xeon (the H100 host), i.e. about 2 h of one busy core; ``--splits 0-2``
cuts stage 2 to 24 runs.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import Any

from bnnlv.runs.benchmark import (
    Job,
    Stopwatch,
    format_mean_se,
    int_list,
    markdown_table,
    mean_se,
    parser,
    run_jobs,
    write_report,
)

# short name → (folder, published splits, training rows per split)
DATASETS = {
    "boston": ("bostonHousing", 20, 455),
    "concrete": ("concrete", 20, 927),
    "energy": ("energy", 20, 691),
    "kin8nm": ("kin8nm", 20, 7373),
    "naval": ("naval-propulsion-plant", 20, 10741),
    "power": ("power-plant", 20, 8611),
    "wine": ("wine-quality-red", 20, 1439),
    "yacht": ("yacht", 20, 277),
    "protein": ("protein-tertiary-structure", 5, 41157),
}
# published.md, ± = s.e.: test LL and RMSE of MC dropout (Gal & Ghahramani 2016, arXiv v6
# Table 1) and of PBP (Hernández-Lobato & Adams 2015, Table 1), in that order.
PUBLISHED = {
    "boston": (-2.46, 2.97, -2.574, 3.014),
    "concrete": (-3.04, 5.23, -3.161, 5.667),
    "energy": (-1.99, 1.66, -2.042, 1.804),
    "kin8nm": (0.95, 0.10, 0.896, 0.098),
    "naval": (3.80, 0.01, 3.731, 0.006),
    "power": (-2.80, 4.02, -2.837, 4.124),
    "protein": (-2.89, 4.36, -2.973, 4.732),
    "wine": (-0.93, 0.62, -0.968, 0.635),
    "yacht": (-1.55, 1.11, -1.634, 1.015),
}
# Shared by every run: one hidden layer (PROTEIN widens it), BNN+LV with α = 0.5.
COMMON = ("data=uci", "model=bnn_lv", "model.hidden=[50]", "alpha=0.5")
PROTEIN = ("model.hidden=[100]",)
# The candidates stage 1 chooses from, the same for every data set.
CANDIDATES: dict[str, tuple[str, ...]] = {
    "e250-lr3e-3": ("trainer.max_epochs=250", "model.lr=3e-3"),
    "e500-lr3e-3": ("trainer.max_epochs=500", "model.lr=3e-3"),
    "e500-lr1e-2": ("trainer.max_epochs=500", "model.lr=1e-2"),
}
MIN_BATCH, STEPS_PER_EPOCH = 32, 10  # batch = max(32, ⌈n_train / 10⌉): a rule, fixed for all


def batch_size(n_train: int) -> int:
    return min(n_train, max(MIN_BATCH, math.ceil(n_train / STEPS_PER_EPOCH)))


def last_logged(run_dir: Path, key: str) -> float:
    """The last value of ``key`` (e.g. val/nll, standardised units) in the run's metrics log."""
    path = run_dir / "logs" / "metrics.csv"
    if not path.is_file():
        return float("nan")
    with path.open() as handle:
        logged = [row[key] for row in csv.DictReader(handle) if row.get(key)]
    return float(logged[-1]) if logged else float("nan")


def job(name: str, split: int, candidate: str, val_frac: float, extra: list[str]) -> Job:
    folder, _, n_rows = DATASETS[name]
    n_train = math.floor(n_rows * (1 - val_frac))
    overrides = [
        *COMMON, f"data.name={folder}", f"data.split={split}", f"data.val_frac={val_frac}",
        f"data.batch_size={batch_size(n_train)}", *CANDIDATES[candidate],
        *(PROTEIN if name == "protein" else ()),
    ]  # fmt: skip
    if val_frac:  # validate once, after the last epoch
        overrides.append("trainer.check_val_every_n_epoch=${trainer.max_epochs}")
    return Job(f"{name}-{candidate}-split{split}", (*overrides, *extra))


def by_cost(jobs: list[Job]) -> list[Job]:
    """Longest runs first, so that a pool of workers ends together. The cost model is rough:
    steps × (2 ms + 6 µs per point in the batch), one thread."""

    def cost(j: Job) -> float:
        value = {k: v for k, _, v in (o.partition("=") for o in j.overrides)}
        n = math.floor(DATASETS[j.label.split("-")[0]][2] * (1 - float(value["data.val_frac"])))
        batch = int(value["data.batch_size"])
        return int(value["trainer.max_epochs"]) * math.ceil(n / batch) * (2e-3 + 6e-6 * batch)

    return sorted(jobs, key=cost, reverse=True)


def main() -> None:
    cli = parser(__doc__.splitlines()[0])
    default = ",".join(n for n in DATASETS if n != "protein")
    cli.add_argument("--datasets", default=default, help=f"from {','.join(DATASETS)}")
    cli.add_argument("--splits", type=int_list, default=None, help="e.g. 0-2 (default: all)")
    cli.add_argument("--candidates", default=",".join(CANDIDATES), help="comma-separated")
    cli.add_argument("--select-splits", type=int_list, default=[0, 1], help="for stage 1")
    cli.add_argument("--select-only", action="store_true", help="stop after stage 1")
    args = cli.parse_args()
    names, candidates = args.datasets.split(","), args.candidates.split(",")
    for value, known in [(n, DATASETS) for n in names] + [(c, CANDIDATES) for c in candidates]:
        if value not in known:
            cli.error(f"unknown {value!r}; choose from {list(known)}")
    extra = [*args.overrides, *([f"trainer.max_epochs={args.epochs}"] if args.epochs else [])]
    root, clock = args.out / "uci", Stopwatch()

    scores: dict[str, dict[str, list[float]]] = {name: {} for name in names}
    if len(candidates) > 1 or args.select_only:
        jobs = [job(n, k, c, 0.2, extra) for n in names for c in candidates
                for k in args.select_splits]  # fmt: skip
        run_jobs(by_cost(jobs), root / "select", args.jobs,
                 lambda j, m: print(f"select {j.label}: {m['status']}"))  # fmt: skip
        for name in names:
            for c in candidates:
                runs = [root / "select" / f"{name}-{c}-split{k}" for k in args.select_splits]
                scores[name][c] = [last_logged(r, "val/nll") for r in runs]
    chosen = {n: min(candidates, key=lambda c: mean_se(scores[n].get(c, [0.0]))[0])
              for n in names}  # fmt: skip
    selection = select_table(names, candidates, scores, chosen)
    if args.select_only:
        write_report("uci_select", f"# UCI selection (validation only)\n\n{selection}", args.out)
        return

    splits = {n: args.splits or list(range(DATASETS[n][1])) for n in names}
    jobs = [job(n, k, chosen[n], 0.0, extra) for n in names for k in splits[n]]
    results = run_jobs(
        by_cost(jobs),
        root / "test",
        args.jobs,
        lambda j, m: print(f"test {j.label}: {m.get('test_nll', m.get('error'))}"),
    )
    runs = {n: [results[f"{n}-{chosen[n]}-split{k}"] for k in splits[n]] for n in names}
    text = (
        "# UCI regression benchmark\n\n"
        f"Every run: {list(COMMON)} (protein {list(PROTEIN)}), batch = max({MIN_BATCH}, "
        f"⌈n_train/{STEPS_PER_EPOCH}⌉); extra overrides {extra or 'none'}. Wall time "
        f"{clock.minutes():.1f} min with {args.jobs} worker(s), both stages.\n\n"
        f"{test_table(names, runs, chosen)}\n\n"
        f"## Stage 1: validation NLL per candidate (splits {args.select_splits})\n\n{selection}\n"
    )
    write_report("uci", text, args.out)


def test_table(names: list[str], runs: dict[str, list[dict[str, Any]]],
               chosen: dict[str, str]) -> str:  # fmt: skip
    rows, wins = [], 0
    for name in names:
        ll = [-r.get("test_nll", math.nan) for r in runs[name]]
        rmse = [r.get("test_rmse", math.nan) for r in runs[name]]
        fit = [r.get("fit_seconds", math.nan) for r in runs[name]]
        dropout_ll, dropout_rmse, pbp_ll, pbp_rmse = PUBLISHED[name]
        wins += mean_se(ll)[0] >= dropout_ll
        rows.append([name, chosen[name], str(len(ll)), format_mean_se(ll), f"{dropout_ll:.2f}",
                     f"{pbp_ll:.3f}", format_mean_se(rmse), f"{dropout_rmse:.2f}",
                     f"{pbp_rmse:.3f}", format_mean_se(fit, 1)])  # fmt: skip
    header = ["data set", "candidate", "splits", "test LL", "MC dropout", "PBP", "test RMSE",
              "MC dropout", "PBP", "fit s / split"]  # fmt: skip
    return (
        "Test LL (nats) and RMSE in original units, mean ± s.e. over splits; published columns "
        "from ../shared/data/uci/published.md (MC dropout: Gal & Ghahramani 2016 arXiv v6 "
        "Table 1; PBP: Hernández-Lobato & Adams 2015 Table 1), ± s.e. there.\n"
        f"Test LL at least MC dropout's on {wins} of {len(names)} data sets.\n\n"
        + markdown_table(header, rows)
    )


def select_table(
    names: list[str], candidates: list[str], scores: dict[str, dict[str, list[float]]],
    chosen: dict[str, str],
) -> str:  # fmt: skip
    if not any(scores.values()):
        return f"One candidate ({candidates[0]}): no selection stage."
    rows = [[name, *(format_mean_se(scores[name][c]) + (" ✓" if chosen[name] == c else "")
                     for c in candidates)] for name in names]  # fmt: skip
    return (
        "Validation NLL (standardised units, lower is better) on 20 % of each training split; "
        "✓ marks the candidate kept.\n"
        + "\n".join(f"- {c}: {list(CANDIDATES[c])}" for c in candidates)
        + "\n\n" + markdown_table(["data set", *candidates], rows)
    )  # fmt: skip


if __name__ == "__main__":
    main()
