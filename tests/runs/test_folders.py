"""bnnlv.runs.folders: run folders claimed atomically, never shared."""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from bnnlv.runs.folders import (
    RESUMED_HYDRA_SUBDIR,
    checkpoint_path,
    claim_dir,
    hydra_subdir,
    release_claimed,
    release_if_unused,
    run_dir,
)


def test_the_same_name_twice_gives_two_folders(tmp_path: Path) -> None:
    prefix = str(tmp_path / "2025-01-01" / "10-00-00")
    first, second = claim_dir(prefix), claim_dir(prefix)
    assert first == prefix and second == f"{prefix}-2"
    assert Path(first).is_dir() and Path(second).is_dir()


def test_runs_started_together_never_share_a_folder(tmp_path: Path) -> None:
    prefix = str(tmp_path / "10-00-00")
    with ThreadPoolExecutor(max_workers=8) as pool:
        claimed = list(pool.map(lambda _: claim_dir(prefix), range(16)))
    assert len(set(claimed)) == 16
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(Path(c).name for c in claimed)


def test_claim_rejects_an_empty_prefix() -> None:
    with pytest.raises(ValueError, match="non-empty path, got ''"):
        claim_dir("")


def test_run_dir_is_the_resumed_folder_or_a_new_one(tmp_path: Path) -> None:
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.yaml").write_text("seed: 0\n")
    assert run_dir(str(run), str(tmp_path / "new")) == str(run)
    assert not (tmp_path / "new").exists()
    assert run_dir(None, str(tmp_path / "new")) == str(tmp_path / "new")
    with pytest.raises(ValueError, match="not a bnnlv run folder"):
        run_dir(str(tmp_path / "new"), str(tmp_path / "other"))


def test_a_resumed_run_keeps_its_original_hydra_record() -> None:
    assert hydra_subdir(None) == ".hydra"
    assert hydra_subdir("outputs/run") == RESUMED_HYDRA_SUBDIR


def test_a_claimed_folder_holding_only_hydras_record_is_released(tmp_path: Path) -> None:
    """What a command that failed before writing a result leaves: the folder it claimed, with
    .hydra/ and its log. Released with the parents it created, up to one that existed."""
    folder = Path(claim_dir(str(tmp_path / "run" / "evaluate" / "2026-01-01_10-00-00")))
    (folder / ".hydra").mkdir()
    (folder / ".hydra" / "config.yaml").write_text("seed: 0\n")
    (folder / "saved.log").write_text("")
    assert release_if_unused(folder)
    assert list(tmp_path.iterdir()) == []
    assert not release_if_unused(folder)  # gone, and no longer claimed


def test_a_folder_with_results_or_not_claimed_here_is_kept(tmp_path: Path) -> None:
    (tmp_path / "run").mkdir()
    kept = Path(claim_dir(str(tmp_path / "run" / "evaluate" / "t")))
    (kept / "metrics.json").write_text("{}")
    assert not release_if_unused(kept) and kept.is_dir()
    given = tmp_path / "given"  # hydra.run.dir=… a folder that existed: not ours to remove
    given.mkdir()
    assert not release_if_unused(given) and given.is_dir()
    sibling = Path(claim_dir(str(tmp_path / "run" / "evaluate" / "u")))
    assert release_if_unused(sibling)
    assert (tmp_path / "run" / "evaluate").is_dir()  # its other folder still lives there


def test_checkpoint_path_names_what_is_missing_and_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"run_dir=.*: not a bnnlv run folder \(no config.yaml\)"):
        checkpoint_path(tmp_path)
    (tmp_path / "metrics.json").write_text('{"status": "interrupted"}')  # stopped while set up
    with pytest.raises(ValueError, match=r"resume=.*: the run stopped before it began "
                       r"\(no config.yaml\): start it again"):  # fmt: skip
        checkpoint_path(tmp_path, "resume")
    (tmp_path / "config.yaml").write_text("seed: 0\n")
    with pytest.raises(ValueError, match=r"resume=.*: no checkpoint at checkpoints/last\.ckpt "
                       r"\(the run stopped before its first update\): start it again"):  # fmt: skip
        checkpoint_path(tmp_path, "resume")
    (tmp_path / "checkpoints").mkdir()
    (tmp_path / "checkpoints" / "last.ckpt").write_bytes(b"")
    assert checkpoint_path(tmp_path) == tmp_path / "checkpoints" / "last.ckpt"


def test_a_run_folder_holding_only_the_record_of_its_stop_is_released(tmp_path: Path) -> None:
    """A run that stopped before its first update: Hydra's record, and the metrics.json the
    caller names as its own; the log handler writing into the folder is closed."""
    folder = Path(claim_dir(str(tmp_path / "outputs" / "2026-01-01_10-00-00")))
    (folder / ".hydra").mkdir()
    (folder / "metrics.json").write_text("{}")
    log = logging.FileHandler(folder / "train.log", delay=True)
    logging.getLogger("bnnlv").addHandler(log)
    try:
        assert not release_if_unused(folder)  # metrics.json is not Hydra's: a caller names it
        assert release_if_unused(folder, ["metrics.json"])
        assert log not in logging.getLogger("bnnlv").handlers
        assert list(tmp_path.iterdir()) == []
    finally:
        logging.getLogger("bnnlv").removeHandler(log)


def test_release_claimed_gives_back_every_unused_folder_claimed_here(tmp_path: Path) -> None:
    """What an interrupt outside the task leaves: claimed folders with no more than Hydra's
    record go, one with anything else in it stays."""
    unused, used = claim_dir(str(tmp_path / "a")), claim_dir(str(tmp_path / "b"))
    (Path(unused) / ".hydra").mkdir()
    (Path(used) / "predictions.csv").write_text("x\n")
    release_claimed()
    assert not Path(unused).exists() and Path(used).exists()


def test_release_claimed_removes_the_parents_it_created_whatever_the_claim_order(
    tmp_path: Path,
) -> None:
    """A run folder and a sweep folder claimed under one new outputs/ (what composing a config
    that overrides train's folders leaves): both go, and outputs/ with them."""
    outputs = tmp_path / "outputs"
    claim_dir(str(outputs / "2025-01-01_10-00-00"))
    claim_dir(str(outputs / "multirun" / "2025-01-01_10-00-00"))
    release_claimed()
    assert list(tmp_path.iterdir()) == []
