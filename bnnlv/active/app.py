"""``bnnlv active [overrides]``: the Hydra app of pool-based active learning.

A run command like ``train``: the same config groups (model, data, prior, trainer) plus
``active``, the same run folders, failures, interrupts, ``resume=DIR`` and sweep summary
(:func:`bnnlv.runs.cli.run_task`, :func:`bnnlv.runs.train.recorded_run`), with the loop of
:mod:`bnnlv.active.loop` as the work.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from bnnlv.runs.cli import run_task
from bnnlv.runs.folders import config_dir


def run(cfg: DictConfig, run_dir: Path) -> dict[str, Any]:
    """One active-learning run into ``run_dir``, with the run's record in metrics.json."""
    from bnnlv.active.loop import run_active
    from bnnlv.runs.train import recorded_run

    return recorded_run(cfg, run_dir, run_active)


@hydra.main(version_base="1.3", config_path=config_dir(), config_name="active")
def active_app(cfg: DictConfig) -> None:
    """Hydra task. It returns nothing for a sweeper to minimise: its figures are test figures,
    and settings must not be tuned on the test split."""
    metrics = run_task("active", cfg, run)
    if metrics is None:
        return
    print(
        f"bnnlv: active {metrics['acquisition']}: {metrics['n_labelled']} labelled after "
        f"{metrics['rounds']} rounds, test NLL {metrics['test_nll']:.4f}, area under the test-NLL "
        f"curve {metrics['test_nll_area']:.4f} → {Path(HydraConfig.get().runtime.output_dir)}"
    )
