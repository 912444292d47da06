"""CsvData: the user's own table. Which columns are targets and features is configuration.

The file is read as TEXT (pandas, every cell a string, nothing evaluated) and each used column is
then parsed (:mod:`bnnlv.data.columns`): as a number, or one-hot when it is listed in
``categorical``; rows with a missing cell in a used column stop the run or, with
``missing: drop``, are left out. A bad cell is reported with its file, column and row and the
setting that gets past it. Rows are split into train/validation/test by fractions and a seed
(``test_frac = 1``: every row, in file order, is a test row: how ``bnnlv evaluate`` scores a file),
or by a split column holding ``train``, ``val`` (or ``validation``) and ``test``. Every rejection
is a ``ValueError`` that names the file.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from bnnlv.data.columns import (
    DROP_FIX,
    Fixes,
    InputColumns,
    check_missing,
    drop_missing,
    numeric_column,
)
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
    ⌈test_frac·n⌉ of p, validation the next ⌈val_frac·n⌉, train the rest (at least 2 rows).
    ``test_frac = 1``: every row is a test row, in file order (no validation rows allowed)."""
    if test_frac == 1:
        if val_frac:
            raise ValueError(f"data.test_frac=1 makes every row a test row; data.val_frac must "
                             f"then be 0, got {val_frac}")  # fmt: skip
        empty = np.arange(0)
        return empty, empty, np.arange(n)
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
    column), of which ``categorical`` ones are one-hot encoded; rows with a missing cell are an
    error or dropped (``missing``); split by ``val_frac``/``test_frac``/``split_seed`` or by
    ``split_column``. ``categories`` (a trained model's, given by ``bnnlv evaluate``) encodes the
    categorical columns with those category lists instead of the file's own."""

    def __init__(
        self,
        path: str,
        targets: str | Sequence[str],
        features: Sequence[str] | None = None,
        categorical: Sequence[str] = (),
        missing: str = "error",
        val_frac: float = 0.1,
        test_frac: float = 0.2,
        split_seed: int = 0,
        split_column: str | None = None,
        categories: Mapping[str, Sequence[str]] | None = None,
        **kwargs: int,
    ) -> None:
        super().__init__(**kwargs)
        if path is None or str(path).strip() == "":
            raise ValueError("data.path is required: the CSV file to read")
        self.path = Path(path)
        self.targets = _as_names(targets, "targets") or []
        self.features = _as_names(features, "features")
        self.categorical = _as_names(categorical, "categorical") or []
        self.missing = check_missing(missing)
        self.val_frac = check_fraction("val_frac", val_frac)
        self.test_frac = check_fraction("test_frac", test_frac, allow_one=True)
        self.split_seed, self.split_column = split_seed, split_column
        self.categories = (
            None if categories is None else {k: [str(c) for c in v] for k, v in categories.items()}
        )

    def load(self) -> Splits:
        frame = read_table(self.path)
        header = list(frame.columns)
        features = choose_columns(header, self.targets, self.features, self.split_column, self.path)
        split = [self.split_column] if self.split_column else []
        frame = drop_missing(frame, [*features, *self.targets, *split], self.missing, self.path)
        if self.categories is None:
            inputs = InputColumns.learn(frame, features, self.categorical, self.path)
        else:
            inputs = InputColumns(features, dict(self.categories))
        x = inputs.encode(frame, self.path, self._fixes(features))  # [n, D_in]
        target_fix = {"missing": DROP_FIX, "text": "targets must be numbers"}
        y = np.stack([numeric_column(frame, c, self.path, target_fix) for c in self.targets], 1)
        if self.split_column is None:
            train, val, test = fraction_split(
                len(frame), self.val_frac, self.test_frac, self.split_seed, self.path
            )
        else:
            train, val, test = column_split(frame, self.split_column, self.path)
        for d, name in enumerate(self.targets):
            where = "every row" if np.ptp(y[:, d]) == 0 else "every training row"
            if len(train) and np.ptp(y[train, d]) == 0:
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
            feature_names=inputs.feature_names,
            target_names=list(self.targets),
            test_rows=frame.index.to_numpy()[test] + 1,  # data rows count from 1, as in messages
            inputs=inputs,
        )

    def _fixes(self, features: list[str]) -> Fixes:
        """The ways past a bad cell of each feature column, for the error message."""

        def fixes(column: str) -> dict[str, str]:
            others = ",".join(name for name in features if name != column)
            leave_out = f"leave the column out with data.features=[{others}]"
            categorical = ",".join([*self.categorical, column])
            return {
                "missing": f"{DROP_FIX}, or {leave_out}",
                "text": f"{leave_out}, or encode it with data.categorical=[{categorical}]",
            }

        return fixes
