"""Checks of a composed ``train`` config, reported under the key the user typed.

The constructors check their own arguments too; this runs first, before anything is built, so that
a bad value is named by its config key (``prior.weight_var``, not ``BNNLV(prior_var=…)``), and so
that settings no constructor of ours sees (``trainer.max_epochs``, ``trainer.accelerator``) are
checked as well. Every failure is a ``ValueError`` whose message starts with the key and shows the
value and what is allowed. :func:`check_saved_config` guards configs read back from run folders.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from bnnlv.model.choices import LATENT_KINDS, NOISE_KINDS, layer_names, select_layers

_ABSENT = object()

POSITIVE_INTS = (
    "trainer.max_epochs",
    "trainer.check_val_every_n_epoch",
    "data.batch_size",
    "model.latent_dim",
    "model.n_samples_train",
    "model.n_samples_test",
    "model.n_latent_test",
    "model.predict_chunk",
    "model.members",
)
OPTIONAL_POSITIVE_INTS = ("threads", "checkpoint_every")
# prior.* first: model.prior_var and model.latent_prior_var interpolate them, and the user who
# typed prior.weight_var=-1 should read that key in the message.
POSITIVE_NUMBERS = (
    "prior.weight_var",
    "model.prior_var",
    "model.lr",
    "model.noise_lr",
    "model.posterior_std_init",
    "model.noise_std_init",
)
OPTIONAL_POSITIVE_NUMBERS = ("prior.latent_var", "model.latent_prior_var", "model.latent_lr")
UNIT_INTERVAL = ("alpha", "model.alpha")
GPU_ACCELERATORS = ("gpu", "cuda")
# the only _target_ values a saved run's config may hold (check_saved_config)
MODEL_TARGET = "bnnlv.model.lit_module.BNNLV"
# where the model class lived before the package was split into rooms (bnnlv 0.1.0 run folders)
LEGACY_MODEL_TARGETS = ("bnnlv.module.BNNLV",)
TRAINER_TARGETS = ("lightning.Trainer", "lightning.pytorch.Trainer")
DATA_TARGET = re.compile(r"bnnlv\.data\.[a-z_]+\.[A-Za-z]+")


def check_config(cfg: DictConfig) -> None:
    """Raise ``ValueError`` naming the first bad key of ``cfg``, its value and what is allowed.

    Keys a config does not have (another data set's options, say) are skipped.
    """
    check_values(
        cfg,
        unit_interval=UNIT_INTERVAL,
        positive_ints=POSITIVE_INTS,
        optional_positive_ints=OPTIONAL_POSITIVE_INTS,
        positive_numbers=POSITIVE_NUMBERS,
        optional_positive_numbers=OPTIONAL_POSITIVE_NUMBERS,
    )
    seed = _get(cfg, "seed")
    if seed is not _ABSENT and not (_is_int(seed) and seed >= 0):
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    check_interval(cfg.get("interval"))
    _check_model_shape(cfg)
    _check_accelerator(_get(cfg, "trainer.accelerator"))


def check_interval(value: Any) -> float | None:
    """``interval``, the level of the central predictive interval: a number in (0, 1) or null."""
    if value is not None and not (_is_number(value) and 0 < value < 1):
        raise ValueError(f"interval must be a number in (0, 1) or null, got {value!r}")
    return None if value is None else float(value)


def check_values(
    cfg: DictConfig,
    unit_interval: Sequence[str] = (),
    positive_ints: Sequence[str] = (),
    optional_positive_ints: Sequence[str] = (),
    positive_numbers: Sequence[str] = (),
    optional_positive_numbers: Sequence[str] = (),
    non_negative_numbers: Sequence[str] = (),
) -> None:
    """Check each listed key of ``cfg`` against its kind (``optional_*``: null is allowed too);
    ``ValueError`` naming the first bad key, its value and what is allowed. Absent keys pass."""
    for key in unit_interval:
        value = _get(cfg, key)
        if value is not _ABSENT and not (_is_number(value) and 0.0 <= value <= 1.0):
            raise ValueError(f"{key} must be a number in [0, 1], got {value!r}")
    for key in positive_ints:
        _check_positive_int(key, _get(cfg, key))
    for key in optional_positive_ints:
        if _get(cfg, key) is not None:
            _check_positive_int(key, _get(cfg, key), "or null")
    for key in positive_numbers:
        _check_positive_number(key, _get(cfg, key))
    for key in optional_positive_numbers:
        if _get(cfg, key) is not None:
            _check_positive_number(key, _get(cfg, key), "or null")
    for key in non_negative_numbers:
        value = _get(cfg, key)
        if value is not _ABSENT and not (_is_number(value) and value >= 0):
            raise ValueError(f"{key} must be a finite number ≥ 0, got {value!r}")


def read_saved_config(source: Path) -> DictConfig:
    """A run folder's ``config.yaml``, checked by :func:`check_saved_config`, with the model's
    ``_target_`` of an older bnnlv (:data:`LEGACY_MODEL_TARGETS`) pointed at today's class."""
    cfg = OmegaConf.load(source)
    if not isinstance(cfg, DictConfig):
        raise ValueError(f"{source}: not a run config (a YAML mapping)")
    check_saved_config(cfg, source)
    if OmegaConf.select(cfg, "model._target_") in LEGACY_MODEL_TARGETS:
        cfg.model._target_ = MODEL_TARGET
    return cfg


def check_saved_config(cfg: DictConfig, source: Path) -> None:
    """Refuse a run folder's ``config.yaml`` that could run code when instantiated.

    ``bnnlv evaluate`` and ``resume=`` build objects from a saved config, and Hydra calls whatever
    ``_target_`` names, nested anywhere (``os.system`` included). A config bnnlv saved is fully
    resolved and has exactly three targets: ``model`` the BNNLV module, ``data`` a
    :class:`RegressionDataModule` of ``bnnlv.data``, ``trainer`` the Lightning Trainer. Any other
    ``_target_``, or an interpolation ``${…}`` (which would call a resolver), is a ``ValueError``.
    """

    def walk(node: Any, key: str) -> None:
        if isinstance(node, dict):
            for name, value in node.items():
                child = f"{key}.{name}" if key else str(name)
                if name == "_target_" and not _saved_target(key, value):
                    raise ValueError(
                        f"{source}: {child}={value!r} is not allowed in a saved run's config; "
                        f"allowed: model → {MODEL_TARGET}, data → a bnnlv.data module, "
                        f"trainer → {' or '.join(TRAINER_TARGETS)}"
                    )
                walk(value, child)
        elif isinstance(node, list):
            for index, value in enumerate(node):
                walk(value, f"{key}[{index}]")
        elif isinstance(node, str) and "${" in node:
            raise ValueError(f"{source}: {key}={node!r}: a saved config has no interpolations")

    walk(OmegaConf.to_container(cfg, resolve=False), "")


def _saved_target(key: str, target: Any) -> bool:
    if key == "model":
        return target == MODEL_TARGET or target in LEGACY_MODEL_TARGETS
    if key == "trainer":
        return target in TRAINER_TARGETS
    if key != "data" or not isinstance(target, str) or not DATA_TARGET.fullmatch(target):
        return False
    from hydra.utils import get_class  # imports a bnnlv.data module, nothing else

    from bnnlv.data.module import RegressionDataModule

    try:
        return issubclass(get_class(target), RegressionDataModule)
    except (ImportError, ValueError):
        return False


def _check_model_shape(cfg: DictConfig) -> None:
    latent = _get(cfg, "model.latent")
    if latent is not _ABSENT and latent not in LATENT_KINDS:
        raise ValueError(f"model.latent must be one of {', '.join(LATENT_KINDS)}, got {latent!r}")
    noise = _get(cfg, "model.noise")
    if noise is not _ABSENT and noise not in NOISE_KINDS:
        raise ValueError(f"model.noise must be one of {', '.join(NOISE_KINDS)}, got {noise!r}")
    hidden = _get(cfg, "model.hidden")
    if hidden is not _ABSENT:
        if not isinstance(hidden, list) or not hidden or not all(_is_int(h) for h in hidden):
            raise ValueError(f"model.hidden must be a non-empty list of sizes, got {hidden!r}")
        if min(hidden) <= 0:
            raise ValueError(f"model.hidden sizes must be positive integers, got {hidden}")
    latent_hidden = _get(cfg, "model.latent_hidden")
    if latent_hidden is not _ABSENT and not (
        isinstance(latent_hidden, list) and all(_is_int(h) and h > 0 for h in latent_hidden)
    ):
        raise ValueError(
            f"model.latent_hidden must be a list of positive sizes, got {latent_hidden!r}"
        )
    selector = _get(cfg, "model.stochastic_layers")
    if selector is not _ABSENT and isinstance(hidden, list):
        try:
            select_layers(selector, layer_names(len(hidden)))
        except ValueError as error:
            raise ValueError(f"model.{error}") from None


def _check_accelerator(accelerator: Any) -> None:
    if accelerator not in GPU_ACCELERATORS:
        return
    import torch  # only for a GPU run: the other checks come before torch is imported

    if not torch.cuda.is_available():
        raise ValueError(
            f"trainer.accelerator={accelerator} needs a CUDA GPU, and torch finds none "
            f"(torch {torch.__version__}, CUDA build: {torch.version.cuda is not None}); "
            f"use trainer=cpu"
        )


def _get(cfg: DictConfig, key: str) -> Any:
    """The resolved plain value at ``key`` (lists as lists), or ``_ABSENT``."""
    value = OmegaConf.select(cfg, key, default=_ABSENT)
    if OmegaConf.is_config(value):
        return OmegaConf.to_container(value, resolve=True)
    return value


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _check_positive_int(key: str, value: Any, alternative: str = "") -> None:
    if value is not _ABSENT and not (_is_int(value) and value > 0):
        allowed = f"a positive integer {alternative}".rstrip()
        raise ValueError(f"{key} must be {allowed}, got {value!r}")


def _check_positive_number(key: str, value: Any, alternative: str = "") -> None:
    if value is not _ABSENT and not (_is_number(value) and value > 0):
        allowed = f"a positive finite number {alternative}".rstrip()
        raise ValueError(f"{key} must be {allowed}, got {value!r}")
