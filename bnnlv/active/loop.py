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
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
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
from bnnlv.model.lit_module import BNNLV
from bnnlv.report.evaluate import evaluate
from bnnlv.runs.checkpoints import RunCheckpoints, save_checkpoint
from bnnlv.runs.interrupts import interrupts_deferred
from bnnlv.runs.results import write_csv
from bnnlv.runs.saved import checkpoint_path
from bnnlv.runs.state import RunState
from bnnlv.runs.train import build_model, fit, make_trainer, prepare_process, progress_bar

log = logging.getLogger("bnnlv")
CSV_FILE = "active.csv"
# active.csv's test figures of each round, from bnnlv.report.evaluate (original units unless the
# name says standardised)
ROUND_METRICS = ("test_nll", "test_nll_standardised", "test_rmse")


class Round(NamedTuple):
    data: LabelledPool
    model: BNNLV


def run_active(cfg: DictConfig, run_dir: Path, checkpoints: RunCheckpoints) -> dict[str, Any]:
    """The whole loop into ``run_dir`` (the body of :func:`bnnlv.runs.train.recorded`);
    returns the metrics of ``metrics.json``."""
    settings = active_settings(cfg)
    prepare_process(cfg)
    splits = load_pool(cfg, settings)
    n_pool = len(splits.x_train)
    settings.check_pool(n_pool)
    saved = SavedLoop(checkpoint_path(Path(cfg.resume))) if cfg.get("resume") else None
    state = saved.state if saved else LoopState(initial_set(n_pool, settings.init_size, cfg.seed))
    previous = saved.parameters if saved else None
    continue_fit = saved.path if saved and state.fit_in_progress else None
    scaler = pool_scaler(splits, state.labelled[: settings.init_size])
    last: Round | None = None
    while state.next_round <= settings.rounds:
        last = run_round(
            cfg, settings, run_dir, checkpoints, splits, scaler, state, previous, continue_fit
        )
        previous, continue_fit = last.model.state_dict(), None
    if last is None:  # every round was done before the run stopped: rebuild the final model
        assert previous is not None
        last = restore_round(cfg, splits, scaler, state, previous)
    return finish(cfg, settings, run_dir, splits, state, last.model, last.data)


def load_pool(cfg: DictConfig, settings: ActiveSettings) -> Splits:
    """The configured data set, its training split being the pool (a fresh one for the toys
    with ``active.pool_size``)."""
    pool = {} if settings.pool_size is None else {"pool_size": settings.pool_size}
    data: RegressionDataModule = instantiate(cfg.data, seed=cfg.seed, _convert_="all", **pool)
    return data.splits


def run_round(
    cfg: DictConfig,
    settings: ActiveSettings,
    run_dir: Path,
    checkpoints: RunCheckpoints,
    splits: Splits,
    scaler: Standardiser,
    state: LoopState,
    previous: Mapping[str, Tensor] | None,
    continue_fit: Path | None,
) -> Round:
    """Round ``state.next_round``: train (continuing the fit saved at ``continue_fit`` if
    given), evaluate, acquire; record its row in ``state`` and save."""
    r = state.next_round
    stream = round_seed(cfg.seed, r, TRAIN_STREAM)
    torch.manual_seed(stream)  # the initialisation and the training's draws
    data = LabelledPool(splits, state.labelled, scaler, cfg.data.batch_size, stream)
    model = build_model(cfg, data)
    if needs_epistemic(settings.acquisition) and not has_epistemic_measure(model):
        raise ValueError(
            f"active.acquisition={settings.acquisition} needs a model with a distribution over "
            f"its weights, and this model's weights are deterministic (model.stochastic_layers="
            f"{cfg.model.get('stochastic_layers')}); use model=bnn_lv or bnn, or "
            "active.acquisition=random"
        )
    if previous is not None and settings.retrain == "warm" and continue_fit is None:
        warm_start(model, previous)
    state.fitted_round = r
    trainer = make_trainer(
        cfg, run_dir, data, [checkpoints, RunState(), ActiveState(state)],
        progress_bar(cfg.progress_bar),
        logger=False, limit_val_batches=0,
    )  # fmt: skip
    fit_seconds = fit(trainer, model, data, checkpoints, continue_fit)
    save_checkpoint(trainer, checkpoints.path)
    torch.manual_seed(cfg.seed)  # scored as bnnlv.runs.saved.score scores: the same figures
    tested = evaluate(model, data, run_dir, make_plots=False).metrics
    row: dict[str, Any] = {"round": r, "n_labelled": data.n_train}
    row |= {key: tested[key] for key in ROUND_METRICS} | {"fit_seconds": fit_seconds}
    if r < settings.rounds:
        picked = acquire(model, splits, scaler, state.labelled, settings, cfg.seed, r)
        row |= picked.row()
        state.labelled = [*state.labelled, *picked.pool_indices]
    state.rows.append(row)
    with interrupts_deferred():  # the checkpoint and active.csv describe the same rounds
        save_checkpoint(trainer, checkpoints.path)
        write_csv(run_dir / CSV_FILE, rows_frame(state.rows))
    log.info(
        "round %d/%d: %d labelled, test NLL %.4f, fit %.1f s", r, settings.rounds, data.n_train,
        row["test_nll"], fit_seconds,
    )  # fmt: skip
    return Round(data, model)


def rows_frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    """active.csv's table; counts stay integers where the last round has none."""
    frame = pd.DataFrame(rows)
    counts = [c for c in ("n_candidates", "n_negative_epistemic") if c in frame]
    return frame.astype({c: "Int64" for c in counts})


def warm_start(model: BNNLV, previous: Mapping[str, Tensor]) -> None:
    """Start ``model`` from the previous round's parameters. A tensor of the same shape is
    copied; a per-point table (the latent q(z_n)) that grew by the new points gets its old rows,
    the new rows keep their initialisation (the labelled set only grows at its end)."""
    own = model.state_dict()
    with torch.no_grad():
        for name, value in previous.items():
            target = own[name]
            if target.shape == value.shape:
                target.copy_(value)
            elif target.shape[1:] == value.shape[1:] and target.shape[0] > value.shape[0]:
                target[: value.shape[0]].copy_(value)
            else:
                raise ValueError(
                    f"cannot warm-start {name}: shape {tuple(value.shape)} of the previous "
                    f"round, {tuple(target.shape)} now"
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
