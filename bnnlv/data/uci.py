"""The UCI regression benchmark with its published splits (Hernández-Lobato & Adams 2015).

Files as in ``../shared/data/uci/README.md``: ``<root>/<name>/data.txt`` (a whitespace-separated
numeric matrix), ``index_features.txt`` and ``index_target.txt`` (0-based columns),
``index_train_<k>.txt`` / ``index_test_<k>.txt`` (0-based rows) and ``n_splits.txt``.
Validation rows are carved out of the TRAINING rows of split k by a seeded permutation, never from
the test rows; ``val_frac = 0`` trains on the whole training split. Zero-variance columns (naval
has two) are left to :class:`Standardiser`, which divides them by 1.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

import bnnlv
from bnnlv.data.module import RegressionDataModule, Splits, check_fraction

DEFAULT_ROOT = Path("..") / "shared" / "data" / "uci"


def default_root() -> Path:
    """``../shared/data/uci`` relative to the current directory, else to the repository root."""
    repo = Path(bnnlv.__file__).resolve().parent.parent
    candidates = [Path.cwd() / DEFAULT_ROOT, repo / DEFAULT_ROOT]
    for candidate in candidates:
        if candidate.is_dir():
            return candidate.resolve()
    tried = ", ".join(str(c) for c in candidates)
    raise ValueError(
        f"UCI data not found (tried {tried}); set data.root=<folder with the data sets>"
    )


def available(root: Path) -> list[str]:
    """The data-set folders under root (those with a data.txt)."""
    return sorted(p.name for p in root.iterdir() if (p / "data.txt").is_file())


def _read_ints(path: Path) -> np.ndarray:
    if not path.is_file():
        raise ValueError(f"{path}: file not found")
    values = np.loadtxt(path, ndmin=1)
    if values.size == 0 or not np.all(values == np.round(values)):
        raise ValueError(f"{path}: expected integers, one per line")
    return values.astype(np.int64)


def validation_carve(
    train_rows: np.ndarray, val_frac: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Split the training rows into (train, val): val = the last ⌈val_frac·n⌉ of a permutation.

    p = RandomState(seed).permutation(n); val = rows[p[n − n_val:]]; train = the other rows, in
    their published order (so ``val_frac = 0`` returns the published training split unchanged).
    """
    n = len(train_rows)
    n_val = math.ceil(val_frac * n)
    held_out = np.random.RandomState(seed).permutation(n)[n - n_val :]
    keep = np.ones(n, dtype=bool)
    keep[held_out] = False
    return train_rows[keep], train_rows[held_out]


def load_uci_split(folder: Path, split: int, val_frac: float, val_seed: int) -> Splits:
    """Raw-unit splits of one UCI data set: the published train/test rows of split k."""
    if not (folder / "data.txt").is_file():
        raise ValueError(f"{folder}: no data.txt here")
    data = np.loadtxt(folder / "data.txt", ndmin=2)  # [rows, cols]
    features = _read_ints(folder / "index_features.txt")
    target = _read_ints(folder / "index_target.txt")
    n_splits = int(_read_ints(folder / "n_splits.txt")[0])
    if not 0 <= split < n_splits:
        raise ValueError(
            f"data.split must be in 0..{n_splits - 1} for {folder.name}, got {split!r}"
        )
    train_rows = _read_ints(folder / f"index_train_{split}.txt")
    test_rows = _read_ints(folder / f"index_test_{split}.txt")
    rows, cols = data.shape
    for name, index, bound in (
        ("row", train_rows, rows),
        ("row", test_rows, rows),
        ("column", features, cols),
        ("column", target, cols),
    ):
        if index.min() < 0 or index.max() >= bound:
            raise ValueError(f"{folder}: a {name} index is outside 0..{bound - 1}")
    if np.intersect1d(train_rows, test_rows).size:
        raise ValueError(f"{folder}: split {split} has rows in both train and test")
    if not np.all(np.isfinite(data)):
        row, col = np.argwhere(~np.isfinite(data))[0]
        raise ValueError(f"{folder / 'data.txt'}: non-finite value at row {row}, column {col}")
    train_rows, val_rows = validation_carve(train_rows, val_frac, val_seed)
    x, y = data[:, features], data[:, target]  # [rows, D_in], [rows, 1]
    return Splits(
        x[train_rows],
        y[train_rows],
        x[val_rows],
        y[val_rows],
        x[test_rows],
        y[test_rows],
        feature_names=[f"x{c}" for c in features],
        target_names=["y"],
        test_rows=test_rows,
    )


class Uci(RegressionDataModule):
    """One UCI data set (``name`` is its folder) at one published split ``split``."""

    def __init__(
        self,
        name: str,
        split: int = 0,
        root: str | None = None,
        val_frac: float = 0.1,
        val_seed: int = 0,
        **kwargs: int,
    ) -> None:
        super().__init__(**kwargs)
        if isinstance(split, bool) or not isinstance(split, int) or split < 0:
            raise ValueError(f"data.split must be a non-negative integer, got {split!r}")
        check_fraction("val_frac", val_frac)
        self.root = Path(root) if root is not None else default_root()
        if not self.root.is_dir():
            raise ValueError(f"data.root {str(self.root)!r} is not a folder")
        names = available(self.root)
        if name not in names:
            raise ValueError(
                f"data.name {name!r} is not a UCI data set in {self.root}; choose from {names}"
            )
        self.dataset, self.split = name, split
        self.val_frac, self.val_seed = float(val_frac), val_seed

    def load(self) -> Splits:
        return load_uci_split(self.root / self.dataset, self.split, self.val_frac, self.val_seed)
