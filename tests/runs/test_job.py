"""bnnlv.runs.job: one job of a Hydra task."""

from __future__ import annotations

import gc

from bnnlv.runs.job import freeze_imports


def test_freeze_imports_leaves_the_imported_objects_out_of_collection() -> None:
    gc.unfreeze()
    tracked = len(gc.get_objects())
    try:
        freeze_imports()
        assert gc.get_freeze_count() >= 0.9 * tracked
        assert len(gc.get_objects()) < 0.1 * tracked  # what a collection still walks
    finally:
        gc.unfreeze()
