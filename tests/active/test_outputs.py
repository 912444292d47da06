"""The figures of metrics.json that summarise an active-learning run's rounds."""

from __future__ import annotations

import pandas as pd
import pytest

from bnnlv.active.outputs import curve_metrics


def test_curve_metrics_by_hand() -> None:
    rows = pd.DataFrame({
        "round": [0, 1, 2], "n_labelled": [10, 20, 50], "test_nll": [5.0, 3.0, 2.0],
        "test_nll_standardised": [4.0, 2.0, 1.0], "fit_seconds": [1.0, 2.0, 3.0],
        "score_seconds": [0.5, 0.25, None], "n_negative_epistemic": [2, 0, None],
    })  # fmt: skip
    metrics = curve_metrics(rows)
    assert metrics["test_nll_area"] == pytest.approx(115 / 40)  # ½(5+3)·10 + ½(3+2)·30
    assert metrics["test_nll_area_standardised"] == pytest.approx((30 + 45) / 40)
    assert (metrics["n_labelled"], metrics["rounds"]) == (50, 2)
    assert metrics["n_negative_epistemic"] == 2
    assert (metrics["fit_seconds"], metrics["score_seconds"]) == (6.0, 0.75)


def test_without_an_estimate_of_i_there_is_no_count() -> None:
    rows = pd.DataFrame({"n_labelled": [4], "test_nll": [1.0], "test_nll_standardised": [0.5],
                         "fit_seconds": [1.0]})  # fmt: skip
    metrics = curve_metrics(rows)
    assert metrics["n_negative_epistemic"] is None and metrics["rounds"] == 0
    assert metrics["test_nll_area"] == 1.0 and metrics["score_seconds"] == 0.0
