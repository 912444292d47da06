"""``bnnlv policy [overrides]``: the Hydra app of policy search (``configs/policy.yaml``).

``-m`` sweeps end in one summary (:class:`bnnlv.runs.sweep_callback.SummaryCallback`, configured in
``configs/policy.yaml``) with the risk–return plot; ``resume=DIR`` continues a stopped run.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from bnnlv.runs.folders import config_dir
from bnnlv.runs.job import check_no_relaunch, freeze_imports, run_job
from bnnlv.runs.resume import GROUPS, resume_config


@hydra.main(version_base="1.3", config_path=config_dir(), config_name="policy")
def policy_app(cfg: DictConfig) -> float | None:
    """One policy-search run; returns its true-system reward (None for a failed sweep job)."""
    from bnnlv.policy.run import run_policy

    freeze_imports()
    run_dir = Path(HydraConfig.get().runtime.output_dir)

    def run() -> dict[str, Any]:
        job_cfg = cfg
        if job_cfg.get("resume"):
            overrides = HydraConfig.get().overrides.task
            job_cfg = resume_config(job_cfg.resume, overrides, (*GROUPS, "policy"), False)
        if HydraConfig.get().mode == RunMode.MULTIRUN:
            check_no_relaunch(job_cfg)
        return run_policy(job_cfg, run_dir)

    metrics = run_job(run_dir, run, resumed=bool(cfg.get("resume")))
    if metrics is None:
        return None
    upper = metrics.get("upper_bound_true_reward")
    print(
        f"bnnlv: true reward {metrics['true_reward']:.3f} ± {metrics['true_reward_se']:.3f} per "
        f"step (random {metrics['random_true_reward']:.3f}"
        + ("" if upper is None else f", upper bound {upper:.3f}")
        + f") → {run_dir}"
    )
    return float(metrics["true_reward"])
