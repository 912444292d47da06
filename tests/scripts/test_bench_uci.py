"""scripts/bench_uci.py: the jobs (every model row on the same splits and candidates), the tables,
and a tiny two-stage run on a synthetic data set in the UCI layout, grouped and alone, with the
same tables."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

from tests.scripts.conftest import grouped_and_alone, load_script


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    return load_script("bench_uci")


def test_job_selects_the_model_split_candidate_and_batch(bench: ModuleType) -> None:
    job = bench.job("yacht", "bnn_lv_het", 3, "e500-lr1e-2", 0.2, ["seed=1"])
    assert job.label == "yacht-bnn_lv_het-e500-lr1e-2-split3"
    assert job.overrides[:5] == (*bench.COMMON, "model=bnn_lv", "model.noise=heteroscedastic")
    assert "data.split=3" in job.overrides and "data.batch_size=32" in job.overrides  # 221 rows
    assert job.overrides[-2:] == ("trainer.check_val_every_n_epoch=${trainer.max_epochs}",
                                  "seed=1")  # fmt: skip
    assert "model.hidden=[100]" in bench.job("protein", "mlp", 0, "e250-lr3e-3", 0.0, []).overrides


def test_tables_put_the_models_side_by_side(bench: ModuleType) -> None:
    runs = {("yacht", "bnn_lv"): [{"test_nll": 1.0, "test_rmse": 1.0, "fit_seconds_per_run": 2.0}],
            ("yacht", "mlp"): [{"status": "failed"}],
            ("yacht", "ensemble"): [{"test_nll": 1.3, "test_rmse": 1.0}]}  # fmt: skip
    chosen = {pair: "e250-lr3e-3" for pair in runs}
    text = bench.test_tables(["yacht"], ["bnn_lv", "mlp", "ensemble"], runs, chosen)
    lines = text.splitlines()
    assert (
        "| data set | `bnn_lv` | `mlp` | `ensemble` | MC dropout | PBP | best published |" in lines
    )
    assert (
        "| yacht | -1.000 ± 0.000 | – | -1.300 ± 0.000 | -1.55 | -1.634 | -1.18 (Deep Ens.) |"
        in lines
    )
    assert "| yacht | e250-lr3e-3, 2.0 ± 0.0 | e250-lr3e-3, – |" in text
    # −1.00 ≥ MC dropout's −1.55 and the best published −1.18; −1.30 only the first; a failed
    # model: none. At least the ensemble's −1.30: bnn_lv.
    assert "`bnn_lv` 1 / 1, `mlp` 0 / 0, `ensemble` 1 / 0" in text
    assert "at least the ensemble's: `bnn_lv` 1, `mlp` 0." in text
    a, b = "e250-lr3e-3", "e500-lr1e-2"
    scores = {pair: {a: [0.5], b: [0.2]} for pair in runs}
    select = bench.select_table([a, b], scores, {pair: b for pair in runs}, [0])
    assert "| yacht | `mlp` | 0.500 ± 0.000 | 0.200 ± 0.000 ✓ |" in select
    assert select.startswith("## Stage 1: validation NLL per candidate (splits [0])")


def test_one_candidate_names_no_selection_splits(bench: ModuleType) -> None:
    """No stage 1 ran: the report must not claim selection splits (it once said [0, 1])."""
    select = bench.select_table(["e500-lr3e-3"], {("power", "mlp"): {}},
                                {("power", "mlp"): "e500-lr3e-3"}, [0, 1])  # fmt: skip
    assert select == "## Stage 1: none\n\nOne candidate (e500-lr3e-3): no selection stage."


def synthetic_uci(root: Path, splits: int = 2, rows: int = 50) -> None:
    """A data set in the UCI layout under root/yacht: y = x0 − x1 + noise, 40 training rows."""
    folder = root / "yacht"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((rows, 2))
    data = np.column_stack([x, x[:, 0] - x[:, 1] + 0.1 * rng.standard_normal(rows)])
    np.savetxt(folder / "data.txt", data)
    (folder / "index_features.txt").write_text("0\n1\n")
    (folder / "index_target.txt").write_text("2\n")
    (folder / "n_splits.txt").write_text(f"{splits}\n")
    for k in range(splits):
        order = np.random.default_rng(k).permutation(rows)
        np.savetxt(folder / f"index_train_{k}.txt", order[:40], fmt="%d")
        np.savetxt(folder / f"index_test_{k}.txt", order[40:], fmt="%d")


def test_tiny_two_stage_run_grouped_as_alone(
    bench: ModuleType, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    synthetic_uci(tmp_path / "data")
    argv = ["--datasets", "yacht", "--models", "bnn_lv,ensemble", "--splits", "0,1",
            "--candidates", "e250-lr3e-3,e500-lr1e-2", "--epochs", "2",
            f"data.root={tmp_path / 'data'}", "model.n_samples_test=2",
            "model.n_latent_test=2"]  # fmt: skip
    folders = grouped_and_alone(bench, argv, tmp_path, monkeypatch)
    for folder in folders.values():
        tested = sorted(p.name for p in (folder / "uci" / "test").iterdir())
        assert [name.split("-")[1] + name[-7:] for name in tested] == [
            "bnn_lv-split0", "bnn_lv-split1", "ensemble-split0", "ensemble-split1"
        ]  # fmt: skip
    grouped, alone = ((folders[name] / "uci.md").read_text() for name in ("grouped", "alone"))

    def figures(report: str) -> list[str]:
        """Every table row but the fit-time table's, and no timings."""
        rows = [line for line in report.splitlines() if line.startswith("| yacht |")]
        return [row for row in rows if ", " not in row]

    assert figures(grouped) == figures(alone) and len(figures(grouped)) == 4
    assert "– |" not in grouped  # every run finished, both stages
