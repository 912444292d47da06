"""Checkpoints of older bnnlv versions: what changed in the model's state, and how it is read.

:func:`upgrade_state_dict` is a ``load_state_dict`` pre-hook of the model and
:func:`upgrade_optimiser_states` runs when Lightning loads a checkpoint to resume from, so that
``bnnlv evaluate``, ``predict`` and ``resume=`` of an old run folder see today's state:

- bnnlv ≤ 0.1 held the homoscedastic noise as ``log_noise_var``; it is ``noise.log_var`` now
  (bnnlv.model.likelihood);
- bnnlv ≤ 0.1 had no replica axis (bnnlv.model.replicas): its tensors are one replica's, and
  gain a leading axis of 1 where today's have one (the per-point table's rows are unchanged);
- its inference network was ``latent.net.{i}`` (torch ``nn.Linear``, weight [d_out, d_in]); it is
  ``latent.weights.{j}`` [R, d_in, d_out] and ``latent.biases.{j}`` now.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import Tensor, nn


def upgrade_state_dict(module: nn.Module, state_dict: dict[str, Any], prefix: str, *_: Any) -> None:
    """Rename and reshape the entries of an older state dict in place (a load_state_dict
    pre-hook); a state dict of today's model is left as it is."""
    if prefix + "log_noise_var" in state_dict:
        state_dict[prefix + "noise.log_var"] = state_dict.pop(prefix + "log_noise_var")
    old_net = sorted(
        (key for key in state_dict if key.startswith(prefix + "latent.net.")
         and key.endswith(".weight")),
        key=lambda key: int(key.split(".")[-2]),
    )  # fmt: skip
    for j, key in enumerate(old_net):
        state_dict[f"{prefix}latent.weights.{j}"] = state_dict.pop(key).T
        state_dict[f"{prefix}latent.biases.{j}"] = state_dict.pop(key[: -len("weight")] + "bias")
    expected = module.state_dict()
    for name, value in state_dict.items():
        own = expected.get(name[len(prefix) :])
        if own is not None and own.shape == (1, *value.shape):
            state_dict[name] = value.unsqueeze(0)


def upgrade_optimiser_states(
    checkpoint: Mapping[str, Any], parameters: Sequence[Sequence[Tensor]]
) -> None:
    """Give an older checkpoint's optimiser states the replica axis of their parameters, in
    place: ``parameters`` lists each optimiser's parameters in its groups' order."""
    for state, params in zip(checkpoint.get("optimizer_states", []), parameters, strict=False):
        for index, per_param in state.get("state", {}).items():
            shape = params[index].shape
            for key, value in per_param.items():
                if isinstance(value, torch.Tensor) and (1, *value.shape) == shape:
                    per_param[key] = value.unsqueeze(0)
