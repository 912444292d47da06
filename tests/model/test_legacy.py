"""Older checkpoints' state dicts load into today's model."""

from __future__ import annotations

import torch

from bnnlv.model.lit_module import BNNLV


def test_a_state_dict_of_bnnlv_0_1_loads() -> None:
    """bnnlv 0.1 saved the homoscedastic noise as ``log_noise_var``."""
    torch.manual_seed(0)
    model = BNNLV(in_features=2, out_features=1, n_train=40, batch_size=8, hidden=[6])
    state = model.state_dict()
    state["log_noise_var"] = state.pop("noise.log_var") + 1.0
    fresh = BNNLV(in_features=2, out_features=1, n_train=40, batch_size=8, hidden=[6])
    fresh.load_state_dict(state)
    torch.testing.assert_close(fresh.noise.log_var, model.noise.log_var + 1.0)
