"""Files that appear whole or not at all: write to a temporary sibling, then ``os.replace``, so
that nothing half-written passes as a result or a figure. ``mkstemp`` creates the temporary file
``-rw-------`` whatever the umask; :func:`temporary_sibling` gives it the mode an ordinary
``open`` would have, 0666 & ~umask, so results and figures are as readable as any other file.

Here, below ``runs/``, so that the report's figures are written the same way as a run's results.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

PROC_STATUS = Path("/proc/self/status")


def current_umask() -> int:
    """The process's umask, read without changing it where the system shows it (the ``Umask:``
    line of /proc/self/status, Linux ≥ 4.7). Elsewhere it can only be read by setting it: it is
    set to 0o077 for that instant, so that a file another thread creates meanwhile is private
    rather than more open than asked, and restored at once."""
    try:
        for line in PROC_STATUS.read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o077)
    os.umask(mask)
    return mask


def file_mode() -> int:
    """The permission bits an ordinary ``open`` gives a new file: 0666 & ~umask."""
    return 0o666 & ~current_umask()


def temporary_sibling(path: Path) -> tuple[int, str]:
    """(open descriptor, name) of a new temporary file beside ``path``, mode :func:`file_mode`."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, file_mode())
    except BaseException:
        os.close(fd)
        Path(tmp).unlink(missing_ok=True)
        raise
    return fd, tmp


def atomic_write(path: Path, write: Any, mode: str = "w") -> None:
    """Call ``write(handle)`` on a temporary sibling of ``path`` opened with ``mode``, then
    rename it to ``path``; on any exception the temporary file is removed and ``path`` is left as
    it was."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = temporary_sibling(path)
    try:
        with os.fdopen(fd, mode, newline=None if "b" in mode else "") as handle:
            write(handle)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
