"""The replica axis: R independent copies of a model, trained together in one process.

Every parameter, activation and per-point table carries the replicas first: weights [R, …],
activations [R, K, B, H], a latent table of R blocks of N rows [R·N, 2L], noise [R, D]. The loss
is the sum of the replicas' energies, so each replica's gradient is its own; Adam is elementwise
and RowAdam row-wise, so each replica's update is its own too. Every random draw of replica r
comes from its own ``torch.Generator``, seeded from its seed, in a fixed order (the initial
weights, then each step's z and W, the minibatch order from the data's own generator, the
predictive's draws from a generator seeded from the run's seed): replica r ends at the parameters
that a separate run with its seed ends at, up to float rounding. One run is R = 1 of the same code.

Replicas come in runs of ``members`` each (an ensemble's members are replicas whose predictive is
mixed; every other model has one member per run): R = runs × members, run g holding replicas
g·M … g·M + M − 1, and every tensor of the state splits into runs along its first axis.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import torch
from torch import Tensor

Generators = Sequence[torch.Generator]


def seeded(seeds: Sequence[int], device: torch.device | str = "cpu") -> list[torch.Generator]:
    """One generator per seed, on ``device``."""
    return [torch.Generator(device=device).manual_seed(int(seed)) for seed in seeds]


def member_seeds(seed: int, members: int) -> list[int]:
    """The seeds of a run's replicas: ``[seed]`` for one member, ``seed·M + m`` for M members
    (an ensemble of run seed s holds the members a single-network run of seeds s·M … s·M + M − 1
    would train; ensembles of different run seeds share no member)."""
    return [seed] if members == 1 else [seed * members + m for m in range(members)]


def randn(
    generators: Generators | None, replicas: int, shape: Sequence[int], like: Tensor
) -> Tensor:
    """Standard normal draws [R, *shape] on like's device and dtype: row r from
    ``generators[r]`` (each on that device), or all rows from torch's global generator when
    ``generators`` is None."""
    return _fill(
        generators, like.new_empty((replicas, *shape)), lambda t, g: t.normal_(generator=g)
    )


def uniform(
    generators: Generators | None, replicas: int, shape: Sequence[int], like: Tensor, bound: float
) -> Tensor:
    """Uniform draws in [−bound, bound), [R, *shape], drawn as :func:`randn` draws."""
    return _fill(
        generators,
        like.new_empty((replicas, *shape)),
        lambda t, g: t.uniform_(-bound, bound, generator=g),
    )


def random_signs(
    generators: Generators | None, replicas: int, shape: Sequence[int], like: Tensor
) -> Tensor:
    """Independent ±1 with probability ½ each, [R, *shape], drawn as :func:`randn` draws."""
    bits = _fill(
        generators, like.new_empty((replicas, *shape)), lambda t, g: t.random_(0, 2, generator=g)
    )
    return bits.mul_(2.0).sub_(1.0)


def _fill(
    generators: Generators | None,
    out: Tensor,
    fill: Callable[[Tensor, torch.Generator | None], object],
) -> Tensor:
    """``fill(out[r], generators[r])`` for every replica r, or ``fill(out, None)`` at once."""
    if generators is None:
        fill(out, None)
        return out
    if len(generators) != out.shape[0]:
        raise ValueError(f"need one generator per replica ({out.shape[0]}), got {len(generators)}")
    rows = out.unbind(0) if len(generators) > 1 else (out,)  # one replica: its row is all of out
    for row, generator in zip(rows, generators, strict=True):
        fill(row, generator)
    return out


def split_runs(tensor: Tensor, runs: int) -> tuple[Tensor, ...]:
    """A state tensor's runs along its first axis ([R, …] or [R·N, …] → ``runs`` views)."""
    if tensor.dim() == 0 or tensor.shape[0] % runs:
        raise ValueError(
            f"a state tensor of shape {tuple(tensor.shape)} does not split into {runs} runs"
        )
    return tensor.unflatten(0, (runs, -1)).unbind(0)


def split_state(state: Mapping[str, Tensor], runs: int) -> list[dict[str, Tensor]]:
    """A model's state dict as ``runs`` state dicts, run g's slice of every tensor."""
    parts: list[dict[str, Tensor]] = [{} for _ in range(runs)]
    for name, tensor in state.items():
        for part, piece in zip(parts, split_runs(tensor, runs), strict=True):
            part[name] = piece
    return parts


def stack_states(states: Sequence[Mapping[str, Tensor]]) -> dict[str, Tensor]:
    """The inverse of :func:`split_state`: the runs' state dicts joined along the first axis."""
    return {name: torch.cat([state[name] for state in states]) for name in states[0]}
