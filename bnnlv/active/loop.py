"""The active-learning loop of ``bnnlv active``: train, evaluate, score, acquire, round by round.

Round r (r = 0 … ``active.rounds``) trains the configured model on the labelled set (from a new
initialisation, or warm from round r − 1's parameters: ``active.retrain``), scores the test split,
and, except in the last round, scores ``active.candidates`` unlabelled pool points and moves
``active.query_size`` of them into the labelled set. Each round is one row of ``active.csv``. When
the last round is done the run writes the files of a trained model (``predictions.csv``, plots),
``learning_curve.png``, ``acquired.png`` and the metrics with the area under the test-NLL curve.

After each round the loop state is saved in ``checkpoints/last.ckpt`` (:mod:`bnnlv.active.state`);
an interrupt also saves the fit in progress there, and ``resume=DIR`` continues from it with the
same results: each round draws from its own random streams (:func:`bnnlv.active.pool.round_seed`).

Runs that differ only in their seed (or data split, or data draw) go through their rounds
together: one fit per round of one model holding every run's replicas (bnnlv.model.replicas,
as ``bnnlv train`` runs them with ``launcher=replicas``), then each run scores, acquires and saves
alone. Each run's folder gets what the run alone writes, to float rounding, and its checkpoint is
the one it would have saved alone, so ``resume=DIR`` continues that run alone. Float rounding can
change a pick (two candidates whose scores differ by less than it), and from then on the run
takes another, equally valid, course: grouped runs equal the runs alone only while no pick differs.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import pandas as pd
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig
from torch import Tensor

from bnnlv.active.acquire import acquire
from bnnlv.active.acquisition import needs_epistemic
from bnnlv.active.components import has_epistemic_measure
from bnnlv.active.config import ActiveSettings, active_settings
from bnnlv.active.outputs import finish
from bnnlv.active.pool import TRAIN_STREAM, LabelledPool, initial_set, pool_scaler, round_seed
from bnnlv.active.state import ActiveState, LoopState, SavedLoop
from bnnlv.data.module import RegressionDataModule, Splits, Standardiser
from bnnlv.data.replicas import ReplicaData
from bnnlv.model.lit_module import BNNLV
from bnnlv.model.replicas import split_state
from bnnlv.report.evaluate import evaluate
from bnnlv.runs.checkpoints import RunCheckpoints
from bnnlv.runs.grouping import check_group
from bnnlv.runs.interrupts import interrupts_deferred
from bnnlv.runs.results import write_csv
from bnnlv.runs.saved import checkpoint_path
from bnnlv.runs.state import RunState
from bnnlv.runs.train import (
    build_model,
    diverged_record,
    fit,
    make_trainer,
    members,
    prepare_process,
    progress_bar,
)

log = logging.getLogger("bnnlv")
CSV_FILE = "active.csv"
# active.csv's test figures of each round, from bnnlv.report.evaluate (original units unless the
# name says standardised)
ROUND_METRICS = ("test_nll", "test_nll_standardised", "test_rmse")


class Round(NamedTuple):
    data: LabelledPool
    model: BNNLV


@dataclass(eq=False)
class ActiveRun:
    """One run of the loop: its config, folder, pool and loop state, and what its last round
    left (its parameters, for a warm start or the final files)."""

    cfg: DictConfig
    run_dir: Path
    splits: Splits
    scaler: Standardiser
    state: LoopState
    previous: Mapping[str, Tensor] | None = None
    continue_fit: Path | None = None  # a resumed fit in progress (resume=DIR) to continue
    last: Round | None = None
    failed: dict[str, Any] | None = None  # metrics.json of a run whose replica diverged


def run_active(
    cfgs: Sequence[DictConfig], run_dirs: Sequence[Path], checkpoints: RunCheckpoints
) -> list[dict[str, Any]]:
    """The whole loop of each run, run g into ``run_dirs[g]`` (the body of
    :func:`bnnlv.runs.train.recorded_runs`); returns the metrics of each ``metrics.json``.

    Runs whose configs differ only in ``seed`` / ``data.split`` / ``data.noise_seed``
    (bnnlv.runs.grouping.check_group) go through the rounds together: their labelled sets have
    as many points in every round, so each round is one fit of one model with every run's
    replicas, then each run scores and acquires alone, with its own seed's streams. A run
    whose replica diverges is recorded as failed and the others go on without it.
    """
    check_group(cfgs)
    settings = active_settings(cfgs[0])
    prepare_process(cfgs[0])
    runs = [start_run(cfg, run_dir, settings) for cfg, run_dir in zip(cfgs, run_dirs, strict=True)]
    live = runs
    while live and live[0].state.next_round <= settings.rounds:
        run_round(settings, checkpoints, live)
        going_on = [g for g, run in enumerate(live) if run.failed is None]
        if len(going_on) < len(live):
            checkpoints.keep(going_on)
            live = [live[g] for g in going_on]
    return [run.failed or finish_run(run, settings) for run in runs]


def start_run(cfg: DictConfig, run_dir: Path, settings: ActiveSettings) -> ActiveRun:
    """A run's pool and loop state: fresh, or where ``resume=DIR`` left it."""
    splits = load_pool(cfg, settings)
    n_pool = len(splits.x_train)
    settings.check_pool(n_pool)
    saved = SavedLoop(checkpoint_path(Path(cfg.resume))) if cfg.get("resume") else None
    state = saved.state if saved else LoopState(initial_set(n_pool, settings.init_size, cfg.seed))
    scaler = pool_scaler(splits, state.labelled[: settings.init_size])
    run = ActiveRun(cfg, run_dir, splits, scaler, state)
    if saved:
        run.previous = saved.parameters
        run.continue_fit = saved.path if state.fit_in_progress else None
    return run


