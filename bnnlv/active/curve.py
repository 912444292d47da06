"""Learning curves: the area under one, and the paired comparison of two acquisitions.

A learning curve is the test NLL y_r after round r against the labelled-set size n_r. Its area
is reported per labelled point, the trapezoidal average height

    A = (1 / (n_R − n_0)) Σ_r ½ (y_r + y_{r+1}) (n_{r+1} − n_r),

in the units of y (nats): a curve that is lower everywhere has the smaller area, and A of a flat
curve is its height. Two acquisitions run with the same seed start from the same labelled set and
the same first model, so their areas are compared pairwise, seed by seed.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from bnnlv.runs.sweep import mean_se


def curve_area(n_labelled: Sequence[float], values: Sequence[float]) -> float:
    """A above, for a curve of at least one point (a single point: its value)."""
    n = np.asarray(n_labelled, dtype=np.float64)
    y = np.asarray(values, dtype=np.float64)
    if n.ndim != 1 or n.shape != y.shape or n.size == 0:
        raise ValueError(
            f"a learning curve needs matching 1-D n and values, got {n.shape} and {y.shape}"
        )
    if n.size == 1:
        return float(y[0])
    if not (np.diff(n) > 0).all():
        raise ValueError(f"labelled-set sizes must increase, got {n.tolist()}")
    return float(np.trapezoid(y, n) / (n[-1] - n[0]))


def paired_difference(a: Sequence[float], b: Sequence[float]) -> tuple[float, float, int]:
    """Mean and standard error of a_i − b_i over the pairs where both are finite, and their
    number (mean_se: se NaN for one pair)."""
    x = np.asarray(a, dtype=np.float64)
    y = np.asarray(b, dtype=np.float64)
    if x.shape != y.shape or x.ndim != 1:
        raise ValueError(f"paired values must be 1-D of one length, got {x.shape} and {y.shape}")
    both = np.isfinite(x) & np.isfinite(y)
    mean, se = mean_se((x - y)[both].tolist())
    return mean, se, int(both.sum())


def separation(mean: float, se: float) -> float:
    """|mean| in standard errors (NaN without a spread estimate, inf for an exact difference)."""
    if math.isnan(se) or math.isnan(mean):
        return math.nan
    return math.inf if se == 0 else abs(mean) / se
