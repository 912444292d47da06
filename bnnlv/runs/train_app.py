"""``bnnlv train``: the Hydra task that checks the config, trains, and reports in one line.

The composed config is checked (:mod:`bnnlv.runs.config`, no torch) before torch and Lightning
are imported, so that a bad value is reported within about a second; how a stop is reported and
whether the run's folder is kept: :mod:`bnnlv.runs.job`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from bnnlv.runs.cli import relaunchable
from bnnlv.runs.config import check_config
from bnnlv.runs.folders import config_dir
from bnnlv.runs.job import freeze_imports, job_config, run_job


@hydra.main(version_base="1.3", config_path=config_dir(), config_name="train")
def train_app(cfg: DictConfig) -> float | None:
    """Hydra task: one run into hydra.runtime.output_dir; returns the validation NLL (the
    objective of hparams_search), None for a failed job of a sweep."""
    run_dir = Path(HydraConfig.get().runtime.output_dir)

    def run() -> dict[str, Any]:
        job_cfg = prepared(cfg)
        from bnnlv.runs.train import train  # torch and Lightning: only once the config is good

        freeze_imports()
        relaunchable("train")
        return train(job_cfg, run_dir)

    return reported(run_job(run_dir, run, resumed=bool(cfg.get("resume"))), run_dir)


def prepared(cfg: DictConfig) -> DictConfig:
    """The config a job trains (bnnlv.runs.job.job_config), checked."""
    job_cfg = job_config(cfg)
    check_config(job_cfg)
    return job_cfg


def reported(metrics: dict[str, Any] | None, run_dir: Path) -> float | None:
    """Print a finished run's line; its validation NLL (None for a failed job, or none)."""
    from lightning.pytorch.utilities import rank_zero_only

    if metrics is None or getattr(rank_zero_only, "rank", 0) != 0:
        return None
    print(
        f"bnnlv: test NLL {metrics['test_nll']:.4f} (standardised "
        f"{metrics['test_nll_standardised']:.4f}), R² {metrics['test_r2']:.4f}, "
        f"fit {metrics['fit_seconds']:.1f} s → {run_dir}"
    )
    val_nll = metrics.get("val_nll")
    return float(val_nll) if val_nll is not None else None
