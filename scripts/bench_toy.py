"""Toy benchmark: BNN+LV beside the peers a user would pick, on both synthetic sets, same splits.

    python scripts/bench_toy.py [--seeds 0-2] [--datasets toy_bimodal] [--models bnn_lv,het_mlp]
                                [--candidates shipped,e500] [--epochs N] [--jobs N] [--no-group]
                                [overrides ...]

Each (data set, model, candidate) is trained once per seed (the model seed; the data are fixed, so
every run meets the same splits, the same test set and the same true generator); the seeds of one
candidate train together on the replica axis (``--no-group``: one after another), the longest
first. Every model gets the same budget, the candidates of CANDIDATES below, and keeps per data
set the one with the lowest mean validation NLL over the seeds (bnnlv.runs.candidates, as
scripts/bench_uci.py). The toys
have their own validation split, so, unlike UCI's, the selection needs no second stage: the test
figures reported are those of the kept candidate's runs. Writes outputs/benchmarks/toy.md.
Targets (issue 14), test NLL in standardised units: on toy_heteroscedastic the best BNN+LV row ≤
the ensemble's and the default bnn_lv ≤ 0.22; on toy_bimodal BNN+LV at least 0.7 nats better than
the ensemble and within 0.10 of the true generator."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from bnnlv.runs import candidates as budget
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
Overrides = tuple[str, ...]


def every(overrides: Overrides) -> dict[str, Overrides]:
    """One candidate that is the same for every model row."""
    return {model: overrides for model in MODELS}


# The budget: candidate → the overrides it adds to each model row, the same number for every row
# (a model-specific candidate names every row). Chosen per data set and model by the mean
# validation NLL over the seeds, on the data set's own validation split (80 points).
# "own" is each kind of model's third try, the best on validation of a short search on
# toy_heteroscedastic (scripts/README.md, "Toy benchmark with a budget of candidates"): a slower
# rate, and for the Bayesian rows only the last layer Bayesian (at N = 560 the KL of every
# layer's weights crowds out the fit).
SLOWER: Overrides = ("model.lr=3e-3",)
LAST_LAYER: Overrides = ("model.stochastic_layers=[-1]", *SLOWER)
CANDIDATES: dict[str, dict[str, Overrides]] = {
    "shipped": every(()),
    "e500": every(("trainer.max_epochs=500",)),
    "own": {"bnn_lv": LAST_LAYER, "bnn_lv_het": LAST_LAYER, "bnn": LAST_LAYER, "mlp": SLOWER,
            "het_mlp": SLOWER, "ensemble": SLOWER},
}  # fmt: skip
Results = dict[str, dict[str, Any]]
# Fit seconds per run of each row, 1,500 epochs, its three seeds trained together (the idle 2-core
# box, 29 Nov): the cost model that starts the longest groups first (by_cost).
FIT_SECONDS = {"bnn_lv": 19.5, "bnn_lv_het": 19.4, "bnn": 16.1, "mlp": 6.1, "het_mlp": 6.5,
               "ensemble": 9.6}  # fmt: skip
SHIPPED_EPOCHS = 1500  # trainer.max_epochs of the shipped configs


def label(dataset: str, model: str, candidate: str, seed: int) -> str:
    return f"{dataset}-{model}-{candidate}-seed{seed}"


def make_jobs(
    datasets: Sequence[str], models: Sequence[str], candidates: Sequence[str],
    seeds: Sequence[int], extra: Sequence[str],
) -> list[Job]:  # fmt: skip
    """One run per (data set, model row, candidate, seed); ``extra`` overrides go last, so they
    win."""
    return [
        Job(
            label(name, model, candidate, seed),
            (f"data={name}", *MODELS[model], *CANDIDATES[candidate][model], f"seed={seed}", *extra),
        )
        for name in datasets
        for model in models
        for candidate in candidates
        for seed in seeds
    ]


def by_cost(jobs: Sequence[Job]) -> list[Job]:
    """Longest runs first, so that a pool of workers ends together (the table keeps its order).
    The cost model is rough: the row's FIT_SECONDS × the run's epochs (its last
    ``trainer.max_epochs`` override, else SHIPPED_EPOCHS)."""

    def cost(job: Job) -> float:
        epochs = int(job.values.get("trainer.max_epochs", SHIPPED_EPOCHS))
        return FIT_SECONDS[job.label.split("-")[1]] * epochs

    return sorted(jobs, key=cost, reverse=True)


def val_standardised(metrics: dict[str, Any]) -> float:
    """The run's validation NLL in standardised units (metrics.json has it in original units,
    which differ from the standardised ones by the test set's same shift, log s_y); nan for a
    failed run."""
    try:
        return metrics["val_nll"] - (metrics["test_nll"] - metrics["test_nll_standardised"])
    except KeyError:
        return math.nan


def oracle(results: Results, dataset: str) -> dict:
    """The true generator's test NLL, original and standardised, from any run of ``dataset``
    that has it (the test set is the same for every run of a data set); nan when none finished."""
    for run, metrics in results.items():
        if run.startswith(f"{dataset}-") and "test_oracle_nll" in metrics:
            return {
                "orig": metrics["test_oracle_nll"],
                "std": metrics["test_oracle_nll_standardised"],
            }
    return {"orig": math.nan, "std": math.nan}


def render(
    results: Results, datasets: Sequence[str], models: Sequence[str], candidates: Sequence[str],
    seeds: Sequence[int], note: str,
) -> str:  # fmt: skip
    """The report: per data set and model the candidate with the lowest mean validation NLL, its
    test NLL side by side (original units, standardised in brackets), then its gap to the true
    generator, RMSE and fit time, and every candidate's validation NLL."""

    def runs(name: str, model: str, candidate: str, key: str) -> list[float]:
        return [results[label(name, model, candidate, s)].get(key, math.nan) for s in seeds]

    pairs = [(name, model) for name in datasets for model in models]
    scores = {
        (name, model): {
            c: [val_standardised(results[label(name, model, c, s)]) for s in seeds]
            for c in candidates
        }
        for name, model in pairs
    }
    chosen = {pair: budget.choose(scores[pair], candidates) for pair in pairs}
    oracles = {name: oracle(results, name) for name in datasets}

    def kept(name: str, model: str, key: str, digits: int = 3) -> str:
        return format_mean_se(runs(name, model, chosen[name, model], key), digits)

    side_by_side = [
        [f"`{model}`", *(f"{kept(n, model, 'test_nll')} ({kept(n, model, 'test_nll_standardised')})"
                         for n in datasets)]
        for model in models
    ]  # fmt: skip
    side_by_side.append(
        ["true generator", *(f"{o['orig']:.3f} ({o['std']:.3f})" for o in oracles.values())]
    )

    def gap(name: str, model: str) -> str:
        nll = mean_se(runs(name, model, chosen[name, model], "test_nll"))[0]
        return f"{nll - oracles[name]['orig']:+.3f}"

    details = [
        [name, f"`{model}`", chosen[name, model], gap(name, model),
         kept(name, model, "test_rmse"), kept(name, model, "fit_seconds_per_run", 1)]
        for name, model in pairs
    ]  # fmt: skip
    return (
        "# Toy benchmark\n\n"
        f"Test NLL (nats per point), mean ± s.e. over seeds {list(seeds)}, in original units "
        "(standardised in brackets), of the candidate each model kept; every model meets the "
        f"same splits and test set. Budget: {budget_text(candidates)}\n\n"
        + markdown_table(["model", *datasets], side_by_side)
        + "\n\ngap = mean test NLL − the true generator's (the same in either unit). "
        "fit s / run: wall time of training, divided among the runs trained together.\n\n"
        + markdown_table(["data set", "model", "kept", "gap", "RMSE", "fit s / run"], details)
        + "\n\nValidation NLL (standardised, mean ± s.e. over the seeds) of every candidate; "
        "✓ marks the one kept.\n\n"
        + budget.selection_table(scores, candidates, chosen)
        + f"\n\n{note}\n"
    )


