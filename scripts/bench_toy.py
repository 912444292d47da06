"""Toy benchmark: BNN+LV vs BNN vs MLP vs the true generator, on both synthetic sets.

    python scripts/bench_toy.py [--seeds 0-2] [--datasets toy_bimodal] [--epochs N] [--jobs N]

Each (data set, model) pair is trained once per seed (the model seed; the data are fixed, so every
run meets the same test set and the same oracle). Writes outputs/benchmarks/toy.md.
Acceptance (issue 3): on toy_bimodal BNN+LV is within 0.15 nats of the oracle and at least 0.3
nats better than model=bnn.
"""

from __future__ import annotations

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

MODELS = ("bnn_lv", "bnn", "mlp")
# Per-data-set overrides, fixed in advance (not tuned on these test sets): toy_heteroscedastic
# keeps the project's defaults (the lead's tuning); toy_bimodal trains longer.
SETTINGS: dict[str, tuple[str, ...]] = {
    "toy_heteroscedastic": (),
    "toy_bimodal": ("trainer.max_epochs=1500",),
}


def main() -> None:
    cli = parser(__doc__.splitlines()[0])
    cli.add_argument("--seeds", type=int_list, default=[0, 1, 2], help="e.g. 0-4 or 0,3")
    cli.add_argument("--datasets", default=",".join(SETTINGS), help="comma-separated")
    cli.add_argument("--models", default=",".join(MODELS), help="comma-separated")
    args = cli.parse_args()
    datasets, models = args.datasets.split(","), args.models.split(",")
    for name in datasets:
        if name not in SETTINGS:
            cli.error(f"unknown data set {name!r}; choose from {list(SETTINGS)}")
    epochs = () if args.epochs is None else (f"trainer.max_epochs={args.epochs}",)
    jobs = [
        Job(
            f"{name}-{model}-seed{seed}",
            (
                f"data={name}",
                f"model={model}",
                f"seed={seed}",
                *SETTINGS[name],
                *epochs,
                *args.overrides,
            ),
        )
        for name in datasets
        for model in models
        for seed in args.seeds
    ]
    clock = Stopwatch()
    results = run_jobs(
        jobs,
        args.out / "toy",
        args.jobs,
        lambda job, m: print(f"{job.label}: {m.get('test_nll', m.get('error'))}"),
    )

    def values(name: str, model: str, key: str) -> list[float]:
        return [results[f"{name}-{model}-seed{s}"].get(key, float("nan")) for s in args.seeds]

    rows = []
    for name in datasets:
        oracle = values(name, models[0], "test_oracle_nll")[0]
        for model in models:
            nll = values(name, model, "test_nll")
            gap = mean_se(nll)[0] - oracle
            rows.append(
                [
                    name,
                    model,
                    format_mean_se(nll),
                    f"{oracle:.3f}",
                    f"{gap:+.3f}",
                    format_mean_se(values(name, model, "test_nll_standardised")),
                    format_mean_se(values(name, model, "test_rmse")),
                    format_mean_se(values(name, model, "fit_seconds"), 1),
                ]
            )
    table = markdown_table(
        [
            "data set",
            "model",
            "test NLL",
            "oracle NLL",
            "gap",
            "NLL (standardised)",
            "RMSE",
            "fit s",
        ],
        rows,
    )
    text = (
        "# Toy benchmark\n\n"
        f"Test NLL in original units, mean ± s.e. over seeds {args.seeds}; the oracle is the true "
        "conditional density on the same test set; gap = mean NLL − oracle NLL.\n"
        f"Extra overrides: {list(args.overrides) or 'none'}; epochs: "
        f"{args.epochs or 'per data set'}. Wall time {clock.minutes():.1f} min "
        f"({args.jobs} job(s) in parallel).\n\n{table}\n"
    )
    write_report("toy", text, args.out)


if __name__ == "__main__":
    main()
