"""The sweep summary of bnnlv active: learning curves, areas and paired differences."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import pytest

from bnnlv.active.summary import learning_curves
from bnnlv.runs.sweep import summarize
from tests.active.test_loop import TINY_ACTIVE
from tests.cli_inprocess import run_bnnlv
from tests.runs.test_sweep import make_job

AREAS = {("epistemic", 0): 2.0, ("epistemic", 1): 2.4, ("epistemic", 2): 2.1,
         ("random", 0): 2.5, ("random", 1): 2.6, ("random", 2): 2.9}  # fmt: skip


def fake_sweep(root: Path) -> Path:
    """Six finished jobs: acquisition × seed, each with a flat learning curve at its area."""
    for job, ((acquisition, seed), area) in enumerate(AREAS.items()):
        metrics = {"status": "ok", "test_nll": area, "test_nll_area": area}
        make_job(root, job, [f"active.acquisition={acquisition}", f"seed={seed}"], metrics)
        folder = root / str(job)
        pd.DataFrame({"n_labelled": [10, 20, 30], "test_nll": [area] * 3}).to_csv(
            folder / "active.csv", index=False
        )
    return root


def test_areas_and_paired_differences_against_random(tmp_path: Path) -> None:
    sweep = fake_sweep(tmp_path / "sweep")
    lines = learning_curves(summarize(sweep, "test_nll_area"), ["active.acquisition"], sweep)
    table = pd.read_csv(sweep / "areas.csv").set_index("active.acquisition")
    assert table.loc["epistemic", "area_mean"] == pytest.approx(6.5 / 3)
    # differences −0.5, −0.2, −0.8: mean −0.5, sample std 0.3, se 0.3/√3
    assert table.loc["epistemic", "vs_random_mean"] == pytest.approx(-0.5)
    assert table.loc["epistemic", "vs_random_se"] == pytest.approx(0.3 / math.sqrt(3))
    assert table.loc["epistemic", "vs_random_in_se"] == pytest.approx(0.5 / (0.3 / math.sqrt(3)))
    assert table.loc["epistemic", "vs_random_pairs"] == 3
    assert math.isnan(table.loc["random", "vs_random_mean"])
    assert "| epistemic | 3 | 2.1667 ± 0.1202 | -0.5000 ± 0.1732 | 2.9 |" in lines
    assert (sweep / "learning_curves.png").read_bytes()[:4] == b"\x89PNG"


def test_a_sweep_ends_in_one_summary_with_the_learning_curves(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sweep = tmp_path / "sweep"
    code = run_bnnlv(monkeypatch, "active", "-m", "active.acquisition=epistemic,random",
                     "seed=0,1", *TINY_ACTIVE, "active.rounds=1",
                     f"hydra.sweep.dir={sweep}")  # fmt: skip
    assert code == 0
    summary = (sweep / "summary.md").read_text()
    assert "## Learning curves" in summary and "minus random's, paired" in summary
    assert len(pd.read_csv(sweep / "areas.csv")) == 2
    (sweep / "summary.md").unlink()
    (sweep / "areas.csv").unlink()
    assert run_bnnlv(monkeypatch, "summarize", str(sweep)) == 0  # rebuilt from the folders
    assert (sweep / "summary.md").read_text() == summary
    assert len(pd.read_csv(sweep / "areas.csv")) == 2
