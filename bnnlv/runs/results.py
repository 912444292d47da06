"""Writing a run's results folder: atomic JSON/CSV writes and the run status record.

A file appears under its final name only once complete (write to a temporary sibling, then
``os.replace``), so nothing half-written passes as a result. ``mkstemp`` creates the temporary
file ``-rw-------`` whatever the umask; :func:`temporary_sibling` gives it the mode an ordinary
``open`` would have, 0666 & ~umask, so results are as readable as the PNGs beside them.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pandas costs ~0.3 s to import; the CLI reports config errors before that
    import pandas as pd

METRICS_FILE = "metrics.json"
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


def _atomic_write(path: Path, write: Any, mode: str = "w") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = temporary_sibling(path)
    try:
        with os.fdopen(fd, mode, newline=None if "b" in mode else "") as handle:
            write(handle)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _json_safe(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def write_json(path: Path, payload: Mapping[str, Any]) -> None:
    """Atomically write a flat JSON object (non-finite floats become null)."""
    clean = {key: _json_safe(value) for key, value in payload.items()}
    _atomic_write(path, lambda h: json.dump(clean, h, indent=2, sort_keys=False))


def write_csv(path: Path, frame: pd.DataFrame) -> None:
    """Atomically write a CSV without the index."""
    _atomic_write(path, lambda h: frame.to_csv(h, index=False))


def write_text(path: Path, text: str) -> None:
    _atomic_write(path, lambda h: h.write(text))


def write_bytes(path: Path, data: bytes) -> None:
    """Atomically write a binary file (a rendered figure)."""
    _atomic_write(path, lambda h: h.write(data), mode="wb")


def write_torch(path: Path, payload: Mapping[str, Any]) -> None:
    """Atomically ``torch.save`` a dict of tensors and plain data (loadable with
    ``weights_only=True``)."""
    import torch  # here, not at the top: the CLI imports this module and starts faster without

    _atomic_write(path, lambda h: torch.save(dict(payload), h), mode="wb")


def read_metrics(run_dir: Path) -> dict[str, Any]:
    """metrics.json of a run, or {} when it has none yet."""
    path = Path(run_dir) / METRICS_FILE
    if not path.is_file():
        return {}
    with path.open() as handle:
        data: dict[str, Any] = json.load(handle)
    return data
