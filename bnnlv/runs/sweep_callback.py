"""The Hydra callback of ``bnnlv train`` and ``bnnlv policy`` (``hydra.callbacks`` in their
configs): the sweep's summary when a multirun ends.

Kept apart from :mod:`bnnlv.runs.sweep`, which it imports only when a sweep ends: Hydra creates
its callbacks before every run, and a single run must not pay ≈ 1.5 s for pandas and matplotlib
before it can report a bad config value.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from bnnlv.runs.errors import FAILED_JOBS


class SummaryCallback(Callback):
    """Hydra callback: summarise the sweep when the multirun ends. Jobs that are not ok join
    ``runs.errors.FAILED_JOBS`` (whatever process or machine ran them), so the command exits 1.

    A command other than ``train`` names its main ``metric``, the ``table_metrics`` of
    summary.md (default: bnnlv.runs.sweep.TABLE_METRICS) and its own ``plots`` and ``sections``
    (dotted names of bnnlv.runs.sweep.SweepPlot and SweepSection functions of the bnnlv package)
    in its config's ``hydra.callbacks.summary``; ``bnnlv summarize`` reads them back from the
    sweep's multirun.yaml.
    """

    def __init__(
        self,
        metric: str | None = None,
        table_metrics: Sequence[str] | None = None,
        plots: Sequence[str] = (),
        sections: Sequence[str] = (),
    ) -> None:
        self.metric, self.table_metrics, self.plots = metric, table_metrics, list(plots)
        self.sections = list(sections)

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        from bnnlv.runs.sweep import summarize_by_name

        sweep_dir = Path(str(config.hydra.sweep.dir))
        summary = summarize_by_name(
            sweep_dir, self.metric, self.table_metrics, self.plots, self.sections
        )
        n_ok = len(summary.jobs) - summary.n_failed
        print(f"bnnlv: sweep: {n_ok} ok, {summary.n_failed} not ok → {sweep_dir / 'summary.md'}")
        known = {path.resolve() for path in FAILED_JOBS}
        for job in summary.jobs.loc[summary.jobs["status"] != "ok", "job"]:
            if (sweep_dir / job).resolve() not in known:
                FAILED_JOBS.append(sweep_dir / job)
