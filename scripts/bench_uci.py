"""UCI regression benchmark: test LL and RMSE over the published splits, every model side by side.

    python scripts/bench_uci.py [--datasets boston,yacht] [--models bnn_lv,ensemble] [--splits 0-2]
                                [--candidates e500-lr3e-3] [--select-splits 0,1] [--select-only]
                                [--jobs N] [--no-group] [overrides ...]

Protocol (../shared/data/uci/README.md): the published 90/10 splits, inputs and target standardised
with training statistics, one hidden layer of 50 units (100 for protein), metrics in original
units, mean ± s.e. (std ddof = 0 / √n) over splits. Every model row of
bnnlv.runs.benchmark.MODELS (BNN+LV with either noise model, bnn, mlp, het_mlp, ensemble) meets the
same splits and the same budget of candidates.

Hyperparameters are chosen on VALIDATION rows only. Stage 1 (skipped when one candidate is given)
trains every candidate of CANDIDATES on the splits ``--select-splits`` with 20 % of each training
split held out (``data.val_frac=0.2``, as PBP and the MC-dropout grid search do) and keeps, per
data set and model, the candidate with the lowest mean validation NLL. Stage 2 trains that
candidate on the whole training split of every benchmark split (``data.val_frac=0``) and reports
the test figures. The test rows are never read by stage 1. The splits of one (data set, model,
candidate) train together on the replica axis (``--no-group``: one after another).
Writes outputs/benchmarks/uci.md; scripts/README.md has the measured durations.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

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
# published.md's quick comparison: the highest test LL of PBP, MC dropout (arXiv v6), Deep
# Ensembles (−NLL) and the 2018 MC-dropout grid search (DUE-2018), and whose it is.
BEST_PUBLISHED = {
    "boston": (-2.40, "2018 grid"),
    "concrete": (-2.93, "2018 grid"),
    "energy": (-1.21, "2018 grid"),
    "kin8nm": (1.20, "Deep Ens."),
    "naval": (5.63, "Deep Ens."),
    "power": (-2.79, "Deep Ens."),
    "protein": (-2.83, "Deep Ens."),
    "wine": (-0.93, "MC dropout, 2018 grid"),
    "yacht": (-1.18, "Deep Ens."),
}
# Shared by every run of every model row (bnnlv.runs.benchmark.MODELS): one hidden layer
# (PROTEIN widens it), α = 0.5 for the Bayesian rows.
COMMON = ("data=uci", "model.hidden=[50]", "alpha=0.5")
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


def job(name: str, model: str, split: int, candidate: str, val_frac: float,
        extra: Sequence[str]) -> Job:  # fmt: skip
    folder, _, n_rows = DATASETS[name]
    n_train = math.floor(n_rows * (1 - val_frac))
    overrides = [
        *COMMON, *MODELS[model], f"data.name={folder}", f"data.split={split}",
        f"data.val_frac={val_frac}", f"data.batch_size={batch_size(n_train)}",
        *CANDIDATES[candidate], *(PROTEIN if name == "protein" else ()),
    ]  # fmt: skip
    if val_frac:  # validate once, after the last epoch
        overrides.append("trainer.check_val_every_n_epoch=${trainer.max_epochs}")
    return Job(f"{name}-{model}-{candidate}-split{split}", (*overrides, *extra))


def by_cost(jobs: list[Job]) -> list[Job]:
    """Longest runs first, so that a pool of workers ends together. The cost model is rough:
    steps × (2 ms + 6 µs per point in the batch), one thread."""

    def cost(j: Job) -> float:
        value = j.values
        n = math.floor(DATASETS[j.label.split("-")[0]][2] * (1 - float(value["data.val_frac"])))
        batch = int(value["data.batch_size"])
        return int(value["trainer.max_epochs"]) * math.ceil(n / batch) * (2e-3 + 6e-6 * batch)

    return sorted(jobs, key=cost, reverse=True)


def main() -> None:
    cli = parser(__doc__.splitlines()[0])
    default = ",".join(n for n in DATASETS if n != "protein")
    cli.add_argument("--datasets", default=default, help=f"from {','.join(DATASETS)}")
    cli.add_argument("--models", default=",".join(MODELS), help="comma-separated rows")
    cli.add_argument("--splits", type=int_list, default=None, help="e.g. 0-2 (default: all)")
    budget.add_option(cli, list(CANDIDATES))
    cli.add_argument("--select-splits", type=int_list, default=[0, 1], help="for stage 1")
    cli.add_argument("--select-only", action="store_true", help="stop after stage 1")
    args = cli.parse_args()
    names = choices(cli, args.datasets, list(DATASETS), "data set")
    models = choices(cli, args.models, list(MODELS), "model row")
    candidates = budget.chosen_names(cli, args, list(CANDIDATES))
    extra = [*args.overrides, *epochs_override(args)]
    root, clock = args.out / "uci", Stopwatch()
    pairs = [(n, m) for n in names for m in models]

    scores: dict[tuple[str, str], dict[str, list[float]]] = {pair: {} for pair in pairs}
    if len(candidates) > 1 or args.select_only:
        jobs = [job(n, m, k, c, 0.2, extra) for n, m in pairs for c in candidates
                for k in args.select_splits]  # fmt: skip
        run_jobs(by_cost(jobs), root / "select", args.jobs,
                 lambda j, r: print(f"select {j.label}: {r['status']}"), args.group)  # fmt: skip
        for (n, m), by_candidate in scores.items():
            for c in candidates:
                runs = [root / "select" / f"{n}-{m}-{c}-split{k}" for k in args.select_splits]
                by_candidate[c] = [budget.last_logged(r, "val/nll") for r in runs]
    chosen = {pair: budget.choose(scores[pair], candidates) for pair in pairs}
    selection = select_table(candidates, scores, chosen, args.select_splits)
    if args.select_only:
        write_report("uci_select", f"# UCI selection (validation only)\n\n{selection}", args.out)
        return

    splits = {n: args.splits or list(range(DATASETS[n][1])) for n in names}
    jobs = [job(n, m, k, chosen[n, m], 0.0, extra) for n, m in pairs for k in splits[n]]
    results = run_jobs(
        by_cost(jobs),
        root / "test",
        args.jobs,
        lambda j, r: print(f"test {j.label}: {r.get('test_nll', r.get('error'))}"),
        args.group,
    )
    runs = {(n, m): [results[f"{n}-{m}-{chosen[n, m]}-split{k}"] for k in splits[n]]
            for n, m in pairs}  # fmt: skip
    text = (
        "# UCI regression benchmark\n\n"
        f"Every run: {list(COMMON)} (protein {list(PROTEIN)}), batch = max({MIN_BATCH}, "
        f"⌈n_train/{STEPS_PER_EPOCH}⌉). Budget: the same {len(candidates)} candidate(s) for "
        "every model, chosen per data set and model on validation rows only. "
        f"{run_note(args, clock)} (Both stages.)\n\n"
        f"{test_tables(names, models, runs, chosen)}\n\n{selection}\n"
    )
    write_report("uci", text, args.out)


def test_tables(names: list[str], models: list[str], runs: dict[tuple[str, str], list[dict]],
                chosen: dict[tuple[str, str], str]) -> str:  # fmt: skip
    """Test LL and RMSE side by side (a column per model, then the published ones), and the
    candidate each model kept with its fit time."""

    def cells(n: str, m: str, key: str, sign: float = 1.0, digits: int = 3) -> str:
        return format_mean_se([sign * r.get(key, math.nan) for r in runs[n, m]], digits)

    def ll(n: str, m: str) -> float:
        return mean_se([-r.get("test_nll", math.nan) for r in runs[n, m]])[0]

    def at_least(m: str, bar: dict[str, float]) -> int:
        return sum(ll(n, m) >= bar[n] for n in names)

    header = ["data set", *(f"`{m}`" for m in models), "MC dropout", "PBP"]
    ll_rows = [[n, *(cells(n, m, "test_nll", -1.0) for m in models), f"{PUBLISHED[n][0]:.2f}",
                f"{PUBLISHED[n][2]:.3f}", "{:.2f} ({})".format(*BEST_PUBLISHED[n])]
               for n in names]  # fmt: skip
    rmse_rows = [[n, *(cells(n, m, "test_rmse") for m in models),
                  f"{PUBLISHED[n][1]:.2f}", f"{PUBLISHED[n][3]:.3f}"] for n in names]  # fmt: skip
    dropout = {n: PUBLISHED[n][0] for n in names}
    best = {n: BEST_PUBLISHED[n][0] for n in names}
    counts = ", ".join(f"`{m}` {at_least(m, dropout)} / {at_least(m, best)}" for m in models)
    if "ensemble" in models:
        ensemble = {n: ll(n, "ensemble") for n in names}
        counts += "; at least the ensemble's: " + ", ".join(
            f"`{m}` {at_least(m, ensemble)}" for m in models if m != "ensemble"
        )
    kept = [[n, *(f"{chosen[n, m]}, {cells(n, m, 'fit_seconds_per_run', digits=1)}"
                  for m in models)] for n in names]  # fmt: skip
    return (
        "Test LL (nats, higher is better) and RMSE in original units, mean ± s.e. over splits, "
        "the same splits for every model; published columns from ../shared/data/uci/"
        "published.md (MC dropout: Gal & Ghahramani 2016 arXiv v6 Table 1; PBP: "
        "Hernández-Lobato & Adams 2015 Table 1), ± s.e. there; best published: the highest of "
        "PBP, MC dropout, Deep Ensembles and the 2018 MC-dropout grid search.\n"
        f"Data sets (of {len(names)}) where the test LL is at least MC dropout's, and at least "
        f"the best published: {counts}.\n\n"
        + markdown_table([*header, "best published"], ll_rows)
        + "\n\nTest RMSE:\n\n"
        + markdown_table(header, rmse_rows)
        + "\n\nCandidate kept, and fit seconds per split (the fit divided among the splits "
        "trained together):\n\n" + markdown_table(["data set", *(f"`{m}`" for m in models)], kept)
    )


def select_table(
    candidates: list[str], scores: dict[tuple[str, str], dict[str, list[float]]],
    chosen: dict[tuple[str, str], str], splits: list[int],
) -> str:  # fmt: skip
    """The stage-1 section: its heading names the selection splits only when stage 1 ran."""
    if not any(scores.values()):
        return f"## Stage 1: none\n\nOne candidate ({candidates[0]}): no selection stage."
    return (
        f"## Stage 1: validation NLL per candidate (splits {splits})\n\n"
        "Validation NLL (standardised units, lower is better) on 20 % of each training split; "
        "✓ marks the candidate kept.\n"
        + "\n".join(f"- {c}: {list(CANDIDATES[c])}" for c in candidates)
        + "\n\n" + budget.selection_table(scores, candidates, chosen)
    )  # fmt: skip


if __name__ == "__main__":
    main()
