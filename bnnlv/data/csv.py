"""CsvData: the user's own table. Which columns are targets and features is configuration.

The file is read as TEXT (pandas, every cell a string, nothing evaluated) and each used column is
then parsed as a number, so a bad cell is reported with its file, column and row. Rows are split
into train/validation/test by fractions and a seed, or by a split column holding ``train``,
``val`` (or ``validation``) and ``test``. Every rejection is a ``ValueError`` that names the file.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from bnnlv.data.module import RegressionDataModule, Splits, check_fraction

SPLIT_NAMES = {"train": "train", "val": "val", "validation": "val", "test": "test"}


def read_table(path: Path) -> pd.DataFrame:
    """The CSV as a frame of strings with the header's names; reject unreadable or empty files
    and duplicate column names (pandas would silently rename them ``a.1``)."""
    if not path.exists():
        raise ValueError(f"{path}: file not found")
    if not path.is_file():
        raise ValueError(f"{path}: not a regular file")
    try:
        raw = pd.read_csv(
            path, header=None, dtype=str, keep_default_na=False, encoding="utf-8-sig"
        ).fillna("")
    except pd.errors.EmptyDataError:
        raise ValueError(f"{path}: file is empty") from None
    except (pd.errors.ParserError, UnicodeDecodeError, OSError) as error:
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ValueError(f"{path}: cannot read as CSV ({first})") from None
    header = [name.strip() for name in raw.iloc[0]]
    seen: set[str] = set()
    for number, name in enumerate(header, start=1):
        if name == "":
            raise ValueError(f"{path}: column {number} of the header has an empty name")
        if name in seen:
            raise ValueError(f"{path}: duplicate column name {name!r} in the header")
        seen.add(name)
    body = raw.iloc[1:].reset_index(drop=True)
    body.columns = header
    if len(body) == 0:
        raise ValueError(f"{path}: header only, no data rows")
    return body


def numeric_column(frame: pd.DataFrame, column: str, path: Path) -> np.ndarray:
    """Column parsed as float64 [n]; the first empty, non-numeric or non-finite cell is reported
    with its data row (row 1 is the first line after the header; blank lines are skipped)."""
    text = frame[column].str.strip()
    values = pd.to_numeric(text, errors="coerce").to_numpy(dtype=np.float64)
    bad = np.flatnonzero(~np.isfinite(values))
    if bad.size:
        row = int(bad[0])
        cell = text.iloc[row]
        if cell == "":
            what = "empty cell"
        elif cell.lower() in ("nan", "na", "n/a", "null", "none"):
            what = f"missing value {cell!r} (NaN)"
        elif np.isnan(values[row]):
            what = f"non-numeric value {cell!r}"
        else:
            what = f"infinite value {cell!r}"
        raise ValueError(
            f"{path}: column {column!r}, row {row + 1}: {what}"
            f" ({bad.size} bad cell{'s' if bad.size > 1 else ''} in this column)"
        )
    return values


def _as_names(value: str | Sequence[str] | None, key: str) -> list[str] | None:
    if value is None:
        return None
    names = [value] if isinstance(value, str) else [str(v) for v in value]
    if len(set(names)) != len(names):
        raise ValueError(f"data.{key} lists a column twice: {names}")
    return names


def choose_columns(
    header: list[str],
    targets: list[str],
    features: list[str] | None,
    split_column: str | None,
    path: Path,
) -> list[str]:
    """Check the configured names against the header; return the feature columns."""
    if not targets:
        raise ValueError(f"{path}: data.targets is empty; name at least one target column")
    for key, names in (
        ("targets", targets),
        ("features", features or []),
        ("split_column", [split_column] if split_column else []),
    ):
        for name in names:
            if name not in header:
                raise ValueError(
                    f"{path}: data.{key} column {name!r} is not in the header; columns are {header}"
                )
    reserved = set(targets) | ({split_column} if split_column else set())
    if features is None:
        features = [name for name in header if name not in reserved]
    for name in features:
        if name in reserved:
            raise ValueError(f"{path}: column {name!r} is both a feature and a target/split")
    if not features:
        raise ValueError(f"{path}: no feature columns left besides targets {targets}")
    return features


def fraction_split(
    n: int, val_frac: float, test_frac: float, seed: int, path: Path
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(train, val, test) row indices: p = RandomState(seed).permutation(n); test = the first
    ⌈test_frac·n⌉ of p, validation the next ⌈val_frac·n⌉, train the rest (at least 2 rows)."""
    n_test, n_val = math.ceil(test_frac * n), math.ceil(val_frac * n)
    if n - n_test - n_val < 2 or n_test < 1:
        raise ValueError(
            f"{path}: too few rows ({n}) for test_frac={test_frac}, val_frac={val_frac}: "
            f"need at least 2 training rows and 1 test row"
        )
    p = np.random.RandomState(seed).permutation(n)
    return p[n_test + n_val :], p[n_test : n_test + n_val], p[:n_test]


