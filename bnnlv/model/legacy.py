"""Checkpoints of older bnnlv versions: what changed in the model's state, and how it is read.

Registered as a ``load_state_dict`` pre-hook of the model, so that ``bnnlv evaluate``, ``predict``
and ``resume=`` of an old run folder see today's names:

- bnnlv ≤ 0.1 held the homoscedastic noise as ``log_noise_var``; it is ``noise.log_var`` now
  (bnnlv.model.likelihood).
"""

from __future__ import annotations

from typing import Any

from torch import nn


def upgrade_state_dict(module: nn.Module, state_dict: dict[str, Any], prefix: str, *_: Any) -> None:
    """Rename the entries of an older state dict in place (a load_state_dict pre-hook)."""
    if prefix + "log_noise_var" in state_dict:
        state_dict[prefix + "noise.log_var"] = state_dict.pop(prefix + "log_noise_var")
