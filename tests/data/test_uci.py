"""The UCI data module: published splits read exactly, validation carved from training rows only,
zero-variance columns guarded, bad names, splits and files rejected (shared/data/uci/README.md).

Tests on the real files read ``../shared/data/uci`` beside the repository and skip without it; the
rejection tests build a tiny data set in a temporary folder.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from bnnlv.data.uci import Uci, available, default_root, load_uci_split, validation_carve

REPO = Path(__file__).resolve().parents[2]
SHARED = REPO / ".." / "shared" / "data" / "uci"
needs_data = pytest.mark.skipif(
    not (SHARED / "bostonHousing").is_dir(), reason=f"no UCI data at {SHARED}"
)


def test_validation_carve_partitions_the_training_rows() -> None:
    rows = np.arange(100, 200)
    train, val = validation_carve(rows, 0.15, seed=0)
    assert len(val) == 15 and len(train) == 85
    assert sorted(np.concatenate([train, val]).tolist()) == rows.tolist()
    p = np.random.RandomState(0).permutation(100)
    np.testing.assert_array_equal(val, rows[p[85:]])
    again, _ = validation_carve(rows, 0.15, seed=0)
    np.testing.assert_array_equal(train, again)
    np.testing.assert_array_equal(train, np.setdiff1d(rows, val))  # published order kept
    all_train, none = validation_carve(rows, 0.0, seed=0)
    assert len(none) == 0
    np.testing.assert_array_equal(all_train, rows)


@needs_data
def test_default_root_is_shared_data_beside_the_repo(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(REPO)
    assert default_root() == SHARED.resolve()
    monkeypatch.chdir(tmp_path)  # not found from here: falls back to the repository root
    assert default_root() == SHARED.resolve()
    assert len(available(SHARED)) == 9


@needs_data
def test_boston_split_matches_the_reference_loader() -> None:
    """README's minimal loader, with validation carved out of the training rows."""
    folder = SHARED / "bostonHousing"
    data = np.loadtxt(folder / "data.txt")
    train_rows = np.loadtxt(folder / "index_train_3.txt", dtype=int)
    test_rows = np.loadtxt(folder / "index_test_3.txt", dtype=int)
    module = Uci(name="bostonHousing", split=3, root=str(SHARED), val_frac=0.1, val_seed=7)
    s = module.splits
    assert (len(s.x_train), len(s.x_val), len(s.x_test)) == (409, 46, 51)
    assert s.x_train.shape[1] == 13 and s.y_train.shape[1] == 1
    np.testing.assert_array_equal(s.x_test, data[test_rows, :13])
    np.testing.assert_array_equal(s.y_test[:, 0], data[test_rows, 13])
    train, val = validation_carve(train_rows, 0.1, seed=7)
    np.testing.assert_array_equal(s.x_train, data[train, :13])
    np.testing.assert_array_equal(s.y_val[:, 0], data[val, 13])
    assert not set(map(tuple, s.x_val)) & set(map(tuple, s.x_test))
    whole = Uci(name="bostonHousing", split=3, root=str(SHARED), val_frac=0.0).splits
    np.testing.assert_array_equal(whole.x_train, data[train_rows, :13])
    assert len(whole.x_val) == 0


@needs_data
def test_naval_constant_columns_standardise_to_finite_constants() -> None:
    module = Uci(name="naval-propulsion-plant", split=0, root=str(SHARED))
    x_train, _ = module.tensors("train")
    x_test, _ = module.tensors("test")
    assert torch.isfinite(x_train).all() and torch.isfinite(x_test).all()
    assert x_train.abs().max() < 10 and x_test.abs().max() < 10
    for column in (8, 11):  # constant in the file (README): constant, bounded after scaling
        assert x_train[:, column].unique().numel() == 1
        assert x_test[:, column].unique().numel() == 1


@needs_data
@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"name": "boston"}, ["'boston'", "bostonHousing"]),
        ({"name": "protein-tertiary-structure", "split": 5}, ["data.split", "0..4"]),
        ({"name": "yacht", "split": -1}, ["data.split", "-1"]),
        ({"name": "yacht", "val_frac": 1.0}, ["data.val_frac"]),
    ],
)
def test_bad_names_and_splits_are_rejected(kwargs: dict[str, object], words: list[str]) -> None:
    with pytest.raises(ValueError) as error:
        Uci(root=str(SHARED), **kwargs).prepare()  # type: ignore[arg-type]
    for word in words:
        assert word in str(error.value)


def test_missing_root_is_rejected(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"data\.root"):
        Uci(name="yacht", root=str(tmp_path / "nowhere"))


def _tiny(tmp_path: Path, data: str, train: str = "0\n1\n2\n", test: str = "3\n") -> Path:
    folder = tmp_path / "tiny"
    folder.mkdir()
    for name, text in [
        ("data.txt", data),
        ("index_features.txt", "0\n1\n"),
        ("index_target.txt", "2\n"),
        ("n_splits.txt", "1\n"),
        ("index_train_0.txt", train),
        ("index_test_0.txt", test),
    ]:
        (folder / name).write_text(text)
    return folder


GOOD = "1 2 3\n4 5 6\n7  8\t9\n10 11 12\n"


def test_tiny_data_set_reads_whitespace_separated_columns(tmp_path: Path) -> None:
    s = load_uci_split(_tiny(tmp_path, GOOD), 0, val_frac=0.0, val_seed=0)
    np.testing.assert_array_equal(s.x_train, [[1, 2], [4, 5], [7, 8]])
    np.testing.assert_array_equal(s.y_test, [[12]])
    assert Uci(name="tiny", root=str(tmp_path)).in_features == 2


@pytest.mark.parametrize(
    ("data", "train", "test", "words"),
    [
        (GOOD.replace("5", "nan"), "0\n1\n2\n", "3\n", ["data.txt", "non-finite", "row 1"]),
        (GOOD, "0\n1\n9\n", "3\n", ["row index", "0..3"]),
        (GOOD, "0\n1\n2\n", "2\n", ["both train and test"]),
        (GOOD, "0\n1.5\n", "3\n", ["index_train_0.txt", "integers"]),
    ],
)
def test_broken_files_are_rejected(
    tmp_path: Path, data: str, train: str, test: str, words: list[str]
) -> None:
    with pytest.raises(ValueError) as error:
        load_uci_split(_tiny(tmp_path, data, train, test), 0, val_frac=0.0, val_seed=0)
    for word in words:
        assert word in str(error.value)
