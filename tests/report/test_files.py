"""bnnlv.report.files: a file appears whole or not at all, with the mode an ordinary open gives."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

import pytest

from bnnlv.report import files
from bnnlv.report.files import atomic_write, current_umask


@contextmanager
def umask(mask: int) -> Iterator[None]:
    """The process umask set to ``mask`` inside, restored after."""
    previous = os.umask(mask)
    try:
        yield
    finally:
        os.umask(previous)


def test_binary_writes_are_atomic_and_keep_their_bytes(tmp_path: Path) -> None:
    path = tmp_path / "figure.png"
    atomic_write(path, lambda h: h.write(b"\x89PNG first"), mode="wb")
    atomic_write(path, lambda h: h.write(b"\x89PNG\r\n"), mode="wb")
    assert path.read_bytes() == b"\x89PNG\r\n"  # binary: no newline change
    assert [p.name for p in tmp_path.iterdir()] == ["figure.png"]


def test_a_write_cut_halfway_keeps_the_old_file_and_leaves_no_temporary(tmp_path: Path) -> None:
    path = tmp_path / "figure.png"
    atomic_write(path, lambda h: h.write(b"old"), mode="wb")

    def half_then_fail(handle: IO[bytes]) -> None:
        handle.write(b"half of a new")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        atomic_write(path, half_then_fail, mode="wb")
    assert path.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["figure.png"]


@pytest.mark.parametrize("mask", [0o022, 0o077, 0o002])
def test_a_file_gets_the_mode_an_ordinary_open_gives(tmp_path: Path, mask: int) -> None:
    with umask(mask):
        atomic_write(tmp_path / "written.txt", lambda h: h.write("x"))
        (tmp_path / "plain.txt").write_text("made by open()")
    modes = {p.name: p.stat().st_mode & 0o777 for p in tmp_path.iterdir()}
    assert modes == dict.fromkeys(modes, 0o666 & ~mask) and len(modes) == 2


@pytest.mark.parametrize("mask", [0o022, 0o077])
def test_current_umask_reads_without_proc_too(
    mask: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with umask(mask):
        assert current_umask() == mask
        monkeypatch.setattr(files, "PROC_STATUS", tmp_path / "absent")
        assert current_umask() == mask
        assert current_umask() == mask  # reading it left it as it was
