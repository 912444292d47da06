"""``bnnlv active [overrides]``: the Hydra app of pool-based active learning.

A run command like ``train``: the same config groups (model, data, prior, trainer) plus
``active``, the same run folders, failures, interrupts, ``resume=DIR`` and sweep summary
(:func:`bnnlv.runs.job.run_job`, :func:`bnnlv.runs.train.recorded`), with the loop of
:mod:`bnnlv.active.loop` as the work. As in ``train``, the config is checked
(:func:`bnnlv.active.config.active_settings`, no torch) before torch and Lightning are imported.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from bnnlv.active.config import active_settings
from bnnlv.runs.folders import config_dir
from bnnlv.runs.job import freeze_imports, job_config, run_job
from bnnlv.runs.resume import GROUPS


def run(cfg: DictConfig, run_dir: Path) -> dict[str, Any]:
    """One active-learning run into ``run_dir``, with the run's record in metrics.json."""
    cfg = job_config(cfg, (*GROUPS, "active"))
    active_settings(cfg)
    from bnnlv.active.loop import run_active  # torch and Lightning: only once the config is good
    from bnnlv.runs.checkpoints import RunCheckpoints
    from bnnlv.runs.train import recorded

    freeze_imports()
    checkpoints = RunCheckpoints(run_dir / "checkpoints", cfg.get("checkpoint_every"))
    return recorded(cfg, run_dir, checkpoints, lambda: run_active(cfg, run_dir, checkpoints))


@hydra.main(version_base="1.3", config_path=config_dir(), config_name="active")
def active_app(cfg: DictConfig) -> None:
    """Hydra task. It returns nothing for a sweeper to minimise: its figures are test figures,
    and settings must not be tuned on the test split."""
    run_dir = Path(HydraConfig.get().runtime.output_dir)
    metrics = run_job(run_dir, lambda: run(cfg, run_dir), bool(cfg.get("resume")))
    if metrics is None:
        return
    print(
        f"bnnlv: active {metrics['acquisition']}: {metrics['n_labelled']} labelled after "
        f"{metrics['rounds']} rounds, test NLL {metrics['test_nll']:.4f}, area under the test-NLL "
        f"curve {metrics['test_nll_area']:.4f} → {run_dir}"
    )
