"""From a CSV's text cells to the model's numbers: numeric columns, categorical columns (one-hot)
and missing cells.

Rows are named as the error messages of :mod:`bnnlv.data.csv` name them: data row r is the r-th
line after the header (``frame.index + 1`` of :func:`~bnnlv.data.csv.read_table`'s frame, kept
when rows are dropped). A missing cell is an empty one or one of :data:`MISSING_CELLS`
(any case). A bad cell is reported with its file, column and row and, where there is one, the
setting that gets past it (``fix``).

:class:`InputColumns` is what a trained model keeps of its inputs (it is stored in the checkpoint,
:mod:`bnnlv.runs.state`): the input columns in order and, for each categorical one, its category
list. A categorical column becomes one 0/1 input per category, named ``column=category``; a value
outside the list is refused by name, so that new rows are encoded exactly as the training rows.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

log = logging.getLogger("bnnlv")

MISSING_CELLS = ("", "nan", "na", "n/a", "null", "none")
MISSING_POLICIES = ("error", "drop")
DROP_FIX = "drop the rows with a missing value with data.missing=drop"
# a column's ways past a bad cell, by kind of cell ("missing", "text"): see numeric_column
Fixes = Callable[[str], Mapping[str, str]]


def check_missing(value: str) -> str:
    """``data.missing``: ``error`` (a missing cell stops the run) or ``drop`` (its row goes)."""
    if value not in MISSING_POLICIES:
        raise ValueError(
            f"data.missing must be one of {', '.join(MISSING_POLICIES)}, got {value!r}"
        )
    return value


def missing_cells(frame: pd.DataFrame, column: str) -> np.ndarray:
    """[n] bool: the cells of ``column`` that hold no value."""
    return frame[column].str.strip().str.lower().isin(MISSING_CELLS).to_numpy()


def drop_missing(
    frame: pd.DataFrame, columns: Sequence[str], policy: str, path: Path
) -> pd.DataFrame:
    """The rows of ``frame`` without a missing cell in ``columns`` when ``policy`` is ``drop``
    (logged: how many, from which columns), else ``frame`` itself (the parsers then report the
    first missing cell). The frame's index still names each row's place in the file."""
    if check_missing(policy) == "error":
        return frame
    missing = {column: missing_cells(frame, column) for column in columns}  # [n] each
    dropped = (
        np.logical_or.reduce(list(missing.values())) if missing else np.zeros(len(frame), bool)
    )
    if dropped.all():
        raise ValueError(
            f"{path}: every row has a missing value in {list(columns)}; nothing is left"
        )
    if dropped.any():
        counts = ", ".join(f"{c!r}: {int(m.sum())}" for c, m in missing.items() if m.any())
        log.warning("data.missing=drop: dropped %d of %d rows of %s with a missing value (%s)",
                    int(dropped.sum()), len(frame), path, counts)  # fmt: skip
    return frame[~dropped]


def numeric_column(
    frame: pd.DataFrame, column: str, path: Path, fix: Mapping[str, str] = {}
) -> np.ndarray:
    """Column parsed as float64 [n]; the first missing, non-numeric or non-finite cell is a
    ValueError naming its data row and, from ``fix`` (keyed ``missing`` / ``text``), the way on."""
    text = frame[column].str.strip()
    values = pd.to_numeric(text, errors="coerce").to_numpy(dtype=np.float64)
    bad = np.flatnonzero(~np.isfinite(values))
    if bad.size == 0:
        return values
    first = int(bad[0])
    cell = text.iloc[first]
    if cell.lower() in MISSING_CELLS:
        what, way = _missing(cell), fix.get("missing")
    elif np.isnan(values[first]):
        what, way = f"non-numeric value {cell!r}", fix.get("text")
    else:
        what, way = f"infinite value {cell!r}", None
    raise ValueError(
        f"{path}: column {column!r}, row {int(frame.index[first]) + 1}: {what}"
        f" ({bad.size} bad cell{'s' if bad.size > 1 else ''} in this column)"
        + (f"; {way}" if way else "")
    )


@dataclass(frozen=True)
class InputColumns:
    """The input columns of a model, in order, and the categories of the categorical ones."""

    names: list[str]
    categories: dict[str, list[str]]  # categorical column → its categories, in one-hot order

    @classmethod
    def learn(
        cls, frame: pd.DataFrame, names: Sequence[str], categorical: Sequence[str], path: Path
    ) -> InputColumns:
        """Categories from the file: the distinct (stripped) values of each categorical column,
        missing cells left out, in sorted order."""
        for name in categorical:
            if name not in names:
                raise ValueError(
                    f"{path}: data.categorical column {name!r} is not an input column; "
                    f"inputs are {list(names)}"
                )
        categories = {}
        for name in categorical:
            values = frame[name].str.strip()
            categories[name] = sorted(set(values[~missing_cells(frame, name)]))
        return cls(list(names), categories)

    @property
    def feature_names(self) -> list[str]:
        """The model's input names: a column, or ``column=category`` per category."""
        names: list[str] = []
        for name in self.names:
            if name in self.categories:
                names += [f"{name}={category}" for category in self.categories[name]]
            else:
                names.append(name)
        return names

    def renamed(self, names: Sequence[str]) -> InputColumns:
        """The same inputs read from other column names, given in the same order."""
        if len(names) != len(self.names):
            raise ValueError(
                f"data.features lists {len(names)} columns; the model was trained on "
                f"{len(self.names)}: {self.names}"
            )
        rename = dict(zip(self.names, names, strict=True))
        return InputColumns(list(names), {rename[k]: v for k, v in self.categories.items()})

    def check_header(self, header: list[str], path: Path) -> None:
        """ValueError naming the first input column that is not in ``header``."""
        for name in self.names:
            if name not in header:
                raise ValueError(
                    f"{path}: input column {name!r} is not in the header; columns are "
                    f"{header} (set data.features to map them, in order)"
                )

    def encode(
        self, frame: pd.DataFrame, path: Path, fixes: Fixes = lambda column: {}
    ) -> np.ndarray:
        """x [n, D_in] float64: numeric columns as numbers, categorical ones one-hot; a bad cell's
        message ends with ``fixes(column)`` (see :func:`numeric_column`)."""
        self.check_header(list(frame.columns), path)
        parts = []
        for name in self.names:
            if name in self.categories:
                parts.append(self._one_hot(frame, name, path, fixes(name)))
            else:
                parts.append(numeric_column(frame, name, path, fixes(name))[:, None])
        return np.concatenate(parts, axis=1)

    def _one_hot(
        self, frame: pd.DataFrame, name: str, path: Path, fix: Mapping[str, str]
    ) -> np.ndarray:
        """[n, K] 0/1 for the K categories of ``name``; a missing or unseen value is refused."""
        known = self.categories[name]
        values = frame[name].str.strip()
        missing = missing_cells(frame, name)
        unknown = ~values.isin(known).to_numpy()
        if unknown.any():
            first = int(np.flatnonzero(unknown)[0])
            row = int(frame.index[first]) + 1
            if missing[first]:
                way = fix.get("missing")
                raise ValueError(
                    f"{path}: column {name!r}, row {row}: {_missing(values.iloc[first])}"
                    f" ({int(missing.sum())} missing in this column)" + (f"; {way}" if way else "")
                )
            raise ValueError(
                f"{path}: column {name!r}, row {row}: category {values.iloc[first]!r} was not "
                f"seen in training; known categories: {known}"
            )
        return (values.to_numpy()[:, None] == np.asarray(known, dtype=object)[None]).astype(
            np.float64
        )


def _missing(cell: str) -> str:
    return "empty cell" if cell == "" else f"missing value {cell!r} (NaN)"
