"""Checks of the model's constructor arguments: each a ValueError naming the argument and value."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from bnnlv.model.choices import LATENT_KINDS, NOISE_KINDS, WEIGHT_SAMPLERS

POSITIVE_INTS = (
    "in_features", "out_features", "n_train", "batch_size", "latent_dim", "n_samples_train",
    "n_samples_test", "n_latent_test", "predict_chunk", "members",
)  # fmt: skip
POSITIVE_FLOATS = ("lr", "noise_std_init", "noise_lr", "prior_var", "posterior_std_init")


def positive_int(name: str, value: Any) -> int:
    """``value`` if it is an int > 0 (not a bool)."""
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return value


def positive_float(name: str, value: Any) -> float:
    """``value`` as a float if it is a finite number > 0 (not a bool)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise ValueError(f"{name} must be a positive number, got {value!r}")
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value!r}")
    return float(value)


def one_of(name: str, value: Any, allowed: Sequence[str]) -> str:
    """``value`` if it is one of ``allowed``."""
    if value not in allowed:
        raise ValueError(f"{name} must be one of {list(allowed)}, got {value!r}")
    return str(value)


def flag(name: str, value: Any) -> bool:
    """``value`` if it is a bool."""
    if not isinstance(value, bool):
        raise ValueError(f"{name} must be true or false, got {value!r}")
    return value


def check_arguments(args: Mapping[str, Any]) -> None:
    """The model's constructor arguments (BNNLV.__init__'s ``locals()``), each under its name."""
    for name in POSITIVE_INTS:
        positive_int(name, args[name])
    for name in POSITIVE_FLOATS:
        positive_float(name, args[name])
    for name in ("latent_lr", "latent_prior_var"):
        if args[name] is not None:
            positive_float(name, args[name])
    if not positive_float("latent_init_var_frac", args["latent_init_var_frac"]) < 1.0:
        raise ValueError(
            f"latent_init_var_frac must be in (0, 1), got {args['latent_init_var_frac']!r}"
        )
    one_of("latent", args["latent"], LATENT_KINDS)
    one_of("noise", args["noise"], NOISE_KINDS)
    one_of("weight_sampler", args["weight_sampler"], WEIGHT_SAMPLERS)
    hidden = args["hidden"]
    if isinstance(hidden, int) or not hidden:
        raise ValueError(f"hidden must be a non-empty list of sizes, got {hidden!r}")
    for size in hidden:
        positive_int("hidden size", size)
    flag("compile", args["compile"])
    flag("fused", args["fused"])
    seeds, members = args["seeds"], args["members"]
    if (
        isinstance(seeds, (str, int))
        or not seeds
        or not all(isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in seeds)
    ):
        raise ValueError(f"seeds must be a non-empty list of non-negative integers, got {seeds!r}")
    if len(seeds) % members:
        raise ValueError(
            f"seeds must hold a whole number of runs of members={members} each, got {len(seeds)}"
        )
