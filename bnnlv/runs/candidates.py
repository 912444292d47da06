"""A budget of hyperparameter candidates, chosen on validation only: shared by the benchmark
scripts (``scripts/bench_uci.py``, ``scripts/bench_toy.py``).

Every (data set, model) pair meets the same named candidates; each candidate's runs give a
validation NLL apiece, and the pair keeps the candidate with the lowest mean. How the validation
figures are made (a held-out part of the training split, or a data set's own validation split) is
the script's; the test rows never enter the choice.
"""

from __future__ import annotations

import argparse
import csv
import math
from collections.abc import Mapping, Sequence
from pathlib import Path

from bnnlv.runs.benchmark import choices, format_mean_se, markdown_table, mean_se

Pair = tuple[str, str]  # (data set, model row)
Scores = Mapping[str, Sequence[float]]  # candidate → validation NLL of each of its runs


def add_option(cli: argparse.ArgumentParser, names: Sequence[str]) -> None:
    """``--candidates``: which of ``names`` to choose from (default all), the same for every
    model; read it with :func:`chosen_names`."""
    cli.add_argument(
        "--candidates",
        default=",".join(names),
        help=f"comma-separated, from {','.join(names)}; the same for every model",
    )


def chosen_names(
    cli: argparse.ArgumentParser, args: argparse.Namespace, names: Sequence[str]
) -> list[str]:
    """The ``--candidates`` given, as a list; an unknown name ends the script (exit 2)."""
    return choices(cli, args.candidates, names, "candidate")


def choose(scores: Scores, candidates: Sequence[str]) -> str:
    """The candidate with the lowest mean validation NLL over its finished runs; one with no
    finished run is never kept over one with a score, and ties (no scores at all: a single
    candidate, no selection stage) keep the first."""

    def mean(candidate: str) -> float:
        value = mean_se(scores.get(candidate, []))[0]
        return math.inf if math.isnan(value) else value

    return min(candidates, key=mean)


def selection_table(
    scores: Mapping[Pair, Scores], candidates: Sequence[str], chosen: Mapping[Pair, str]
) -> str:
    """Validation NLL of every candidate (mean ± s.e. over its runs), a row per (data set,
    model), ✓ on the candidate kept."""
    rows = [
        [name, f"`{model}`",
         *(format_mean_se(by_candidate.get(c, [])) + (" ✓" if chosen[name, model] == c else "")
           for c in candidates)]
        for (name, model), by_candidate in scores.items()
    ]  # fmt: skip
    return markdown_table(["data set", "model", *candidates], rows)


def last_logged(run_dir: Path, key: str) -> float:
    """The last value of ``key`` (e.g. val/nll, standardised units) in the run's metrics log."""
    path = run_dir / "logs" / "metrics.csv"
    if not path.is_file():
        return float("nan")
    with path.open() as handle:
        logged = [row[key] for row in csv.DictReader(handle) if row.get(key)]
    return float(logged[-1]) if logged else float("nan")
