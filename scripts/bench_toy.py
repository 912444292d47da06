"""Toy benchmark: BNN+LV beside the peers a user would pick, on both synthetic sets, same splits.

    python scripts/bench_toy.py [--seeds 0-2] [--datasets toy_bimodal] [--models bnn_lv,het_mlp]
                                [--epochs N] [--jobs N] [--no-group] [overrides ...]

Each (data set, model) pair is trained once per seed (the model seed; the data are fixed, so every
run meets the same splits, the same test set and the same true generator); the seeds of a pair
train together on the replica axis (``--no-group``: one after another). Every model gets the
same hyperparameter budget, BUDGET below. Writes outputs/benchmarks/toy.md.
Targets (issue 14), test NLL in standardised units: on toy_heteroscedastic the best BNN+LV row ≤
the ensemble's and the default bnn_lv ≤ 0.22; on toy_bimodal BNN+LV at least 0.7 nats better than
the ensemble and within 0.10 of the true generator.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from bnnlv.runs.benchmark import (
    MODELS,
    Job,
    Stopwatch,
    choices,
    epochs_override,
    format_mean_se,
    int_list,
    markdown_table,
    mean_se,
    parser,
    run_jobs,
    run_note,
    write_report,
)

DATASETS = ("toy_heteroscedastic", "toy_bimodal")
BUDGET = (
    "one candidate per model, its shipped defaults (configs/model/<name>.yaml and the trainer's "
    "1,500 epochs; `bnn_lv_het` is `bnn_lv` with `model.noise=heteroscedastic`, `ensemble` is 5 "
    "`het_mlp`s trained together); nothing was "
    "tuned on these data, so the validation split chose nothing"
)
Results = dict[str, dict[str, Any]]


def label(dataset: str, model: str, seed: int) -> str:
    return f"{dataset}-{model}-seed{seed}"


def make_jobs(
    datasets: Sequence[str], models: Sequence[str], seeds: Sequence[int], extra: Sequence[str]
) -> list[Job]:
    """One run per (data set, model row, seed); ``extra`` overrides go last, so they win."""
    return [
        Job(
            label(name, model, seed),
            (f"data={name}", *MODELS[model], f"seed={seed}", *extra),
        )
        for name in datasets
        for model in models
        for seed in seeds
    ]


def values(results: Results, dataset: str, model: str, seeds: Sequence[int], key: str) -> list:
    """``key`` of every seed's run (nan where the run failed or lacks it)."""
    return [results[label(dataset, model, s)].get(key, math.nan) for s in seeds]


def oracle(results: Results, dataset: str, models: Sequence[str], seeds: Sequence[int]) -> dict:
    """The true generator's test NLL, original and standardised, from any run that has it (the
    test set is the same for every run of a data set); nan when no run finished."""
    for model in models:
        for seed in seeds:
            metrics = results[label(dataset, model, seed)]
            if "test_oracle_nll" in metrics:
                return {
                    "orig": metrics["test_oracle_nll"],
                    "std": metrics["test_oracle_nll_standardised"],
                }
    return {"orig": math.nan, "std": math.nan}


def render(
    results: Results,
    datasets: Sequence[str],
    models: Sequence[str],
    seeds: Sequence[int],
    note: str,
) -> str:
    """The report: test NLL side by side (original units, standardised in brackets), then per
    data set the gap to the true generator, RMSE and fit time."""
    oracles = {name: oracle(results, name, models, seeds) for name in datasets}

    def cell(name: str, model: str) -> str:
        nll = format_mean_se(values(results, name, model, seeds, "test_nll"))
        std = format_mean_se(values(results, name, model, seeds, "test_nll_standardised"))
        return f"{nll} ({std})"

    side_by_side = [[f"`{model}`", *(cell(name, model) for name in datasets)] for model in models]
    side_by_side.append(
        ["true generator", *(f"{o['orig']:.3f} ({o['std']:.3f})" for o in oracles.values())]
    )
    details = []
    for name in datasets:
        for model in models:
            nll = values(results, name, model, seeds, "test_nll")
            details.append(
                [
                    name,
                    f"`{model}`",
                    f"{mean_se(nll)[0] - oracles[name]['orig']:+.3f}",
                    format_mean_se(values(results, name, model, seeds, "test_rmse")),
                    format_mean_se(values(results, name, model, seeds, "fit_seconds_per_run"), 1),
                ]
            )
    return (
        "# Toy benchmark\n\n"
        f"Test NLL (nats per point), mean ± s.e. over seeds {list(seeds)}, in original units "
        "(standardised in brackets); every model meets the same splits and test set. "
        f"Budget: {BUDGET}.\n\n"
        + markdown_table(["model", *datasets], side_by_side)
        + "\n\ngap = mean test NLL − the true generator's (the same in either unit). "
        "fit s / run: wall time of training, divided among the runs trained together.\n\n"
        + markdown_table(["data set", "model", "gap", "RMSE", "fit s / run"], details)
        + f"\n\n{note}\n"
    )


def main() -> None:
    cli = parser(__doc__.splitlines()[0])
    cli.add_argument("--seeds", type=int_list, default=[0, 1, 2], help="e.g. 0-4 or 0,3")
    cli.add_argument("--datasets", default=",".join(DATASETS), help="comma-separated")
    cli.add_argument("--models", default=",".join(MODELS), help="comma-separated rows")
    args = cli.parse_args()
    datasets = choices(cli, args.datasets, DATASETS, "data set")
    models = choices(cli, args.models, list(MODELS), "model row")
    epochs = epochs_override(args)
    clock = Stopwatch()
    results = run_jobs(
        make_jobs(datasets, models, args.seeds, (*epochs, *args.overrides)),
        args.out / "toy",
        args.jobs,
        lambda job, m: print(f"{job.label}: {m.get('test_nll_standardised', m.get('error'))}"),
        args.group,
    )
    note = run_note(args, clock)
    write_report("toy", render(results, datasets, models, args.seeds, note), args.out)


if __name__ == "__main__":
    main()
