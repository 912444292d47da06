"""``launcher=replicas``: a sweep's jobs that differ only in ``seed`` / ``data.split`` /
``data.noise_seed`` (bnnlv.runs.replicas.RUN_KEYS) trained together in one process, on the
model's replica axis (bnnlv.runs.train.train_replicas).

Every job first goes through Hydra's own job set-up as with the default launcher (its folder,
``.hydra/`` with its overrides, its config checked by :func:`bnnlv.runs.train_app.prepared`);
then the jobs whose configs are equal but for those keys (bnnlv.runs.replicas.group_key) train as
one group, and each job's folder gets what ``bnnlv train`` writes for it alone, to float rounding.
A job alone in its group, or one that resumes a run, trains as ``bnnlv train`` does. A job
whose config is bad, or whose replica diverges, fails alone; the sweep's summary is unchanged.

Hydra only loads launchers from its ``hydra_plugins`` package: the class Hydra instantiates is
``hydra_plugins.bnnlv_replicas.replicas_launcher.ReplicasLauncher``, a subclass of
:class:`GroupingLauncher` registered there with its config.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import Any

from hydra.core.utils import JobReturn, configure_log, filter_overrides, run_job, setup_globals
from hydra.plugins.launcher import Launcher
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig, open_dict

from bnnlv.runs import job
from bnnlv.runs.cli import relaunchable
from bnnlv.runs.train_app import prepared, reported

log = logging.getLogger(__name__)


class Prepared:
    """A job whose config passed its checks: the config it trains and its folder."""

    def __init__(self, cfg: DictConfig, run_dir: Path, returned: JobReturn) -> None:
        self.cfg, self.run_dir, self.returned = cfg, run_dir, returned

    @property
    def key(self) -> str:
        """Jobs with equal keys train together; a resumed run trains alone."""
        from bnnlv.runs.replicas import group_key  # imports torch: not when Hydra scans plugins

        return f"resume {self.run_dir}" if self.cfg.get("resume") else group_key(self.cfg)


class GroupingLauncher(Launcher):
    """Hydra's basic launcher (jobs one after another in this process), but jobs that differ
    only in ``seed`` / ``data.split`` / ``data.noise_seed`` train together."""

    def __init__(self) -> None:
        self.config: DictConfig | None = None
        self.hydra_context: HydraContext | None = None

    def setup(
        self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig
    ) -> None:
        self.config, self.hydra_context = config, hydra_context

    def launch(
        self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int
    ) -> Sequence[JobReturn]:
        assert self.config is not None and self.hydra_context is not None
        setup_globals()
        configure_log(self.config.hydra.hydra_logging, self.config.hydra.verbose)
        Path(str(self.config.hydra.sweep.dir)).mkdir(parents=True, exist_ok=True)
        returns: list[JobReturn] = []
        jobs: list[Prepared] = []
        for idx, overrides in enumerate(job_overrides, start=initial_job_idx):
            log.info(f"\t#{idx} : {' '.join(filter_overrides(overrides))}")
            returned, ready = self._prepare(idx, overrides)
            returns.append(returned)
            jobs += ready
            configure_log(self.config.hydra.hydra_logging, self.config.hydra.verbose)
        groups: dict[str, list[Prepared]] = {}
        for ready_job in jobs:
            groups.setdefault(ready_job.key, []).append(ready_job)
        for group in groups.values():
            train_group(group)
        return returns

    def _prepare(self, idx: int, overrides: Sequence[str]) -> tuple[JobReturn, list[Prepared]]:
        """Hydra's set-up of job ``idx`` (folder, ``.hydra/``, logging), its config checked."""
        assert self.config is not None and self.hydra_context is not None
        sweep_config = self.hydra_context.config_loader.load_sweep_config(
            self.config, list(overrides)
        )
        with open_dict(sweep_config):
            sweep_config.hydra.job.id = sweep_config.hydra.job.num = idx
        checked: list[tuple[DictConfig, Path]] = []

        def task(cfg: DictConfig) -> None:
            from hydra.core.hydra_config import HydraConfig

            run_dir = Path(HydraConfig.get().runtime.output_dir)
            job_cfg = job.run_job(run_dir, lambda: prepared(cfg), resumed=bool(cfg.get("resume")))
            if job_cfg is not None:
                checked.append((job_cfg, run_dir))

        returned = run_job(
            hydra_context=self.hydra_context, task_function=task, config=sweep_config,
            job_dir_key="hydra.sweep.dir", job_subdir_key="hydra.sweep.subdir",
        )  # fmt: skip
        return returned, [Prepared(cfg, run_dir, returned) for cfg, run_dir in checked]


def train_group(group: Sequence[Prepared]) -> None:
    """Train the jobs of one group together (one alone as ``bnnlv train``); each job's outcome
    reported as its own (bnnlv.runs.job.run_job) and its validation NLL set as its return."""
    from bnnlv.runs.train import train_replicas  # torch and Lightning: once a config is good

    job.freeze_imports()
    relaunchable("train")
    cfgs, run_dirs = [j.cfg for j in group], [j.run_dir for j in group]
    outcomes: list[Any]
    try:
        outcomes = list(train_replicas(cfgs, run_dirs))
    except (Exception, KeyboardInterrupt) as error:  # recorded in every folder
        # reported below through each job's run_job: a failure per job, an interrupt once
        outcomes = [error] * len(group)
    for ready_job, outcome in zip(group, outcomes, strict=True):
        with _as_job(ready_job.returned):
            metrics = job.run_job(ready_job.run_dir, partial(_returned, outcome), resumed=False)
        ready_job.returned.return_value = reported(metrics, ready_job.run_dir)


@contextmanager
def _as_job(returned: JobReturn) -> Iterator[None]:
    """Hydra's record of the job (HydraConfig.get()) while its outcome is reported."""
    from hydra.core.hydra_config import HydraConfig

    previous = HydraConfig.instance().cfg
    assert returned.hydra_cfg is not None
    HydraConfig.instance().set_config(returned.hydra_cfg)
    try:
        yield
    finally:
        HydraConfig.instance().cfg = previous


def _returned(outcome: Any) -> dict[str, Any]:
    """A run's metrics, or the failure it had raised (a diverged run's, from its record)."""
    if isinstance(outcome, BaseException):
        raise outcome
    if outcome.get("status") != "ok":
        from bnnlv.model.divergence import DivergenceError

        raise DivergenceError(outcome["error"])
    return dict(outcome)
