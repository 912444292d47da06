"""scripts/bench_tutorial.py: the missing-venv message, the tutorial's output, the report."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

import pytest

from tests.scripts.conftest import load_script


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    return load_script("bench_tutorial")


def test_a_missing_venv_is_one_line_saying_how_to_build_it(
    bench: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LUQ_VENV", str(tmp_path / "nowhere"))
    with pytest.raises(SystemExit) as stop:
        bench.luq_python()
    message = str(stop.value)
    assert message.startswith(f"bench-tutorial: no lightning-uq-box venv at {tmp_path}/nowhere;")
    assert "bash scripts/tutorial/setup_luq.sh" in message and "\n" not in message


def test_the_tutorial_figures_are_its_last_output_line(bench: ModuleType) -> None:
    output = 'Seed set to 0\n{"fit_s": 1.5}\n{"fit_s": 2.5, "nll": 1.0}\n\n'
    assert bench.parse_last_json(output) == {"fit_s": 2.5, "nll": 1.0}
    with pytest.raises(RuntimeError, match="the tutorial printed nothing"):
        bench.parse_last_json("\n")


def test_report_gives_each_repeats_ratio_and_the_median_against_the_target(
    bench: ModuleType,
) -> None:
    report = {"epochs": 250, "load": [(0.1, 0.2, 0.3), (1.0, 1.1, 1.2)],
              "tutorial": [{"fit_s": 80.0, "nll": 1.2}, {"fit_s": 100.0, "nll": 1.2},
                           {"fit_s": 90.0, "nll": 1.2}],
              "bnnlv": [{"fit_seconds": 8.0, "test_nll_standardised": 1.03}] * 3}  # fmt: skip
    text = bench.render(report)
    assert "| 1 | 80.0 | 8.0 | 0.100 | 1.200 | 1.030 |" in text
    assert "| 2 | 100.0 | 8.0 | 0.080 |" in text
    assert "**0.089**; target ≤ 0.125 (meets it)" in text  # median of 0.100, 0.080, 0.089
    assert "bnnlv's extra overrides: none." in text
    report["bnnlv"] = [{"fit_seconds": 20.0, "test_nll_standardised": 1.03}] * 3
    assert "(misses it)" in bench.render(report)


def test_repeats_and_epochs_must_be_positive(
    bench: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("sys.argv", ["bench_tutorial.py", "--repeats", "0"])
    with pytest.raises(SystemExit, match=r"^--repeats and --epochs must be positive, got 0, 250$"):
        bench.main()
