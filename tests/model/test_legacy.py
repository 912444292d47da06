"""Older checkpoints' state dicts and optimiser states load into today's model (model.legacy)."""

from __future__ import annotations

import torch

from bnnlv.model.legacy import upgrade_optimiser_states
from bnnlv.model.lit_module import BNNLV


def _model(**kwargs: object) -> BNNLV:
    return BNNLV(in_features=2, out_features=1, n_train=40, batch_size=8, hidden=[6], **kwargs)  # type: ignore[arg-type]


def _as_bnnlv_0_1(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A state dict as bnnlv 0.1 saved it: no replica axis, the noise as ``log_noise_var``, the
    inference network as ``nn.Linear`` layers ``latent.net.{0, 2, …}`` (weight [d_out, d_in])."""
    old = {k: (v if k == "latent.table.weight" else v[0]) for k, v in state.items()}
    old["log_noise_var"] = old.pop("noise.log_var")
    weights = sorted(k for k in old if k.startswith("latent.weights."))
    for j, key in enumerate(weights):
        old[f"latent.net.{2 * j}.weight"] = old.pop(key).T
        old[f"latent.net.{2 * j}.bias"] = old.pop(f"latent.biases.{key.split('.')[-1]}")
    return old


def test_a_state_dict_of_bnnlv_0_1_loads() -> None:
    for latent in ("per_point", "amortised"):
        model = _model(latent=latent, seeds=[3])
        old = _as_bnnlv_0_1(model.state_dict())
        assert "log_noise_var" in old and old["network.layers.0.weight_mean"].shape == (3, 6)
        fresh = _model(latent=latent, seeds=[9])
        fresh.load_state_dict(old)
        for name, value in model.state_dict().items():
            assert torch.equal(fresh.state_dict()[name], value), name


def test_optimiser_states_of_bnnlv_0_1_gain_the_replica_axis() -> None:
    """Adam's moments follow their parameters' shape; step counts and table rows stay."""
    model = _model()
    (adam, rows) = model.configure_optimizers()
    params = [p for group in adam.param_groups for p in group["params"]]
    checkpoint = {
        "optimizer_states": [
            {"state": {0: {"step": torch.tensor(3.0), "exp_avg": torch.ones(3, 6)}}},
            {"state": {0: {"step": torch.ones(40), "exp_avg": torch.ones(40, 2)}}},
        ]
    }
    upgrade_optimiser_states(checkpoint, [params, list(model.latent.parameters())])  # type: ignore[union-attr]
    first = checkpoint["optimizer_states"][0]["state"][0]
    assert first["exp_avg"].shape == (1, 3, 6) and first["step"].shape == ()
    table = checkpoint["optimizer_states"][1]["state"][0]
    assert table["exp_avg"].shape == (40, 2) and table["step"].shape == (40,)
    assert rows is not None
