"""Saved runs: score, predict and resume from a run folder.

A run folder holds ``config.yaml`` (the resolved config) and ``checkpoints/last.ckpt``, which loads
with ``torch.load(weights_only=True)``: plain hyperparameters, tensors, and the training
standardiser with the column names (:mod:`bnnlv.runs.state`). From these alone:

- ``bnnlv evaluate run_dir=DIR [data=… data.…=…]`` recomputes metrics, predictions.csv and plots
  on the run's data (or another data config), standardised with the TRAINING statistics;
- ``bnnlv predict run_dir=DIR data=csv data.path=FILE`` writes the predictive mean and total /
  epistemic / aleatoric std for every row of a CSV of inputs (no targets needed), original units;
- ``bnnlv train resume=DIR [key=value …]`` continues the run in place (:mod:`bnnlv.runs.resume`).

Scoring draws the predictive's Monte Carlo samples from a generator seeded with the run's seed
(:func:`score`), so a model gives the same numbers when scored after training and when re-scored
from its checkpoint.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, NamedTuple

import hydra
import numpy as np
import pandas as pd
import torch
from hydra.core.hydra_config import HydraConfig
from hydra.utils import get_class, instantiate
from omegaconf import DictConfig, OmegaConf

from bnnlv.data.columns import DROP_FIX, drop_missing
from bnnlv.data.csv import CsvData, read_table
from bnnlv.data.module import RegressionDataModule
from bnnlv.model.lit_module import BNNLV
from bnnlv.model.quantiles import central_probs
from bnnlv.report.evaluate import evaluate, interval_bounds, original_units, uncertainty_columns
from bnnlv.runs.checkpoints import load_checkpoint
from bnnlv.runs.config import check_interval, read_saved_config
from bnnlv.runs.errors import reported
from bnnlv.runs.folders import CONFIG_FILE, checkpoint_path, config_dir
from bnnlv.runs.results import METRICS_FILE, write_csv, write_json
from bnnlv.runs.state import SavedData, read_data_state


class SavedRun(NamedTuple):
    cfg: DictConfig  # the run's resolved config.yaml
    model: BNNLV  # on the CPU, in eval mode
    data: SavedData  # training standardiser and column names


def load_run(run_dir: Path) -> SavedRun:
    """The run's config, model and data state; the checkpoint is unpickled with weights_only."""
    checkpoint = load_checkpoint(checkpoint_path(run_dir))
    model = BNNLV(**checkpoint["hyper_parameters"])
    model.load_state_dict(checkpoint["state_dict"])
    model.eval()
    cfg = read_saved_config(Path(run_dir) / CONFIG_FILE)
    return SavedRun(cfg, model, read_data_state(checkpoint))


def validation_nll(
    model: BNNLV, data: RegressionDataModule, generator: torch.Generator | None = None
) -> float | None:
    """Mean validation NLL in original units, −(1/n) Σ_n [log p_std(y_n|x_n) − Σ_d log s_y,d]
    (s_y the target std of the standardiser), the predictive's draws from ``generator``; None
    when the validation split is empty."""
    x, y = (t.to(model.device) for t in data.tensors("val"))
    if x.shape[0] == 0:
        return None
    log_density = model.predict(x, y, generator=generator).log_density
    assert log_density is not None
    return float(-(log_density.mean().item() - np.log(data.scaler.y_std).sum()))


def score(
    model: BNNLV, data: RegressionDataModule, out_dir: Path, seed: int, make_plots: bool,
    interval: float | None = None,
) -> dict[str, Any]:  # fmt: skip
    """``val_nll`` and the test metrics (:func:`bnnlv.report.evaluate.evaluate`, which also writes
    predictions.csv, with the central ``interval`` of the mixture, and plots), each with its
    draws from a generator seeded with ``seed``."""
    model.eval()
    metrics: dict[str, Any] = {"val_nll": validation_nll(model, data, scoring_stream(model, seed))}
    scored = evaluate(model, data, out_dir, make_plots, interval, scoring_stream(model, seed))
    write_csv(out_dir / "predictions.csv", scored.predictions)
    return metrics | scored.metrics


def scoring_stream(model: BNNLV, seed: int) -> torch.Generator:
    """The random stream of a scoring: a generator on the model's device seeded with the run's
    seed (the same draws as torch's global stream after ``torch.manual_seed(seed)``)."""
    return torch.Generator(device=model.device).manual_seed(seed)


def _out_dir() -> Path:
    return Path(HydraConfig.get().runtime.output_dir)


