"""scripts/bench_active.py: its table cells and the fraction of picks in the noisy centre."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

import pandas as pd
import pytest

from tests.active.test_loop import finished  # noqa: F401  (a finished tiny run, module scope)
from tests.scripts.conftest import load_script


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    return load_script("bench_active")


def test_cells(bench: ModuleType) -> None:
    assert bench.cell([1.0, 2.0, 3.0]) == "2.000 ± 0.577"
    assert bench.cell([1.5]) == "1.500" and bench.cell([]) == "–"
    ours = pd.Series([2.0, 2.4, 2.1], index=[0, 1, 2])
    theirs = pd.Series([2.5, 2.6, 2.9, 9.9], index=[0, 1, 2, 3])  # seed 3 has no pair
    assert bench.paired(ours, theirs) == "-0.500 ± 0.173 (2.9 s.e.)"


def test_centre_fraction_reads_the_picks_of_a_run(bench: ModuleType, finished: Path) -> None:  # noqa: F811
    fraction = bench.centre_fraction(finished)
    assert 0.0 <= fraction <= 1.0 and fraction * 8 == round(fraction * 8)  # 8 picks
