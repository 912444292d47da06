"""``bnnlv active [overrides]``: the Hydra app of pool-based active learning.

A run command like ``train``: the same config groups (model, data, prior, trainer) plus
``active``, the same run folders, failures, interrupts, ``resume=DIR`` and sweep summary
(:func:`bnnlv.runs.job.run_job`, :func:`bnnlv.runs.train.recorded_group`), with the loop of
:mod:`bnnlv.active.loop` as the work. ``launcher=replicas`` runs the jobs of a sweep that differ
only in ``seed`` (``data.split``, ``data.noise_seed``) through their rounds together
(:func:`run_group`). As in ``train``, the config is checked
(:func:`bnnlv.active.config.active_settings`, no torch) before torch and Lightning are imported.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from bnnlv.active.config import active_settings
from bnnlv.runs.folders import config_dir
from bnnlv.runs.job import freeze_imports, job_config, run_job
from bnnlv.runs.resume import GROUPS


def prepared(cfg: DictConfig) -> DictConfig:
    """The config an active-learning job runs (bnnlv.runs.job.job_config), checked."""
    job_cfg = job_config(cfg, (*GROUPS, "active"))
    active_settings(job_cfg)
    return job_cfg


def run_group(cfgs: Sequence[DictConfig], run_dirs: Sequence[Path]) -> list[dict[str, Any]]:
    """Active-learning runs that differ only in their seed (or data split, or data draw) through
    their rounds together (bnnlv.active.loop.run_active), run g into ``run_dirs[g]`` with its
    record in metrics.json; one run alone as ``bnnlv active`` runs it."""
    from bnnlv.active.loop import run_active  # torch and Lightning: only once the config is good
    from bnnlv.runs.train import recorded_group

    freeze_imports()
    return recorded_group(
        cfgs, run_dirs, lambda checkpoints: run_active(cfgs, run_dirs, checkpoints)
    )


def reported(metrics: dict[str, Any] | None, run_dir: Path) -> None:
    """Print a finished run's line (nothing for a failed job)."""
    if metrics is None:
        return
    print(
        f"bnnlv: active {metrics['acquisition']}: {metrics['n_labelled']} labelled after "
        f"{metrics['rounds']} rounds, test NLL {metrics['test_nll']:.4f}, area under the test-NLL "
        f"curve {metrics['test_nll_area']:.4f} → {run_dir}"
    )


@hydra.main(version_base="1.3", config_path=config_dir(), config_name="active")
def active_app(cfg: DictConfig) -> None:
    """Hydra task. It returns nothing for a sweeper to minimise: its figures are test figures,
    and settings must not be tuned on the test split."""
    run_dir = Path(HydraConfig.get().runtime.output_dir)

    def run() -> dict[str, Any]:
        (metrics,) = run_group([prepared(cfg)], [run_dir])
        return metrics

    reported(run_job(run_dir, run, bool(cfg.get("resume"))), run_dir)