def scoring_data(cfg: DictConfig, run: SavedRun) -> RegressionDataModule:
    """The data ``bnnlv evaluate`` scores: without ``cfg.data`` the run's own data config (its
    test split); a built-in data set's test split; or a CSV of new labelled rows, EVERY row in
    file order, read with the run's targets, input columns and categories unless
    ``data.targets`` / ``data.features`` name other columns (in the same order)."""
    if cfg.get("data") is None:
        return instantiate(run.cfg.data, seed=run.cfg.seed, _convert_="all")
    extra: dict[str, Any] = {}
    if issubclass(get_class(cfg.data._target_), CsvData):
        features = cfg.data.get("features")
        inputs = run.data.inputs.renamed(list(features)) if features else run.data.inputs
        extra = {"features": inputs.names, "categorical": list(inputs.categories),
                 "categories": inputs.categories, "test_frac": 1.0, "val_frac": 0.0,
                 "split_column": None}  # fmt: skip
        if OmegaConf.is_missing(cfg.data, "targets"):
            extra["targets"] = run.data.target_names
    return instantiate(cfg.data, seed=run.cfg.seed, _convert_="all", **extra)


def evaluate_run(cfg: DictConfig) -> dict[str, Any]:
    """Score the saved run ``cfg.run_dir`` on its own data or on ``cfg.data``
    (:func:`scoring_data`), standardised with the run's training statistics."""
    run = load_run(Path(cfg.run_dir))
    interval = check_interval(cfg.get("interval"))
    data = scoring_data(cfg, run)
    data.prepare(scaler=run.data.scaler)
    shape = (data.in_features, data.out_features)
    expected = (len(run.data.feature_names), len(run.data.target_names))
    if shape != expected:
        raise ValueError(f"data has {shape[0]} inputs and {shape[1]} targets; the model in "
                         f"{cfg.run_dir} expects {expected[0]} and {expected[1]}")  # fmt: skip
    out_dir = _out_dir()
    metrics = {"status": "ok"} | score(
        run.model, data, out_dir, run.cfg.seed, bool(cfg.plots), interval
    )
    write_json(out_dir / METRICS_FILE, metrics | {"run_dir": str(cfg.run_dir)})
    return metrics


def prediction_frame(
    run: SavedRun, x: np.ndarray, seed: int, interval: float | None = None
) -> dict[str, np.ndarray]:  # fmt: skip
    """Columns mean, std, epistemic_std, aleatoric_std and the bounds of the mixture's central
    ``interval`` (suffixed ``_<target>`` when there are several targets) for raw inputs
    x [B, D_in], in original units: std² = epistemic + aleatoric."""
    scaler = run.data.scaler
    x_std = torch.as_tensor(scaler.x(x), dtype=torch.float32)
    probs = central_probs(interval) if interval is not None else ()
    pred = run.model.predict(x_std, generator=scoring_stream(run.model, seed), quantile_probs=probs)
    return uncertainty_columns(*original_units(pred.moments, scaler), run.data.target_names,
                               interval, interval_bounds(pred, scaler))  # fmt: skip


def predict_run(cfg: DictConfig) -> Path:
    """Predict every row of the CSV ``cfg.data.path`` (but those ``data.missing=drop`` leaves
    out), its inputs read and encoded as the run's; return the predictions.csv written."""
    run = load_run(Path(cfg.run_dir))
    if cfg.get("data") is None or cfg.data.get("path") is None:
        raise ValueError("predict reads new inputs from a CSV: add data=csv data.path=FILE")
    interval = check_interval(cfg.get("interval"))
    path = Path(cfg.data.path)
    frame = read_table(path)
    features = cfg.data.get("features")
    inputs = run.data.inputs.renamed(list(features)) if features else run.data.inputs
    inputs.check_header(list(frame.columns), path)
    frame = drop_missing(frame, inputs.names, cfg.data.get("missing", "error"), path)
    x = inputs.encode(frame, path, lambda column: {"missing": DROP_FIX})  # [B, D_in]
    columns = {"row": frame.index.to_numpy() + 1}  # data rows count from 1, as in messages
    columns |= prediction_frame(run, x, int(run.cfg.seed), interval)
    clash = [name for name in columns if name in frame.columns]
    if clash:
        raise ValueError(f"{path}: input columns {clash} would be overwritten by predictions")
    out = _out_dir() / "predictions.csv"
    table = pd.DataFrame(columns, index=frame.index)
    write_csv(out, pd.concat([table[["row"]], frame, table.drop(columns="row")], axis=1))
    return out


@hydra.main(version_base="1.3", config_path=config_dir(), config_name="evaluate")
@reported
def evaluate_app(cfg: DictConfig) -> None:
    """Hydra app of ``bnnlv evaluate``."""
    metrics = evaluate_run(cfg)
    val = metrics["val_nll"]
    print(f"bnnlv: test NLL {metrics['test_nll']:.4f}, R² {metrics['test_r2']:.4f}, val NLL "
          f"{'—' if val is None else f'{val:.4f}'} → {_out_dir()}")  # fmt: skip


@hydra.main(version_base="1.3", config_path=config_dir(), config_name="predict")
@reported
def predict_app(cfg: DictConfig) -> None:
    """Hydra app of ``bnnlv predict``."""
    print(f"bnnlv: predictions → {predict_run(cfg)}")