def finish_run(run: ActiveRun, settings: ActiveSettings) -> dict[str, Any]:
    last = run.last
    if last is None:  # every round was done before the run stopped: rebuild the final model
        assert run.previous is not None
        last = restore_round(run.cfg, run.splits, run.scaler, run.state, run.previous)
    return finish(run.cfg, settings, run.run_dir, run.splits, run.state, last.model, last.data)


def load_pool(cfg: DictConfig, settings: ActiveSettings) -> Splits:
    """The configured data set, its training split being the pool (a fresh one for the toys
    with ``active.pool_size``)."""
    pool = {} if settings.pool_size is None else {"pool_size": settings.pool_size}
    data: RegressionDataModule = instantiate(cfg.data, seed=cfg.seed, _convert_="all", **pool)
    return data.splits


def run_round(
    settings: ActiveSettings, checkpoints: RunCheckpoints, runs: Sequence[ActiveRun]
) -> None:
    """Round ``state.next_round`` of ``runs`` (all at the same round): train them together
    (continuing a resumed run's fit in progress), then each run alone: evaluate, acquire,
    record its row in its state, save."""
    r = runs[0].state.next_round
    cfg = runs[0].cfg
    pools = []
    for run in runs:
        stream = round_seed(run.cfg.seed, r, TRAIN_STREAM)
        pools.append(
            LabelledPool(run.splits, run.state.labelled, run.scaler, cfg.data.batch_size, stream)
        )
        run.state.fitted_round = r
    torch.manual_seed(round_seed(cfg.seed, r, TRAIN_STREAM))  # as in every round's fit alone
    seeds = [seed for run, pool in zip(runs, pools, strict=True) for seed in members(run.cfg, pool)]
    model = build_model(cfg, pools[0], seeds)
    if needs_epistemic(settings.acquisition) and not has_epistemic_measure(model):
        raise ValueError(
            f"active.acquisition={settings.acquisition} needs a model with a distribution over "
            f"its weights, and this model's weights are deterministic (model.stochastic_layers="
            f"{cfg.model.get('stochastic_layers')}); use model=bnn_lv or bnn, or "
            "active.acquisition=random"
        )
    continue_fit = runs[0].continue_fit if len(runs) == 1 else None
    previous = [run.previous for run in runs if run.previous is not None]
    if settings.retrain == "warm" and continue_fit is None and len(previous) == len(runs):
        warm_start(model, previous)
    data: LabelledPool | ReplicaData = pools[0] if len(pools) == 1 else ReplicaData(pools)
    trainer = make_trainer(
        cfg, runs[0].run_dir, data,
        [checkpoints, RunState(), ActiveState([run.state for run in runs])],
        progress_bar(cfg.progress_bar), logger=False, limit_val_batches=0,
    )  # fmt: skip
    fit_seconds = fit(trainer, model, data, checkpoints, continue_fit)
    checkpoints.save(trainer, model)
    diverged = model.diverged.by_run()
    for g, (run, pool, run_model) in enumerate(zip(runs, pools, model.split_runs(), strict=True)):
        run.continue_fit = None
        if g in diverged:
            run.failed = diverged_record(diverged[g], checkpoints.run(g))
            continue
        score_round(run, settings, Round(pool, run_model.to(model.device)), fit_seconds)
    with interrupts_deferred():  # each checkpoint and active.csv describe the same rounds
        checkpoints.save(trainer, model)
        for run in runs:
            if run.failed is None:
                write_csv(run.run_dir / CSV_FILE, rows_frame(run.state.rows))


