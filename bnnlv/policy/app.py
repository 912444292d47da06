"""``bnnlv policy [overrides]``: the Hydra app of policy search (``configs/policy.yaml``).

``-m`` sweeps end in one summary (:class:`bnnlv.runs.sweep_callback.SummaryCallback`, configured in
``configs/policy.yaml``) with the risk–return plot; ``resume=DIR`` continues a stopped run.
"""

from __future__ import annotations

from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from bnnlv.runs.folders import config_dir
from bnnlv.runs.job import freeze_imports, job_config, run_job
from bnnlv.runs.resume import GROUPS


@hydra.main(version_base="1.3", config_path=config_dir(), config_name="policy")
def policy_app(cfg: DictConfig) -> float | None:
    """One policy-search run; returns its true-system reward (None for a failed sweep job)."""
    from bnnlv.policy.run import run_policy

    freeze_imports()
    run_dir = Path(HydraConfig.get().runtime.output_dir)
    job_cfg = lambda: job_config(cfg, (*GROUPS, "policy"), need_checkpoint=False)  # noqa: E731
    metrics = run_job(run_dir, lambda: run_policy(job_cfg(), run_dir), bool(cfg.get("resume")))
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
