"""data.columns: numbers, categories (one-hot) and missing cells, each bad cell named by its
file, column and data row, with the setting that gets past it."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bnnlv.data.columns import InputColumns, check_missing, drop_missing, numeric_column

PATH = Path("data.csv")


def frame(**columns: list[str]) -> pd.DataFrame:
    """A frame of text cells, as read_table gives it (index 0, 1, …: data rows 1, 2, …)."""
    return pd.DataFrame(columns, dtype=str)


def test_numeric_column_names_the_row_and_the_fix_for_each_kind_of_cell() -> None:
    table = frame(a=["1", " 2.5e1 ", "x", "", "inf"])
    fix = {"missing": "use data.missing=drop", "text": "use data.categorical=[a]"}
    with pytest.raises(ValueError) as error:
        numeric_column(table, "a", PATH, fix)
    assert str(error.value) == (
        "data.csv: column 'a', row 3: non-numeric value 'x' (3 bad cells in this column); "
        "use data.categorical=[a]"
    )
    with pytest.raises(ValueError, match=r"row 4: empty cell .*; use data.missing=drop$"):
        numeric_column(table.iloc[3:], "a", PATH, fix)  # rows keep their number when cut
    with pytest.raises(
        ValueError, match=r"row 5: infinite value 'inf' \(1 bad cell in this column\)$"
    ):
        numeric_column(table.iloc[4:], "a", PATH, fix)
    np.testing.assert_array_equal(numeric_column(table.iloc[:2], "a", PATH), [1.0, 25.0])


def test_drop_leaves_out_rows_with_a_missing_used_cell_and_logs_from_which_columns(
    caplog: pytest.LogCaptureFixture,
) -> None:
    table = frame(a=["1", "", "3", "NaN", "5"], b=["x", "y", " ", "w", "v"], c=["", "", "", "", ""])
    with caplog.at_level(logging.WARNING, logger="bnnlv"):
        kept = drop_missing(table, ["a", "b"], "drop", PATH)
    assert kept.index.tolist() == [0, 4]  # data rows 1 and 5; column c is not used
    assert "dropped 3 of 5 rows of data.csv with a missing value ('a': 2, 'b': 1)" in caplog.text
    assert drop_missing(table, ["a", "b"], "error", PATH) is table
    with pytest.raises(ValueError, match=r"every row has a missing value in \['c'\]"):
        drop_missing(table, ["c"], "drop", PATH)


def test_missing_policy_is_error_or_drop() -> None:
    assert check_missing("drop") == "drop"
    with pytest.raises(ValueError, match=r"^data.missing must be one of error, drop, got 'skip'$"):
        check_missing("skip")


def test_categories_are_learned_sorted_and_encoded_one_hot() -> None:
    table = frame(a=["1", "2", "3", "4"], site=["north", " south", "east", "north"])
    inputs = InputColumns.learn(table, ["site", "a"], ["site"], PATH)
    assert inputs.categories == {"site": ["east", "north", "south"]}
    assert inputs.feature_names == ["site=east", "site=north", "site=south", "a"]
    np.testing.assert_array_equal(
        inputs.encode(table, PATH),
        [[0, 1, 0, 1], [0, 0, 1, 2], [1, 0, 0, 3], [0, 1, 0, 4]],
    )


def test_an_unseen_category_is_refused_by_column_value_row_and_known_categories() -> None:
    inputs = InputColumns(["site"], {"site": ["east", "north"]})
    with pytest.raises(ValueError) as error:
        inputs.encode(frame(site=["north", "east", "west"]), PATH)
    assert str(error.value) == (
        "data.csv: column 'site', row 3: category 'west' was not seen in training; "
        "known categories: ['east', 'north']"
    )
    with pytest.raises(ValueError, match=r"row 2: empty cell \(1 missing in this column\); drop"):
        inputs.encode(frame(site=["north", ""]), PATH, lambda column: {"missing": "drop it"})


def test_renamed_inputs_keep_their_encoding_by_position() -> None:
    inputs = InputColumns(["a", "site"], {"site": ["n", "s"]})
    renamed = inputs.renamed(["u", "where"])
    assert renamed == InputColumns(["u", "where"], {"where": ["n", "s"]})
    np.testing.assert_array_equal(renamed.encode(frame(u=["7"], where=["s"]), PATH), [[7, 0, 1]])
    with pytest.raises(ValueError, match=r"data.features lists 1 columns; .* trained on 2"):
        inputs.renamed(["u"])


def test_header_and_categorical_columns_are_checked() -> None:
    with pytest.raises(
        ValueError, match=r"input column 'b' is not in the header; columns are \['a'\]"
    ):
        InputColumns(["a", "b"], {}).encode(frame(a=["1"]), PATH)
    with pytest.raises(ValueError, match=r"data.categorical column 'y' is not an input column"):
        InputColumns.learn(frame(a=["1"], y=["2"]), ["a"], ["y"], PATH)
