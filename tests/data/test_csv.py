"""CsvData: the user's own table. Good files load (features by default, multi-output, fraction
or column splits); every malformed case of datasets.md / issue 5 is rejected with a ValueError
naming the file and, where there is one, the column and row."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from bnnlv.data.csv import CsvData, fraction_split

ROWS = 20


def _table(rows: int = ROWS) -> str:
    """a, b features, y and z targets (z = 2a − b + 1, never constant), one header line."""
    lines = ["a,b,y,z"]
    for i in range(rows):
        a, b = i * 0.5, (i * 7) % 5
        lines.append(f"{a},{b},{a * a - b},{2 * a - b + 1}")
    return "\n".join(lines) + "\n"


def _write(tmp_path: Path, text: str, name: str = "data.csv") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def _load(path: Path, **kwargs: object) -> CsvData:
    args: dict[str, object] = {"path": str(path), "targets": ["y"]} | kwargs
    data = CsvData(**args)  # type: ignore[arg-type]
    data.prepare()
    return data


def test_features_default_to_every_other_column(tmp_path: Path) -> None:
    data = _load(_write(tmp_path, _table()), targets=["y"])
    s = data.splits
    assert list(s.feature_names) == ["a", "b", "z"] and list(s.target_names) == ["y"]
    assert (len(s.x_train), len(s.x_val), len(s.x_test)) == (14, 2, 4)
    rows = np.concatenate([s.x_train, s.x_val, s.x_test])[:, 0]
    assert sorted(rows.tolist()) == [i * 0.5 for i in range(ROWS)]


def test_multi_output_targets_and_explicit_features(tmp_path: Path) -> None:
    data = _load(_write(tmp_path, _table()), targets=["y", "z"], features=["b"])
    s = data.splits
    assert (data.in_features, data.out_features) == (1, 2)
    a = np.concatenate([s.y_train, s.y_val, s.y_test])
    b = np.concatenate([s.x_train, s.x_val, s.x_test])[:, 0]
    # z − (a² − b) = 2a + 1 − a², with a recovered from y + b = a² per row
    a_col = np.sqrt(a[:, 0] + b)
    np.testing.assert_allclose(a[:, 1], 2 * a_col - b + 1, atol=1e-12)


def test_fraction_split_is_seeded_and_partitions_the_rows(tmp_path: Path) -> None:
    train, val, test = fraction_split(20, 0.1, 0.2, seed=5, path=tmp_path)
    p = np.random.RandomState(5).permutation(20)
    np.testing.assert_array_equal(test, p[:4])
    np.testing.assert_array_equal(val, p[4:6])
    assert sorted(np.concatenate([train, val, test]).tolist()) == list(range(20))


def test_split_column(tmp_path: Path) -> None:
    labels = ["train"] * 12 + ["Validation"] * 3 + [" test"] * 5
    lines = _table().splitlines()
    text = "\n".join(
        [lines[0] + ",part"] + [f"{r},{s}" for r, s in zip(lines[1:], labels, strict=True)]
    )
    data = _load(_write(tmp_path, text + "\n"), split_column="part")
    s = data.splits
    assert (len(s.x_train), len(s.x_val), len(s.x_test)) == (12, 3, 5)
    assert "part" not in s.feature_names
    np.testing.assert_array_equal(s.x_test[:, 0], [i * 0.5 for i in range(15, 20)])


def test_numbers_in_any_float_spelling_and_a_byte_order_mark(tmp_path: Path) -> None:
    text = "\ufeffx, y\n" + "".join(f"{v:e}, {v * 3:.3E}\n" for v in range(1, 11))
    data = _load(_write(tmp_path, text), targets=["y"], test_frac=0.2, val_frac=0.0)
    assert list(data.splits.feature_names) == ["x"]
    np.testing.assert_allclose(data.splits.y_train, 3 * data.splits.x_train)


def test_cells_are_never_evaluated(tmp_path: Path) -> None:
    """A formula or Python expression in a cell is data, not code: rejected as non-numeric."""
    marker = tmp_path / "evaluated"
    text = _table().replace("\n3.0,", f"\n__import__('os').mkdir('{marker}'),", 1)
    with pytest.raises(ValueError, match="non-numeric"):
        _load(_write(tmp_path, text))
    assert not marker.exists()


# ---- every malformed case: (file text or None for no file, config, words the message must hold)
MALFORMED: list[tuple[str, str | None, dict[str, object], list[str]]] = [
    ("missing file", None, {}, ["file not found"]),
    ("empty file", "", {}, ["file is empty"]),
    ("header only", "a,b,y,z\n", {}, ["header only"]),
    ("too few rows", "a,b,y,z\n1,2,3,4\n2,3,4,5\n", {}, ["too few rows (2)"]),
    (
        "non-numeric cell",
        _table().replace("\n2.0,", "\ntwo,", 1),
        {},
        ["column 'a'", "row 5", "non-numeric value 'two'"],
    ),
    ("empty cell", _table().replace(",3,", ",,", 1), {}, ["column 'b'", "row 5", "empty cell"]),
    ("NaN cell", _table().replace("\n1.5,", "\nnan,", 1), {}, ["column 'a'", "row 4", "NaN"]),
    ("inf cell", _table().replace("\n1.5,", "\ninf,", 1), {}, ["column 'a'", "row 4", "infinite"]),
    (
        "-inf target",
        _table().replace(",-3.0,", ",-inf,", 1),
        {},
        ["column 'y'", "infinite value '-inf'"],
    ),
    ("unknown target", _table(), {"targets": ["price"]}, ["data.targets", "'price'", "header"]),
    ("unknown feature", _table(), {"features": ["a", "c"]}, ["data.features", "'c'"]),
    ("unknown split column", _table(), {"split_column": "part"}, ["data.split_column", "'part'"]),
    (
        "duplicate columns",
        _table().replace("a,b,y,z", "a,b,y,a", 1),
        {},
        ["duplicate column name 'a'"],
    ),
    ("empty column name", _table().replace("a,b,y,z", "a,,y,z", 1), {}, ["column 2", "empty name"]),
    (
        "constant target",
        "a,y\n" + "".join(f"{i},5\n" for i in range(20)),
        {},
        ["column 'y'", "constant (5.0 in every row)"],
    ),
    ("ragged row", _table() + "1,2,3,4,5\n", {}, ["cannot read as CSV"]),
    ("target also a feature", _table(), {"features": ["a", "y"]}, ["'y'", "both a feature"]),
    (
        "no features left",
        "y,z\n" + "".join(f"{i},{i % 3}\n" for i in range(20)),
        {"targets": ["y", "z"]},
        ["no feature columns"],
    ),
    (
        "bad split label",
        _table().replace("a,b,y,z", "a,b,y,part", 1),
        {"split_column": "part"},
        ["column 'part'", "row 1", "split label"],
    ),
    ("not valid UTF-8", "a,y\n1,\xff\n", {}, ["cannot read as CSV"]),
]


@pytest.mark.parametrize(
    ("case", "text", "config", "words"), MALFORMED, ids=[m[0] for m in MALFORMED]
)
def test_malformed_input_names_file_and_column(
    tmp_path: Path, case: str, text: str | None, config: dict[str, object], words: list[str]
) -> None:
    path = tmp_path / "bad.csv"
    if text is not None:
        path.write_bytes(text.encode("latin-1") if case == "not valid UTF-8" else text.encode())
    with pytest.raises(ValueError) as error:
        _load(path, **config)
    message = str(error.value)
    assert str(path) in message
    for word in words:
        assert word in message, f"{word!r} not in {message!r}"


def test_directory_instead_of_a_file(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="not a regular file"):
        _load(tmp_path)


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file")
def test_unreadable_file(tmp_path: Path) -> None:
    path = _write(tmp_path, _table())
    path.chmod(0)
    with pytest.raises(ValueError, match="cannot read as CSV"):
        _load(path)


@pytest.mark.parametrize(
    ("kwargs", "key"),
    [
        ({"path": ""}, "data.path"),
        ({"val_frac": 1.5}, "data.val_frac"),
        ({"test_frac": -0.1}, "data.test_frac"),
        ({"test_frac": 1.5}, r"data.test_frac must be a number in \[0, 1\]"),
        ({"missing": "skip"}, "data.missing"),
        ({"categorical": ["a", "a"]}, "data.categorical"),
        ({"targets": ["y", "y"]}, "data.targets"),
    ],
)
def test_bad_arguments(tmp_path: Path, kwargs: dict[str, object], key: str) -> None:
    args: dict[str, object] = {"path": "x.csv", "targets": ["y"]} | kwargs
    with pytest.raises(ValueError, match=key):
        CsvData(**args)  # type: ignore[arg-type]


def test_test_rows_are_the_data_rows_of_the_file(tmp_path: Path) -> None:
    """Row 1 is the first line after the header, as in the error messages."""
    data = _load(_write(tmp_path, _table()))
    s = data.splits
    assert s.test_rows is not None and len(s.test_rows) == len(s.x_test)
    np.testing.assert_array_equal(s.x_test[:, 0], (s.test_rows - 1) * 0.5)  # a = 0.5 · (row − 1)


def _sites(rows: int = ROWS) -> str:
    """a, site (text), y = a + 10·[site = north]."""
    lines = ["a,site,y"]
    for i in range(rows):
        site = ("north", "south", "east")[i % 3]
        lines.append(f"{i},{site},{i + 10 * (site == 'north')}")
    return "\n".join(lines) + "\n"


def test_a_text_column_error_names_both_ways_on(tmp_path: Path) -> None:
    with pytest.raises(ValueError) as error:
        _load(_write(tmp_path, _sites()))
    assert str(error.value).endswith(
        "column 'site', row 1: non-numeric value 'north' (20 bad cells in this column); leave "
        "the column out with data.features=[a], or encode it with data.categorical=[site]"
    )
    assert list(_load(_write(tmp_path, _sites()), features=["a"]).splits.feature_names) == ["a"]


def test_categorical_columns_are_one_hot(tmp_path: Path) -> None:
    data = _load(_write(tmp_path, _sites()), categorical=["site"])
    s = data.splits
    assert list(s.feature_names) == ["a", "site=east", "site=north", "site=south"]
    assert s.inputs is not None and s.inputs.categories == {"site": ["east", "north", "south"]}
    x, y = np.concatenate([s.x_train, s.x_val, s.x_test]), np.concatenate([s.y_train, s.y_val,
                                                                         s.y_test])  # fmt: skip
    np.testing.assert_array_equal(x[:, 1:].sum(axis=1), 1.0)
    np.testing.assert_array_equal(y[:, 0], x[:, 0] + 10 * x[:, 2])  # site=north is column 2


def test_an_empty_cell_error_names_data_missing_and_drop_skips_the_row(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    text = _table().replace("\n1.5,", "\n,", 1).replace(",3,", ",NA,", 1)  # rows 4 and 5
    path = _write(tmp_path, text)
    with pytest.raises(ValueError, match=r"column 'a', row 4: empty cell .*; drop the rows with a "
                       r"missing value with data.missing=drop, or leave the column out with "
                       r"data.features=\[b,z\]$"):  # fmt: skip
        _load(path)
    with caplog.at_level("WARNING", logger="bnnlv"):
        data = _load(path, missing="drop", test_frac=0.5)
    assert "dropped 2 of 20 rows" in caplog.text and "'a': 1, 'b': 1" in caplog.text
    s = data.splits
    assert len(s.x_train) + len(s.x_val) + len(s.x_test) == 18
    assert s.test_rows is not None and not {4, 5} & set(s.test_rows.tolist())
    np.testing.assert_array_equal(s.x_test[:, 0], (s.test_rows - 1) * 0.5)  # rows still match


def test_a_missing_target_names_data_missing(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"column 'y', row 3: empty cell .*data.missing=drop$"):
        _load(_write(tmp_path, _table().replace(",-3.0,", ",,", 1)))


def test_test_frac_one_makes_every_row_a_test_row_in_file_order(tmp_path: Path) -> None:
    """What bnnlv evaluate asks of a file: no split. Training on it finds no training rows."""
    path = _write(tmp_path, _table())
    data = CsvData(str(path), ["y"], test_frac=1.0, val_frac=0.0)
    data.prepare(scaler=_load(path).scaler)
    s = data.splits
    assert (len(s.x_train), len(s.x_val), len(s.x_test)) == (0, 0, ROWS)
    assert s.test_rows is not None and s.test_rows.tolist() == list(range(1, ROWS + 1))
    with pytest.raises(ValueError, match="the training split is empty"):
        _load(path, test_frac=1.0, val_frac=0.0)
    with pytest.raises(ValueError, match=r"data.val_frac must then be 0, got 0.1"):
        _load(path, test_frac=1.0)
