"""The loop state in checkpoints: what is saved, and what a resume reads back."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from bnnlv.active.state import KEY, ActiveState, LoopState, SavedLoop
from bnnlv.model.lit_module import BNNLV
from bnnlv.runs.replicas import PER_RUN


def write_checkpoint(path: Path, state: LoopState | None) -> BNNLV:
    model = BNNLV(1, 1, 4, 4, hidden=[3])
    checkpoint = {"state_dict": model.state_dict()}
    if state is not None:
        ActiveState([state]).on_save_checkpoint(None, model, checkpoint)  # type: ignore[arg-type]
    torch.save(checkpoint, path)
    return model


def test_the_state_round_trips_through_a_weights_only_checkpoint(tmp_path: Path) -> None:
    rows = [{"round": 0, "n_labelled": 4, "test_nll": 2.5, "acquired": "7 9", "mean_score": None}]
    path = tmp_path / "last.ckpt"
    model = write_checkpoint(path, LoopState([3, 1, 2, 0, 7, 9], rows, fitted_round=0))
    saved = SavedLoop(path)
    assert saved.state.labelled == [3, 1, 2, 0, 7, 9] and saved.state.rows == rows
    assert saved.state.next_round == 1 and not saved.state.fit_in_progress
    assert all(torch.equal(saved.parameters[k], v) for k, v in model.state_dict().items())
    write_checkpoint(path, LoopState([3, 1, 2, 0, 7, 9], rows, fitted_round=1))
    assert SavedLoop(path).state.fit_in_progress  # round 1 had begun its fit


def test_a_checkpoint_without_a_loop_or_with_an_impossible_one_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "last.ckpt"
    write_checkpoint(path, None)
    with pytest.raises(ValueError, match="no active-learning state"):
        SavedLoop(path)
    write_checkpoint(path, LoopState([1], [], fitted_round=3))
    with pytest.raises(ValueError, match="inconsistent state: fit of round 3, 0 rows"):
        SavedLoop(path)
    assert KEY == "bnnlv_active"


def test_runs_trained_together_save_their_states_per_run() -> None:
    """One entry per run under PER_RUN, each what that run alone would save under KEY."""
    states = [LoopState([4, 2], [], fitted_round=0), LoopState([1, 5], [{"round": 0}], 0)]
    together: dict[str, object] = {}
    ActiveState(states).on_save_checkpoint(None, None, together)  # type: ignore[arg-type]
    assert list(together) == [PER_RUN]
    for state, entry in zip(states, together[PER_RUN][KEY], strict=True):  # type: ignore[index]
        alone: dict[str, object] = {}
        ActiveState([state]).on_save_checkpoint(None, None, alone)  # type: ignore[arg-type]
        assert entry["labelled"].tolist() == alone[KEY]["labelled"].tolist()  # type: ignore[index]
        assert entry["rows"] == alone[KEY]["rows"]  # type: ignore[index]
