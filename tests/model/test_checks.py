"""The model's argument checks: the value back when it is good, a ValueError naming it when not."""

from __future__ import annotations

from typing import Any

import pytest

from bnnlv.model.checks import flag, one_of, positive_float, positive_int


def test_good_values_come_back() -> None:
    assert positive_int("n", 3) == 3
    assert positive_float("lr", 2) == 2.0 and isinstance(positive_float("lr", 2), float)
    assert one_of("noise", "a", ("a", "b")) == "a"
    assert flag("fused", False) is False


@pytest.mark.parametrize(
    ("check", "value", "message"),
    [
        (positive_int, 0, r"^n must be a positive integer, got 0$"),
        (positive_int, True, r"^n must be a positive integer, got True$"),
        (positive_int, 2.0, r"^n must be a positive integer, got 2.0$"),
        (positive_float, -1.0, r"^n must be a positive number, got -1.0$"),
        (positive_float, float("inf"), r"^n must be finite, got inf$"),
        (positive_float, "1", r"^n must be a positive number, got '1'$"),
        (flag, "yes", r"^n must be true or false, got 'yes'$"),
    ],
)
def test_bad_values_are_named(check: Any, value: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        check("n", value)


def test_one_of_lists_the_choices() -> None:
    with pytest.raises(ValueError, match=r"^noise must be one of \['a', 'b'\], got 'c'$"):
        one_of("noise", "c", ("a", "b"))
