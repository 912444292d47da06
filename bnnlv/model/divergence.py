"""Replicas whose energy stopped being finite, and when (bnnlv.model.replicas).

A diverged replica trains on as NaN: its gradient and update are its own, so the other replicas
are unharmed. Training stops (:class:`DivergenceError`) once every run has a diverged replica;
until then each run with one is reported as failed when training ends (bnnlv.runs.train).
"""

from __future__ import annotations

import math
from typing import NamedTuple

from torch import Tensor


class DivergenceError(RuntimeError):
    """The energy became non-finite during training."""


class Divergence(NamedTuple):
    """Where and how a replica's energy stopped being finite."""

    reason: str  # "non-finite energy nan at epoch E, step S"
    epoch: int
    step: int  # optimiser updates made before it


class Divergences:
    """The diverged replicas of a model of runs of ``members`` replicas each."""

    def __init__(self, runs: int, members: int) -> None:
        self.runs, self.members = runs, members
        self.replicas: dict[int, Divergence] = {}  # replica → where it stopped

    def record(self, energy: Tensor, epoch: int, step: int) -> None:
        """Record the replicas whose energy [R] is not finite at this update; DivergenceError
        (the first replica's reason) once every run has a diverged replica."""
        for replica, value in enumerate(energy.tolist()):
            if not math.isfinite(value) and replica not in self.replicas:
                reason = f"non-finite energy {value} at epoch {epoch}, step {step}"
                self.replicas[replica] = Divergence(reason, epoch, step)
        if len(self.by_run()) == self.runs:
            raise DivergenceError(self.replicas[min(self.replicas)].reason)

    def by_run(self) -> dict[int, Divergence]:
        """The runs with a diverged replica, each with its first member's divergence."""
        runs: dict[int, Divergence] = {}
        for replica, divergence in sorted(self.replicas.items()):
            runs.setdefault(replica // self.members, divergence)
        return runs