def budget_text(candidates: Sequence[str]) -> str:
    """The budget in words, with every candidate's overrides per model row."""
    lines = []
    for c in candidates:
        rows = CANDIDATES[c]
        if len(set(rows.values())) == 1:
            lines.append(f"- {c}: {list(next(iter(rows.values()))) or 'shipped defaults'}")
        else:
            lines.append(f"- {c}: " + "; ".join(f"`{m}` {list(o) or 'defaults'}"
                                               for m, o in rows.items()))  # fmt: skip
    return (
        f"the same {len(candidates)} candidate(s) for every model, kept per data set and model by "
        "the mean validation NLL over the seeds (the data set's own validation split; the test "
        "split never enters the choice); 1,500 epochs unless a candidate says otherwise:\n"
        + "\n".join(lines)
    )


def main() -> None:
    cli = parser(__doc__.splitlines()[0])
    cli.add_argument("--seeds", type=int_list, default=[0, 1, 2], help="e.g. 0-4 or 0,3")
    cli.add_argument("--datasets", default=",".join(DATASETS), help="comma-separated")
    cli.add_argument("--models", default=",".join(MODELS), help="comma-separated rows")
    budget.add_option(cli, list(CANDIDATES))
    args = cli.parse_args()
    datasets = choices(cli, args.datasets, DATASETS, "data set")
    models = choices(cli, args.models, list(MODELS), "model row")
    candidates = budget.chosen_names(cli, args, list(CANDIDATES))
    epochs = epochs_override(args)
    clock = Stopwatch()
    results = run_jobs(
        by_cost(make_jobs(datasets, models, candidates, args.seeds, (*epochs, *args.overrides))),
        args.out / "toy",
        args.jobs,
        lambda job, m: print(f"{job.label}: {m.get('test_nll_standardised', m.get('error'))}"),
        args.group,
    )
    note = run_note(args, clock)
    text = render(results, datasets, models, candidates, args.seeds, note)
    write_report("toy", text, args.out)


if __name__ == "__main__":
    main()
