"""Writing a run's results folder: atomic JSON/CSV writes and the run status record.

A file appears under its final name only once complete (write to a temporary sibling, then
``os.replace``), so nothing half-written passes as a result.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

METRICS_FILE = "metrics.json"


def _atomic_write(path: Path, write: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", newline="") as handle:
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


def read_metrics(run_dir: Path) -> dict[str, Any]:
    """metrics.json of a run, or {} when it has none yet."""
    path = Path(run_dir) / METRICS_FILE
    if not path.is_file():
        return {}
    with path.open() as handle:
        data: dict[str, Any] = json.load(handle)
    return data
