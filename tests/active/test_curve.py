"""The area under a learning curve and the paired comparison."""

from __future__ import annotations

import math

import pytest

from bnnlv.active.curve import curve_area, paired_difference, separation


def test_area_is_the_average_height_of_the_trapezoids() -> None:
    assert curve_area([10, 20, 40], [3.0, 3.0, 3.0]) == pytest.approx(3.0)
    # linear from 4 to 2 over n = 0…10: average height 3, whatever the spacing
    assert curve_area([0, 1, 10], [4.0, 3.8, 2.0]) == pytest.approx(3.0)
    # by hand: ½(5+3)·10 + ½(3+2)·30 = 40 + 75 = 115 over 40
    assert curve_area([10, 20, 50], [5.0, 3.0, 2.0]) == pytest.approx(115 / 40)
    assert curve_area([7], [1.5]) == 1.5


def test_paired_difference_is_the_mean_and_se_of_the_differences() -> None:
    # differences 0.5, 1.0, 1.5; the NaN pair is left out
    mean, se, n = paired_difference([1.0, 2.0, 4.0, math.nan], [0.5, 1.0, 2.5, 1.0])
    assert n == 3 and mean == pytest.approx(1.0)
    assert se == pytest.approx(0.5 / math.sqrt(3))  # sample std 0.5 (ddof 1) / √3
    assert math.isnan(paired_difference([1.0], [0.0])[1])
    assert separation(mean, se) == pytest.approx(1.0 / (0.5 / math.sqrt(3)))
    assert separation(1.0, 0.0) == math.inf and math.isnan(separation(1.0, math.nan))


def test_rejects_bad_curves() -> None:
    with pytest.raises(ValueError, match="matching 1-D n and values"):
        curve_area([1, 2], [1.0])
    with pytest.raises(ValueError, match="labelled-set sizes must increase"):
        curve_area([2, 2], [1.0, 1.0])
    with pytest.raises(ValueError, match="paired values must be 1-D of one length"):
        paired_difference([1.0, 2.0], [1.0])
