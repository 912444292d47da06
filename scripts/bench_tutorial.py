"""Side by side on this machine: the published tutorial and `bnnlv train experiment=seed_tutorial`.

    python scripts/bench_tutorial.py [--repeats N] [--epochs E] [--out DIR] [bnnlv overrides]

The tutorial is lightning-uq-box 0.4.0's BNN+LV (scripts/tutorial/luq_seed.py), run in its own venv:
$LUQ_VENV, or ${TMPDIR:-/tmp}/venv-luq; build it once with ``bash scripts/tutorial/setup_luq.sh``
(needs Python 3.12; ~6 GB, outside the repo). Each repeat runs the tutorial, then bnnlv, each as a
fresh command the way a user runs it; the ratio of their fit times is taken within the repeat, so
the two always share the machine's state. Writes <out>/tutorial.md and tutorial.json. Timings mean
something only on an otherwise idle machine: the load average is recorded beside them.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from bnnlv.runs.benchmark import BENCH_DIR, bnnlv_train, markdown_table, write_report
from bnnlv.runs.results import write_json

TUTORIAL = Path(__file__).resolve().parent / "tutorial" / "luq_seed.py"
TARGET_RATIO = 1 / 8  # the target: bnnlv's fit ≤ 1/8 of the tutorial's, side by side
# What both runs share, and what differs between them (the report prints both lists).
SAME = ("560 training points, batch 50 (12 updates an epoch), K = 10 samples an update",
        "BNN [50, 50, 50] with the latent z as an input, amortised q(z | x, y) by a [20] network",
        "α = 10⁻³, Adam at lr 10⁻³, prior N(0, 1), posterior std 2.476·10⁻³ at the start",
        "prediction and scoring come after the fit and are not in its time")  # fmt: skip
DIFFERS = ("torch: the tutorial's venv has the version pip gives a new user (2.14.1, CUDA build), "
           "bnnlv's the CPU build of its Makefile",
           "threads: the tutorial uses torch's default (all cores), bnnlv its `threads` setting "
           "(1 unless overridden)",
           "validation: the tutorial none during its fit, bnnlv once after the last epoch",
           "logging: the tutorial logs every step, bnnlv every epoch")  # fmt: skip


def luq_python() -> Path:
    """The tutorial venv's python; SystemExit with one line saying how to build it if missing."""
    venv = Path(os.environ.get("LUQ_VENV") or Path(tempfile.gettempdir()) / "venv-luq")
    python = venv / "bin" / "python"
    check = [str(python), "-c", "import lightning_uq_box"]
    if not python.is_file() or subprocess.run(check, capture_output=True).returncode != 0:
        raise SystemExit(
            f"bench-tutorial: no lightning-uq-box venv at {venv}; build it once with "
            "`bash scripts/tutorial/setup_luq.sh` (needs Python 3.12) or set LUQ_VENV"
        )
    return python


def run_tutorial(python: Path, epochs: int) -> dict[str, Any]:
    """The tutorial's figures (its script's last output line), run in a scratch folder."""
    with tempfile.TemporaryDirectory() as scratch:
        done = subprocess.run(
            [str(python), str(TUTORIAL), str(epochs)],
            capture_output=True, text=True, cwd=scratch, check=False,
        )  # fmt: skip
    if done.returncode != 0:
        raise RuntimeError(f"the tutorial failed:\n{done.stderr[-3000:]}")
    return parse_last_json(done.stdout)


def parse_last_json(stdout: str) -> dict[str, Any]:
    """The JSON object on the last non-empty line of a command's output."""
    lines = [line for line in stdout.splitlines() if line.strip()]
    if not lines:
        raise RuntimeError("the tutorial printed nothing")
    result: dict[str, Any] = json.loads(lines[-1])
    return result


def render(report: dict[str, Any]) -> str:
    """The markdown report: one row per repeat, the median ratio against the target, the lists."""
    rows = []
    for i, (tutorial, ours) in enumerate(zip(report["tutorial"], report["bnnlv"], strict=True)):
        rows.append([
            str(i + 1), f"{tutorial['fit_s']:.1f}", f"{ours['fit_seconds']:.1f}",
            f"{ours['fit_seconds'] / tutorial['fit_s']:.3f}", f"{tutorial['nll']:.3f}",
            f"{ours['test_nll_standardised']:.3f}",
        ])  # fmt: skip
    header = ["repeat", "tutorial fit (s)", "bnnlv fit (s)", "ratio", "tutorial test NLL",
              "bnnlv test NLL"]  # fmt: skip
    ratio = median_ratio(report)
    verdict = "meets" if ratio <= TARGET_RATIO else "misses"
    load = ", ".join(f"{a:.1f}/{b:.1f}" for a, b in zip(*report["load"], strict=True))
    return "\n".join([
        "# The published tutorial vs `bnnlv train experiment=seed_tutorial`, side by side",
        "",
        f"{report['epochs']} epochs; fit seconds of each command (Lightning's `fit` alone), test "
        "NLL in standardised units (uncertainty-toolbox for the tutorial, "
        "`test_nll_standardised` for bnnlv). Load average before/after (1, 5, 15 min): "
        f"{load}. bnnlv's extra overrides: {' '.join(report.get('overrides', [])) or 'none'}.",
        "",
        markdown_table(header, rows),
        "",
        f"Median fit-time ratio bnnlv / tutorial: **{ratio:.3f}**; target ≤ {TARGET_RATIO:.3f} "
        f"({verdict} it).",
        "",
        "The same in both: " + "; ".join(SAME) + ".",
        "",
        "What differs: " + "; ".join(DIFFERS) + ".",
    ])  # fmt: skip


def median_ratio(report: dict[str, Any]) -> float:
    return statistics.median(
        ours["fit_seconds"] / tutorial["fit_s"]
        for tutorial, ours in zip(report["tutorial"], report["bnnlv"], strict=True)
    )


def main() -> None:
    cli = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    cli.add_argument("--repeats", type=int, default=1, help="tutorial-then-bnnlv pairs to run")
    cli.add_argument("--epochs", type=int, default=250, help="epochs of both (250: the tutorial)")
    cli.add_argument("--out", type=Path, default=BENCH_DIR, help="folder for tutorial.md/.json")
    cli.add_argument("overrides", nargs="*", help="extra Hydra overrides for bnnlv, e.g. threads=2")
    args = cli.parse_args()
    if args.repeats <= 0 or args.epochs <= 0:
        raise SystemExit(
            f"--repeats and --epochs must be positive, got {args.repeats}, {args.epochs}"
        )
    python = luq_python()
    load_before = os.getloadavg()
    report: dict[str, Any] = {"epochs": args.epochs, "overrides": args.overrides, "tutorial": [],
                              "bnnlv": []}  # fmt: skip
    overrides = ["experiment=seed_tutorial", "progress_bar=false",
                 f"trainer.max_epochs={args.epochs}", *args.overrides]  # fmt: skip
    for i in range(args.repeats):
        report["tutorial"].append(run_tutorial(python, args.epochs))
        report["bnnlv"].append(bnnlv_train(overrides, args.out / "tutorial_runs" / f"bnnlv_{i}"))
    report["load"] = [load_before, os.getloadavg()]
    write_json(args.out / "tutorial.json", report)
    write_report("tutorial", render(report), args.out)


if __name__ == "__main__":
    main()
