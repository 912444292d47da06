"""bnnlv.runs.state: the data state a checkpoint carries loads with weights_only=True."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from bnnlv.data.columns import InputColumns
from bnnlv.data.csv import CsvData
from bnnlv.data.toy import ToyHeteroscedastic
from bnnlv.runs.state import KEY, RunState, data_state, read_data_state


def test_data_state_round_trips_through_safe_loading(tmp_path: Path) -> None:
    data = ToyHeteroscedastic(n_points=50, batch_size=10)
    torch.save({KEY: data_state(data)}, tmp_path / "state.ckpt")
    saved = read_data_state(torch.load(tmp_path / "state.ckpt", weights_only=True))
    for field in ("x_mean", "x_std", "y_mean", "y_std"):
        np.testing.assert_array_equal(getattr(saved.scaler, field), getattr(data.scaler, field))
    assert saved.feature_names == ["x"] and saved.target_names == ["y"]
    raw = data.splits.y_test
    np.testing.assert_allclose(saved.scaler.y_inverse(data.scaler.y(raw)), raw)


def test_a_checkpoint_without_data_state_is_rejected() -> None:
    with pytest.raises(ValueError, match="no bnnlv data state"):
        read_data_state({"state_dict": {}})


def test_a_checkpoint_without_a_training_position_cannot_be_resumed() -> None:
    """An older bnnlv's checkpoint: evaluate reads it, resume= says why it cannot continue it."""
    with pytest.raises(ValueError, match=r"no training position.*bnnlv evaluate"):
        RunState().on_load_checkpoint(None, None, {KEY: {"scaler": {}}})  # type: ignore[arg-type]


def test_categorical_inputs_round_trip_and_old_checkpoints_have_plain_columns(
    tmp_path: Path,
) -> None:
    path = tmp_path / "data.csv"
    path.write_text("a,site,y\n" + "".join(f"{i},{'ns'[i % 2]},{i % 3}\n" for i in range(20)))
    data = CsvData(str(path), ["y"], categorical=["site"])
    torch.save({KEY: data_state(data)}, tmp_path / "state.ckpt")
    saved = read_data_state(torch.load(tmp_path / "state.ckpt", weights_only=True))
    assert saved.inputs == InputColumns(["a", "site"], {"site": ["n", "s"]})
    assert saved.feature_names == ["a", "site=n", "site=s"]
    state = data_state(data)
    del state["inputs"], state["categories"]  # as bnnlv 0.1.0 wrote it
    assert read_data_state({KEY: state}).inputs == InputColumns(["a", "site=n", "site=s"], {})
