"""Writing a run's results folder: atomic JSON/CSV/torch writes (bnnlv.report.files) and the
run status record."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bnnlv.report.files import atomic_write

if TYPE_CHECKING:  # pandas costs ~0.3 s to import; the CLI reports config errors before that
    import pandas as pd

METRICS_FILE = "metrics.json"


def _json_safe(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def write_json(path: Path, payload: Mapping[str, Any]) -> None:
    """Atomically write a flat JSON object (non-finite floats become null)."""
    clean = {key: _json_safe(value) for key, value in payload.items()}
    atomic_write(path, lambda h: json.dump(clean, h, indent=2, sort_keys=False))


def write_csv(path: Path, frame: pd.DataFrame) -> None:
    """Atomically write a CSV without the index."""
    atomic_write(path, lambda h: frame.to_csv(h, index=False))


def write_text(path: Path, text: str) -> None:
    atomic_write(path, lambda h: h.write(text))


def write_torch(path: Path, payload: Mapping[str, Any]) -> None:
    """Atomically ``torch.save`` a dict of tensors and plain data (loadable with
    ``weights_only=True``)."""
    import torch  # here, not at the top: the CLI imports this module and starts faster without

    atomic_write(path, lambda h: torch.save(dict(payload), h), mode="wb")


def read_metrics(run_dir: Path) -> dict[str, Any]:
    """metrics.json of a run, or {} when it has none yet."""
    path = Path(run_dir) / METRICS_FILE
    if not path.is_file():
        return {}
    with path.open() as handle:
        data: dict[str, Any] = json.load(handle)
    return data
