"""keep_freed_memory: glibc's mmap/trim thresholds raised so freed memory is reused.

The speed effect (fewer page faults per step) is measured by scripts/bench.py, not here: fault
counts depend on what else the process did and would make a flaky test.
"""

from __future__ import annotations

import ctypes.util
import sys

import pytest

from bnnlv.model import allocator
from bnnlv.model.allocator import keep_freed_memory


@pytest.mark.skipif(
    not sys.platform.startswith("linux") or ctypes.util.find_library("c") is None,
    reason="glibc malloc only",
)
def test_sets_both_thresholds_on_glibc() -> None:
    assert keep_freed_memory()
    assert keep_freed_memory()  # idempotent


def test_is_a_no_op_off_linux(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(allocator.sys, "platform", "darwin")
    assert keep_freed_memory() is False
