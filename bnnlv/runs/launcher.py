"""``launcher=replicas``: a sweep's jobs that differ only in ``seed`` / ``data.split`` /
``data.noise_seed`` (bnnlv.runs.grouping.RUN_KEYS) trained together in one process, on the
model's replica axis: ``bnnlv train``'s (bnnlv.runs.train.train_replicas) and ``bnnlv active``'s
(bnnlv.active.app.run_group: the runs go through their rounds together).

Every job first goes through Hydra's own job set-up as with the default launcher (its folder,
``.hydra/`` with its overrides, its config checked by the command's ``prepared``, such as
:func:`bnnlv.runs.train_app.prepared`); then the jobs whose configs are equal but for those keys
(bnnlv.runs.grouping.group_key) train as one group, and each job's folder gets what the command
writes for it alone, to float rounding. A job alone in its group, or one that resumes a run, runs
as the command alone does. A job whose config is bad, or whose replica diverges, fails alone; the
sweep's summary is unchanged. Other commands (``bnnlv policy``) are refused: their jobs are not
runs of one model.

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
from typing import Any, NamedTuple

from hydra.core.utils import JobReturn, configure_log, filter_overrides, run_job, setup_globals
from hydra.plugins.launcher import Launcher
from hydra.types import HydraContext, TaskFunction
from hydra.utils import get_method
from omegaconf import DictConfig, open_dict

from bnnlv.runs import job
from bnnlv.runs.cli import relaunchable
from bnnlv.runs.grouping import group_key

log = logging.getLogger(__name__)


class Command(NamedTuple):
    """What the launcher calls for the jobs of one command (dotted names, imported when used:
    a command's package may import this one)."""

    prepared: str  # cfg → the job's config, checked (before torch is imported)
    runs: str  # (cfgs, run_dirs) → each run's metrics, the runs made together
    reported: str  # (metrics or None, run_dir) → the job's return value; prints its line


# the commands whose jobs train together, by Hydra job name (hydra.job.name of their config)
COMMANDS = {
    "train": Command("bnnlv.runs.train_app.prepared", "bnnlv.runs.train.train_replicas",
                     "bnnlv.runs.train_app.reported"),
    "active": Command("bnnlv.active.app.prepared", "bnnlv.active.app.run_group",
                      "bnnlv.active.app.reported"),
}  # fmt: skip


class Prepared:
    """A job whose config passed its checks: the config it trains and its folder."""

    def __init__(self, cfg: DictConfig, run_dir: Path, returned: JobReturn) -> None:
        self.cfg, self.run_dir, self.returned = cfg, run_dir, returned

    @property
    def key(self) -> str:
        """Jobs with equal keys train together; a resumed run trains alone."""
        return f"resume {self.run_dir}" if self.cfg.get("resume") else group_key(self.cfg)


class GroupingLauncher(Launcher):
    """Hydra's basic launcher (jobs one after another in this process), but jobs that differ
    only in ``seed`` / ``data.split`` / ``data.noise_seed`` train together."""

    def __init__(self) -> None:
        self.config: DictConfig | None = None
        self.hydra_context: HydraContext | None = None
        self.command = COMMANDS["train"]
        self.name = "train"

    def setup(
        self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig
    ) -> None:
        self.config, self.hydra_context = config, hydra_context
        self.name = str(config.hydra.job.name)
        if self.name not in COMMANDS:
            raise ValueError(
                f"launcher=replicas trains the jobs of bnnlv {' and bnnlv '.join(COMMANDS)}, "
                f"not of bnnlv {self.name}: drop launcher=replicas"
            )
        self.command = COMMANDS[self.name]

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
            train_group(group, self.name, self.command)
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
        prepared = get_method(self.command.prepared)

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


def train_group(group: Sequence[Prepared], name: str, command: Command) -> None:
    """Train the jobs of one group of command ``name`` together (one alone as the command runs
    it); each job's outcome reported as its own (bnnlv.runs.job.run_job) and its return (train's
    validation NLL) set."""
    runs = get_method(command.runs)  # torch and Lightning: once a config is good

    job.freeze_imports()
    relaunchable(name)
    cfgs, run_dirs = [j.cfg for j in group], [j.run_dir for j in group]
    outcomes: list[Any]
    try:
        outcomes = list(runs(cfgs, run_dirs))
    except (Exception, KeyboardInterrupt) as error:  # recorded in every folder
        # reported below through each job's run_job: a failure per job, an interrupt once
        outcomes = [error] * len(group)
    for ready_job, outcome in zip(group, outcomes, strict=True):
        with _as_job(ready_job.returned):
            metrics = job.run_job(ready_job.run_dir, partial(_returned, outcome), resumed=False)
        ready_job.returned.return_value = get_method(command.reported)(metrics, ready_job.run_dir)


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
