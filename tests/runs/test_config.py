"""check_config: every shipped config passes; a bad value is named by its config key."""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig, OmegaConf

from bnnlv.runs.config import check_config, check_saved_config
from bnnlv.runs.folders import config_dir

SHIPPED = [
    [],
    ["model=bnn"],
    ["model=mlp"],  # stochastic_layers: [] (deterministic) is valid
    ["experiment=seed_tutorial"],
    ["data=toy_bimodal"],
    ["data=uci"],
    ["data=wet_chicken"],
    ["data=csv"],  # data.path is ??? (mandatory): not this check's business
    ["prior.latent_var=null", "threads=null", "checkpoint_every=null", "model.latent_lr=null"],
    ["alpha=0"],
    ["alpha=1"],
    ["model.stochastic_layers=[-1]", "model.hidden=[4,4]"],
    ["model.stochastic_layers=[layer0,layer2]", "model.hidden=[4,4]"],
]


@pytest.mark.parametrize("overrides", SHIPPED, ids=[" ".join(o) or "default" for o in SHIPPED])
def test_shipped_configs_pass(
    compose_train: Callable[..., DictConfig], overrides: list[str]
) -> None:
    check_config(compose_train(*overrides))


BAD = [
    ("alpha", 1.5, r"^alpha must be a number in \[0, 1\], got 1.5$"),
    ("model.alpha", -1, r"^model.alpha must be a number in \[0, 1\], got -1$"),
    ("alpha", True, r"^alpha must be .* got True$"),  # a bool is not a number here
    ("alpha", float("nan"), r"^alpha must be .* got nan$"),
    ("trainer.max_epochs", 2.5, r"^trainer.max_epochs must be a positive integer, got 2.5$"),
    ("trainer.check_val_every_n_epoch", 0, r"^trainer.check_val_every_n_epoch .* got 0$"),
    ("data.batch_size", "ten", r"^data.batch_size must be a positive integer, got 'ten'$"),
    ("model.predict_chunk", 0, r"^model.predict_chunk .* got 0$"),
    ("threads", 0, r"^threads must be a positive integer or null, got 0$"),
    # model.prior_var interpolates prior.weight_var: the message names what the user typed
    ("prior.weight_var", -2, r"^prior.weight_var must be a positive finite number, got -2$"),
    ("model.prior_var", 0, r"^model.prior_var must be a positive finite number, got 0$"),
    ("prior.weight_var", float("inf"), r"^prior.weight_var must be .* got inf$"),
    ("prior.latent_var", 0, r"^prior.latent_var must be a positive finite number or null, got 0$"),
    ("model.latent_lr", -1, r"^model.latent_lr .* or null, got -1$"),
    ("model.posterior_std_init", 0, r"^model.posterior_std_init .* got 0$"),
    ("model.noise_std_init", -0.1, r"^model.noise_std_init .* got -0.1$"),
    ("model.noise_lr", 0, r"^model.noise_lr must be a positive finite number, got 0$"),
    ("model.hidden", 8, r"^model.hidden must be a non-empty list of sizes, got 8$"),
    ("model.hidden", [8, -1], r"^model.hidden sizes must be positive integers, got \[8, -1\]$"),
    ("model.latent_hidden", [0], r"^model.latent_hidden must be a list of positive sizes"),
    ("model.latent", "per-point", r"^model.latent must be one of per_point, amortised, none"),
    ("model.noise", "hetero", r"^model.noise must be one of homoscedastic, heteroscedastic, got"),
    ("model.stochastic_layers", [3], r"^model.stochastic_layers entry 3 names no layer; valid: -3"),
    ("model.stochastic_layers", [-4], r"^model.stochastic_layers entry -4 names no layer"),
    ("model.stochastic_layers", "foo", r"^model.stochastic_layers entry 'foo' names no layer"),
    ("seed", -1, r"^seed must be a non-negative integer, got -1$"),
    ("interval", 1, r"^interval must be a number in \(0, 1\) or null, got 1$"),
    ("interval", 0.0, r"^interval must be a number in \(0, 1\) or null, got 0.0$"),
    ("interval", "90%", r"^interval must be .* got '90%'$"),
]


@pytest.fixture(scope="module")
def default_config() -> DictConfig:
    with initialize_config_dir(config_dir=config_dir(), version_base="1.3"):
        return compose(config_name="train")


@pytest.mark.parametrize(("key", "value", "message"), BAD, ids=[f"{b[0]}={b[1]}" for b in BAD])
def test_bad_value_is_named_by_its_key(
    default_config: DictConfig, key: str, value: Any, message: str
) -> None:
    cfg = copy.deepcopy(default_config)
    OmegaConf.update(cfg, key, value)
    with pytest.raises(ValueError, match=message):
        check_config(cfg)


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without a CUDA GPU")
@pytest.mark.parametrize("accelerator", ["gpu", "cuda"])
def test_gpu_accelerator_without_a_gpu(default_config: DictConfig, accelerator: str) -> None:
    cfg = copy.deepcopy(default_config)
    cfg.trainer.accelerator = accelerator
    with pytest.raises(ValueError, match=rf"^trainer.accelerator={accelerator} needs a CUDA GPU"):
        check_config(cfg)


# ---------------------------------------------------------------------------------------------
# check_saved_config: what a run folder's config.yaml may name


def saved_copy(cfg: DictConfig) -> DictConfig:
    """The config as bnnlv train saves it (resolved YAML) and evaluate/resume read it back."""
    loaded = OmegaConf.create(OmegaConf.to_yaml(cfg, resolve=True))
    assert isinstance(loaded, DictConfig)
    return loaded


@pytest.mark.parametrize(
    "group", ["data=toy_heteroscedastic", "data=uci", "model=mlp", "model=het_mlp"]
)
def test_a_config_bnnlv_saved_passes(
    compose_train: Callable[..., DictConfig], tmp_path: Path, group: str
) -> None:
    check_saved_config(saved_copy(compose_train(group)), tmp_path / "config.yaml")


HOSTILE = [
    ("data._target_", "os.system", "data._target_='os.system' is not allowed"),
    ("data.extra", {"_target_": "bnnlv.runs.results.write_text", "path": "x", "text": "y"},
     "data.extra._target_='bnnlv.runs.results.write_text'"),
    ("model._target_", "bnnlv.data.toy.ToyBimodal", "model._target_"),
    ("trainer._target_", "lightning.fabric.utilities.cloud_io._load", "trainer._target_"),
    ("data._target_", "bnnlv.data.module.Splits", "data._target_='bnnlv.data.module.Splits'"),
    ("trainer.callbacks", [{"_target_": "os.system"}], r"trainer.callbacks\[0\]._target_"),
    ("seed", "${oc.env:HOME}", "seed=.*no interpolations"),
]  # fmt: skip


@pytest.mark.parametrize(("key", "value", "message"), HOSTILE, ids=[h[0] for h in HOSTILE])
def test_a_config_that_could_run_code_is_refused(
    default_config: DictConfig, tmp_path: Path, key: str, value: Any, message: str
) -> None:
    cfg = saved_copy(default_config)
    OmegaConf.set_struct(cfg, False)
    OmegaConf.update(cfg, key, value, force_add=True)
    with pytest.raises(ValueError, match=message):
        check_saved_config(cfg, tmp_path / "config.yaml")
