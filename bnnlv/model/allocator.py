"""Keep freed tensor memory in the process, so that a new activation costs no page faults (glibc).

glibc's ``malloc`` serves a large request (≥ 128 KiB, a threshold that adapts up to 32 MiB) with a
fresh ``mmap`` and gives it back to the system on ``free``. Every [K, B, H] activation of a training
step is such a request, so every step faults each 4 KiB page of them in again: at batch 10,000,
K = 10, hidden [50, 50, 50] about 40,000 faults, a third of the step on the CPU (measured on the
2-core machine: 182–220 → 123–134 ms a step; batch 100,000: 2.24 → 1.25 s). Raising the mmap and
trim thresholds to their maximum (``mallopt`` takes an ``int``: 2 GiB − 1) makes ``malloc`` reuse
freed heap memory instead. Numbers are unchanged: only where the bytes live. The price: the process
keeps its peak memory until it exits, rather than returning it after the peak.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys

M_TRIM_THRESHOLD = -1  # glibc <malloc.h>
M_MMAP_THRESHOLD = -3
MAX_THRESHOLD = 2**31 - 1


def keep_freed_memory() -> bool:
    """Set glibc's mmap and trim thresholds to the maximum for this process.

    Returns whether both were set: False off Linux or without glibc (musl has no ``mallopt``).
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        mallopt = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").mallopt
    except (OSError, AttributeError):
        return False
    mmap_set = mallopt(M_MMAP_THRESHOLD, MAX_THRESHOLD)
    trim_set = mallopt(M_TRIM_THRESHOLD, MAX_THRESHOLD)
    return bool(mmap_set and trim_set)
