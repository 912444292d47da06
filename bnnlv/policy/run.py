"""One policy-search run, end to end: dynamics model → policy → evaluation → results folder.

The dynamics model is an ordinary ``train`` run in the run's ``model/`` folder (the config's
model, data, prior and trainer), or the finished run ``policy.model_run`` loaded safely as
``bnnlv evaluate`` loads one. Then the policy is trained through it (:mod:`bnnlv.policy.train`)
and scored, beside the random policy and the upper bound searched on the true system, on the
true system (mean ± s.e.) and under the model (E[C], σ_e, σ_a). The folder gets:

    metrics.json            status; true_reward(_se), model_cost, model_sigma_e, model_sigma_a
                            for the policy, and the same keys prefixed random_ / upper_bound_
    policy.csv              per epoch: the criterion, E[C], σ_e, σ_a under the model (training
                            batches) and the true reward on the monitor protocol
    checkpoints/policy.ckpt the policy (and what resume needs); upper_bound.ckpt the searched one
    policy.png              the action field over the river; the cost under the model against
                            the true reward, epoch by epoch
    model/                  the dynamics model's run (unless policy.model_run)

Like ``train``, the record is kept by :func:`bnnlv.runs.train.recorded`: ``status`` running →
ok, failed or interrupted, and ``bnnlv policy resume=DIR`` continues an interrupted run.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pandas as pd
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from bnnlv.data.module import RegressionDataModule
from bnnlv.policy.config import check_policy_config
from bnnlv.policy.dynamics import ModelDynamics
from bnnlv.policy.evaluate import (
    Protocol,
    average_reward,
    model_risk,
    random_actor,
    random_torch_actor,
)
from bnnlv.policy.network import Policy
from bnnlv.policy.plots import plot_policy
from bnnlv.policy.search import cross_entropy_search
from bnnlv.policy.train import COLUMNS, PolicyCheckpoints, Settings, train_policy
from bnnlv.runs.results import read_metrics, write_csv, write_torch
from bnnlv.runs.resume import resume_config
from bnnlv.runs.saved import checkpoint_path, load_run
from bnnlv.runs.train import recorded, train

MODEL_DIR = "model"
UPPER_BOUND_CHECKPOINT = "upper_bound.ckpt"
SETTINGS = ("horizon", "n_draws", "n_rollouts", "batch_size", "epochs", "steps_per_epoch", "lr",
            "max_grad_norm", "beta", "gamma", "clip_states")  # fmt: skip


def run_policy(cfg: DictConfig, run_dir: Path) -> dict[str, Any]:
    """Policy search into ``run_dir``; the metrics (also in metrics.json)."""
    checkpoints = PolicyCheckpoints(run_dir / "checkpoints", cfg.policy.checkpoint_every)
    return recorded(cfg, run_dir, checkpoints, lambda: _run(cfg, run_dir, checkpoints))


def fit_model(cfg: DictConfig, model_dir: Path) -> None:
    """Train the dynamics model as ``bnnlv train`` would, into ``model_dir``; a run stopped
    part-way there is resumed, a finished one kept."""
    if read_metrics(model_dir).get("status") == "ok":
        return
    if (model_dir / "checkpoints" / "last.ckpt").is_file():
        train(resume_config(str(model_dir), []), model_dir)
        return
    train_cfg = OmegaConf.masked_copy(cfg, [str(key) for key in cfg if key != "policy"])
    train_cfg.resume = None
    train(train_cfg, model_dir)


def load_dynamics(model_dir: Path, key: str) -> tuple[ModelDynamics, torch.Tensor]:
    """The finished run's model as :class:`ModelDynamics` and its training states [N, 2] (raw);
    ValueError naming ``key`` if the folder is not a finished Wet-Chicken run."""
    try:
        checkpoint_path(model_dir)
    except ValueError as error:
        raise ValueError(f"{key}: {error}") from None
    status = read_metrics(model_dir).get("status")
    if status != "ok":
        raise ValueError(f"{key}={model_dir}: the run's status is {status!r}, not 'ok'; finish "
                         f"it first (bnnlv train resume={model_dir})")  # fmt: skip
    run = load_run(model_dir)
    dynamics = ModelDynamics(run.model, run.data.scaler, run.data.feature_names,
                             run.data.target_names)  # fmt: skip
    data: RegressionDataModule = instantiate(run.cfg.data, seed=run.cfg.seed, _convert_="all")
    data.prepare()
    starts = torch.as_tensor(data.splits.x_train[:, :2], dtype=torch.float32)  # [N, (x, y)]
    return dynamics, starts


def _new_policy(dynamics: ModelDynamics, cfg: DictConfig) -> Policy:
    """A policy initialised from the run's seed, on the model's input statistics."""
    torch.manual_seed(cfg.seed)
    scaler_mean, scaler_std = dynamics.x_mean[:2].tolist(), dynamics.x_std[:2].tolist()
    return Policy(scaler_mean, scaler_std, list(cfg.policy.hidden))


def _run(cfg: DictConfig, run_dir: Path, checkpoints: PolicyCheckpoints) -> dict[str, Any]:
    check_policy_config(cfg)
    p, ev = cfg.policy, cfg.policy.evaluation
    if cfg.get("threads"):
        torch.set_num_threads(int(cfg.threads))
    clock = time.perf_counter()
    key = "policy.model_run" if p.model_run else "model"
    model_dir = Path(p.model_run) if p.model_run else run_dir / MODEL_DIR
    if not p.model_run:
        fit_model(cfg, model_dir)
    dynamics, starts = load_dynamics(model_dir, key)
    metrics: dict[str, Any] = {"status": "ok", "model_run": str(model_dir)}
    metrics["model_test_nll_y_next"] = read_metrics(model_dir).get("test_nll_y_next")
    metrics["model_seconds"] = time.perf_counter() - clock

    policy = _new_policy(dynamics, cfg)
    protocol = Protocol.draw(ev.episodes, ev.horizon, ev.seed)
    monitor = Protocol.draw(ev.monitor_episodes, ev.horizon, ev.seed + 1)
    settings = Settings(**{name: p[name] for name in SETTINGS})
    clock = time.perf_counter()
    rows = train_policy(policy, dynamics, starts, settings, checkpoints,
                        lambda pi: average_reward(pi.act, monitor)[0])  # fmt: skip
    metrics["policy_seconds"] = time.perf_counter() - clock
    metrics["epochs"], metrics["steps"] = len(rows), len(rows) * p.steps_per_epoch
    write_csv(run_dir / "policy.csv", pd.DataFrame(rows, columns=list(COLUMNS)))

    scored: dict[str, tuple[Any, Any]] = {
        "": (policy.act, policy),
        "random_": (random_actor(ev.seed), random_torch_actor),
    }
    if p.upper_bound.enabled:
        upper = _new_policy(dynamics, cfg)
        clock = time.perf_counter()
        ub = p.upper_bound
        cross_entropy_search(upper, ub.iterations, ub.population, ub.elite_frac, ub.init_std,
                             ub.min_std, ub.episodes, ev.horizon, cfg.seed)  # fmt: skip
        metrics["upper_bound_seconds"] = time.perf_counter() - clock
        write_torch(run_dir / "checkpoints" / UPPER_BOUND_CHECKPOINT, upper.saved_state())
        scored["upper_bound_"] = (upper.act, upper)
    model_starts = torch.as_tensor(protocol.starts[: ev.model_starts], dtype=torch.float32)
    for prefix, (act, torch_actor) in scored.items():
        reward, se = average_reward(act, protocol)
        metrics[f"{prefix}true_reward"], metrics[f"{prefix}true_reward_se"] = reward, se
        torch.manual_seed(ev.seed)
        risk = model_risk(torch_actor, dynamics, model_starts, p.horizon, ev.model_draws,
                          ev.model_rollouts, p.clip_states)  # fmt: skip
        metrics |= {f"{prefix}{name}": value for name, value in risk.items()}
    if p.upper_bound.enabled:
        metrics["gap_to_upper_bound"] = metrics["upper_bound_true_reward"] - metrics["true_reward"]
    if cfg.plots:
        plot_policy(policy, rows, metrics, p.horizon, run_dir / "policy.png")
    return metrics
