"""Several runs trained in one process on the model's replica axis (bnnlv.model.replicas), each
still its own run: its folder, its checkpoint, its scores.

Runs can be trained together when their configs differ only in their run keys
(bnnlv.runs.grouping). The model then holds run g's replicas as block g of every tensor, and a
checkpoint of it splits into one checkpoint per run (:func:`split_checkpoint`), each exactly what
a run trained alone would have saved at that point: ``resume=`` of one run folder continues that
run alone.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from bnnlv.model.replicas import split_runs, split_state
from bnnlv.runs.state import KEY

# a checkpoint entry {name: [run 0's value, run 1's, …]}: entries that a command's callbacks keep
# per run (bnnlv active's loop state), each run's checkpoint getting its own as ``name``
PER_RUN = "bnnlv_per_run"


def split_checkpoint(checkpoint: Mapping[str, Any], runs: int) -> list[dict[str, Any]]:
    """A checkpoint of a model of ``runs`` runs as one checkpoint per run.

    Every replica-shaped tensor (the state dict, the optimisers' moments and row counts) is cut
    along its first axis (model.replicas.split_state); run g gets its members' seeds, its own
    data state (``bnnlv.runs``), its replicas' entries of the position (their generators'
    and shuffling states, their running sums) and its value of each :data:`PER_RUN` entry.
    Everything else is the same for every run.
    The tensors are copies, so that a run's file holds its own block only.
    """
    hyper = dict(checkpoint["hyper_parameters"])
    members = len(hyper["seeds"]) // runs
    states = split_state(checkpoint["state_dict"], runs)
    state = checkpoint[KEY]
    position = state["position"]
    per_run: Mapping[str, Sequence[Any]] = checkpoint.get(PER_RUN, {})
    if any(len(values) != runs for values in per_run.values()):
        raise ValueError(f"a checkpoint of {runs} runs has a {PER_RUN} entry of another length")
    parts = []
    for g in range(runs):
        block = slice(g * members, (g + 1) * members)
        part = {name: value for name, value in checkpoint.items() if name != PER_RUN}
        part |= {name: values[g] for name, values in per_run.items()}
        part["state_dict"] = {name: tensor.clone() for name, tensor in states[g].items()}
        part["hyper_parameters"] = hyper | {"seeds": list(hyper["seeds"][block])}
        part["optimizer_states"] = [
            _split_optimiser_state(opt, runs, g) for opt in checkpoint["optimizer_states"]
        ]
        run_position = dict(position)
        run_position["shuffle"] = list(position["shuffle"][block])
        run_position["torch"] = list(position["torch"][block])
        if "epoch_totals" in position:
            totals = position["epoch_totals"]
            sums = split_runs(totals["sums"], runs)[g].clone()
            run_position["epoch_totals"] = totals | {"sums": sums}
        part[KEY] = dict(state["runs"][g]) | {"position": run_position}
        parts.append(part)
    return parts


def _split_optimiser_state(state: Mapping[str, Any], runs: int, g: int) -> dict[str, Any]:
    """Run g's share of an optimiser's saved state: its block of every tensor with an axis
    (moments, a table's rows and their step counts), the rest (Adam's step count) as it is."""

    def share(value: Any) -> Any:
        dims = getattr(value, "dim", lambda: 0)()
        return split_runs(value, runs)[g].clone() if dims else value

    per_param = {
        index: {key: share(value) for key, value in entries.items()}
        for index, entries in state["state"].items()
    }
    return dict(state) | {"state": per_param}
