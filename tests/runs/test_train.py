"""The single-run orchestration: building from the config, and a failed run's record."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from omegaconf import DictConfig

from bnnlv.data.toy import ToyHeteroscedastic
from bnnlv.model.lit_module import BNNLV
from bnnlv.runs.checkpoints import load_checkpoint
from bnnlv.runs.interrupts import update_deferred
from bnnlv.runs.train import build, len_epoch, train


def test_build_sizes_the_model_from_the_data(compose_train: Callable[..., DictConfig]) -> None:
    cfg = compose_train(
        "data.n_points=100", "model.hidden=[8,4]", "alpha=0.3", "prior.latent_var=2.0"
    )
    data, model = build(cfg)
    assert isinstance(data, ToyHeteroscedastic) and isinstance(model, BNNLV)
    assert data.n_train == 70
    assert model.n_train == 70 and model.alpha == 0.3 and model.latent_prior_var == 2.0
    shapes = [layer.weight_mean.shape for layer in model.network.layers]
    assert shapes == [(1, 2, 8), (1, 8, 4), (1, 4, 1)]  # one replica
    assert len_epoch(data) == 1  # the default batch (560) exceeds the 70 training points
    # the runner hands the model its interrupt guard: an update's optimiser steps are not cut
    assert model.update_guard is update_deferred


def test_build_defaults_gamma_to_the_input_dimension(
    compose_train: Callable[..., DictConfig],
) -> None:
    _, model = build(compose_train("data.n_points=100"))
    assert model.latent_prior_var == 1.0


@pytest.mark.parametrize("alpha", ["1.5", "-0.5"])
def test_build_rejects_alpha_outside_the_unit_interval(
    compose_train: Callable[..., DictConfig], alpha: str
) -> None:
    with pytest.raises(ValueError, match=f"alpha.*{alpha}"):
        build(compose_train(f"alpha={alpha}", "data.n_points=100"))


def test_len_epoch_rounds_up(compose_train: Callable[..., DictConfig]) -> None:
    data, _ = build(compose_train("data.n_points=100", "data.batch_size=32"))
    assert len_epoch(data) == 3  # 70 training points in batches of 32


def test_failed_run_records_status_and_reason(
    compose_train: Callable[..., DictConfig], tmp_path: Path
) -> None:
    cfg = compose_train("data.n_points=5")
    with pytest.raises(Exception, match="n_points"):  # Hydra wraps the constructor's ValueError
        train(cfg, tmp_path)
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["status"] == "failed"
    assert "n_points" in metrics["error"] and "5" in metrics["error"]


@pytest.mark.filterwarnings("ignore:.*LeafSpec.*:FutureWarning")
def test_an_ensemble_trains_the_members_of_separate_het_mlp_runs(
    compose_train: Callable[..., DictConfig], tmp_path: Path
) -> None:
    """model=ensemble of 3, seed 1: its members are the het_mlps of seeds 3, 4 and 5 trained
    each on its own (the same initial weights and data orders), to float rounding."""
    settings = ["data.n_points=60", "model.hidden=[8]", "trainer.max_epochs=3",
                "data.batch_size=10", "plots=false", "progress_bar=false", "checkpoint_every=null",
                "trainer.check_val_every_n_epoch=1"]  # fmt: skip
    train(compose_train("model=ensemble", "model.members=3", "seed=1", *settings), tmp_path / "e")
    ensemble = load_checkpoint(tmp_path / "e" / "checkpoints" / "last.ckpt")
    assert ensemble["hyper_parameters"]["seeds"] == [3, 4, 5]
    for m, seed in enumerate((3, 4, 5)):
        folder = tmp_path / f"member{seed}"
        train(compose_train("model=het_mlp", f"seed={seed}", *settings), folder)
        alone = load_checkpoint(folder / "checkpoints" / "last.ckpt")["state_dict"]
        for name, value in alone.items():
            torch.testing.assert_close(ensemble["state_dict"][name][m], value[0], rtol=1e-5,
                                       atol=1e-6, msg=name)  # fmt: skip