def score_round(
    run: ActiveRun, settings: ActiveSettings, trained: Round, fit_seconds: float
) -> None:
    """Evaluate the run's model of this round and acquire its next batch; its row of
    active.csv joins its state."""
    r = run.state.next_round
    torch.manual_seed(run.cfg.seed)  # scored as bnnlv.runs.saved.score scores: the same figures
    tested = evaluate(trained.model, trained.data, run.run_dir, make_plots=False).metrics
    row: dict[str, Any] = {"round": r, "n_labelled": trained.data.n_train}
    row |= {key: tested[key] for key in ROUND_METRICS} | {"fit_seconds": fit_seconds}
    if r < settings.rounds:
        picked = acquire(
            trained.model, run.splits, run.scaler, run.state.labelled, settings, run.cfg.seed, r
        )
        row |= picked.row()
        run.state.labelled = [*run.state.labelled, *picked.pool_indices]
    run.state.rows.append(row)
    run.last, run.previous = trained, trained.model.state_dict()
    log.info(
        "seed %d, round %d/%d: %d labelled, test NLL %.4f, fit %.1f s", run.cfg.seed, r,
        settings.rounds, trained.data.n_train, row["test_nll"], fit_seconds,
    )  # fmt: skip


def rows_frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    """active.csv's table; counts stay integers where the last round has none."""
    frame = pd.DataFrame(rows)
    counts = [c for c in ("n_candidates", "n_negative_epistemic") if c in frame]
    return frame.astype({c: "Int64" for c in counts})


def warm_start(model: BNNLV, previous: Sequence[Mapping[str, Tensor]]) -> None:
    """Start each run of ``model`` (run g: its block of every tensor, bnnlv.model.replicas) from
    its previous round's parameters ``previous[g]`` (a model of that run alone). A tensor of the
    same shape is copied; a per-point table (the latent q(z_n)) that grew by the new points gets
    its old rows, the new rows keep their initialisation (the labelled set only grows at its
    end)."""
    own = split_state(model.state_dict(), len(previous))  # views of the model's tensors
    with torch.no_grad():
        for run_own, run_previous in zip(own, previous, strict=True):
            for name, value in run_previous.items():
                _copy_into(name, run_own[name], value)


def _copy_into(name: str, target: Tensor, value: Tensor) -> None:
    if target.shape == value.shape:
        target.copy_(value)
    elif target.shape[1:] == value.shape[1:] and target.shape[0] > value.shape[0]:
        target[: value.shape[0]].copy_(value)
    else:
        raise ValueError(
            f"cannot warm-start {name}: shape {tuple(value.shape)} of the previous round, "
            f"{tuple(target.shape)} now"
        )


def restore_round(
    cfg: DictConfig,
    splits: Splits,
    scaler: Standardiser,
    state: LoopState,
    parameters: Mapping[str, Tensor],
) -> Round:
    """The last round's data and trained model, from the saved loop of a completed run."""
    data = LabelledPool(splits, state.labelled, scaler, cfg.data.batch_size, cfg.seed)
    model = build_model(cfg, data)
    model.load_state_dict(parameters)
    return Round(data, model)
