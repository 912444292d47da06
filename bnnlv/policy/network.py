"""The policy π(s; θ): a small ReLU network from the state to actions in [−1, 1] (tanh outputs).

The authors' policy (policy_search_bb-alpha, ``train_controller.py``) is two hidden layers of 20
ReLU units with tanh outputs, on inputs standardised with the dynamics model's statistics; this
is the same network. The standardisation travels with the policy as buffers, so a saved policy
acts on raw states by itself.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from bnnlv.runs.checkpoints import load_checkpoint

STATE_DIM = 2  # (x, y)
ACTION_DIM = 2  # (a_x, a_y)


class Policy(nn.Module):
    """a = tanh(MLP((s − mean) / std)): s [..., 2] raw state → a [..., 2] in [−1, 1]².

    ``state_mean`` and ``state_std`` ([2], raw units) standardise the input; ``hidden`` lists the
    ReLU layer sizes.
    """

    state_mean: Tensor
    state_std: Tensor

    def __init__(
        self,
        state_mean: Sequence[float],
        state_std: Sequence[float],
        hidden: Sequence[int] = (20, 20),
    ) -> None:
        super().__init__()
        mean = torch.as_tensor(np.asarray(state_mean, dtype=np.float32))
        std = torch.as_tensor(np.asarray(state_std, dtype=np.float32))
        if mean.shape != (STATE_DIM,) or std.shape != (STATE_DIM,) or not bool((std > 0).all()):
            raise ValueError(
                f"policy input statistics must be {STATE_DIM} means and {STATE_DIM} positive "
                f"stds, got {list(state_mean)} and {list(state_std)}"
            )
        if isinstance(hidden, int) or not hidden or any(int(h) <= 0 for h in hidden):
            raise ValueError(
                f"policy.hidden must be a non-empty list of positive sizes, got {hidden!r}"
            )
        self.hidden = [int(h) for h in hidden]
        self.register_buffer("state_mean", mean)
        self.register_buffer("state_std", std)
        sizes = [STATE_DIM, *self.hidden]
        layers: list[nn.Module] = []
        for d_in, d_out in zip(sizes[:-1], sizes[1:], strict=True):
            layers += [nn.Linear(d_in, d_out), nn.ReLU()]
        self.net = nn.Sequential(*layers, nn.Linear(sizes[-1], ACTION_DIM), nn.Tanh())

    def forward(self, state: Tensor) -> Tensor:
        """state [..., 2] (raw) → action [..., 2] in [−1, 1]."""
        if state.shape[-1] != STATE_DIM:
            raise ValueError(
                f"policy input must end in {STATE_DIM} (x, y), got {tuple(state.shape)}"
            )
        return self.net((state - self.state_mean) / self.state_std)

    @torch.no_grad()
    def act(self, state: np.ndarray) -> np.ndarray:
        """The actions for raw states [N, 2] as float64 numpy (for the true simulator)."""
        return self(torch.as_tensor(state, dtype=torch.float32)).double().numpy()

    def saved_state(self) -> dict[str, Any]:
        """What :func:`load_policy` needs: the weights and statistics, and the hidden sizes."""
        return {"policy": self.state_dict(), "hidden": list(self.hidden)}

    def flat(self) -> Tensor:
        """θ as one vector [P] (a copy)."""
        return nn.utils.parameters_to_vector(self.parameters()).detach().clone()

    def load_flat(self, theta: Tensor) -> None:
        """Set θ from a vector [P] (the inverse of :meth:`flat`)."""
        nn.utils.vector_to_parameters(theta, self.parameters())


def load_policy(path: Path) -> Policy:
    """A policy saved by bnnlv (``checkpoints/policy.ckpt`` or ``upper_bound.ckpt`` of a policy
    run), unpickled safely (``weights_only=True``)."""
    state = load_checkpoint(path)
    if "policy" not in state or "hidden" not in state:
        raise ValueError(f"{path}: not a bnnlv policy checkpoint (no policy weights)")
    weights = state["policy"]
    policy = Policy(weights["state_mean"].tolist(), weights["state_std"].tolist(), state["hidden"])
    policy.load_state_dict(weights)
    return policy