def column_split(
    frame: pd.DataFrame, column: str, path: Path
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(train, val, test) row indices from a split column of train / val|validation / test."""
    labels = frame[column].str.strip().str.lower()
    unknown = ~labels.isin(list(SPLIT_NAMES))
    if unknown.any():
        row = int(np.flatnonzero(unknown.to_numpy())[0])
        raise ValueError(
            f"{path}: column {column!r}, row {row + 1}: split label "
            f"{frame[column].iloc[row]!r} is not one of {sorted(SPLIT_NAMES)}"
        )
    kind = labels.map(SPLIT_NAMES).to_numpy()
    train, val, test = (np.flatnonzero(kind == k) for k in ("train", "val", "test"))
    if len(train) < 2 or len(test) < 1:
        raise ValueError(
            f"{path}: split column {column!r} gives {len(train)} train and "
            f"{len(test)} test rows; need at least 2 and 1"
        )
    return train, val, test


class CsvData(RegressionDataModule):
    """A CSV with a header: ``targets`` (one or more columns), ``features`` (default: every other
    column), split by ``val_frac``/``test_frac``/``split_seed`` or by ``split_column``."""

    def __init__(
        self,
        path: str,
        targets: str | Sequence[str],
        features: Sequence[str] | None = None,
        val_frac: float = 0.1,
        test_frac: float = 0.2,
        split_seed: int = 0,
        split_column: str | None = None,
        **kwargs: int,
    ) -> None:
        super().__init__(**kwargs)
        if path is None or str(path).strip() == "":
            raise ValueError("data.path is required: the CSV file to read")
        self.path = Path(path)
        self.targets = _as_names(targets, "targets") or []
        self.features = _as_names(features, "features")
        self.val_frac = check_fraction("val_frac", val_frac)
        self.test_frac = check_fraction("test_frac", test_frac)
        self.split_seed, self.split_column = split_seed, split_column

    def load(self) -> Splits:
        frame = read_table(self.path)
        header = list(frame.columns)
        features = choose_columns(header, self.targets, self.features, self.split_column, self.path)
        x = np.stack([numeric_column(frame, c, self.path) for c in features], axis=1)  # [n, D_in]
        y = np.stack([numeric_column(frame, c, self.path) for c in self.targets], axis=1)
        if self.split_column is None:
            train, val, test = fraction_split(
                len(frame), self.val_frac, self.test_frac, self.split_seed, self.path
            )
        else:
            train, val, test = column_split(frame, self.split_column, self.path)
        for d, name in enumerate(self.targets):
            where = "every row" if np.ptp(y[:, d]) == 0 else "every training row"
            if np.ptp(y[train, d]) == 0:
                raise ValueError(
                    f"{self.path}: target column {name!r} is constant "
                    f"({float(y[train[0], d])!r} in {where}); nothing to learn"
                )
        return Splits(
            x[train],
            y[train],
            x[val],
            y[val],
            x[test],
            y[test],
            feature_names=features,
            target_names=list(self.targets),
            test_rows=test + 1,  # data rows count from 1, as in the error messages
        )
