"""The learned transition model as policy search needs it: the one place that knows the model.

Policy search rolls a trained dynamics model forward with K weight draws W_k held fixed over a
roll-out, fresh latent inputs z ~ N(0, γ) and fresh output noise ε ~ N(0, 1) at every step:

    s_{t+1} = f(s_t, a_t, z_t; W_k) + σ(s_t, a_t, z_t; W_k) ⊙ ε_t   (the model's standardised units)

The model is frozen (no parameter of it requires a gradient), so a roll-out's gradient reaches
the policy only. The model works in standardised units: this adapter standardises (s, a) with
the training run's statistics and returns the next state in raw units. ``data=wet_chicken``
models the next state itself (targets x', y'), not the change.

The map is :meth:`BNNLV.draw_dynamics <bnnlv.model.lit_module.BNNLV.draw_dynamics>`: K weight
draws held fixed, (x, z) → (mean, noise variance), differentiable in x and z only (the noise
variance is σ² of the learned homoscedastic noise, or the heteroscedastic head's at (x, z)).
A model with another interface changes this module only.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
from torch import Tensor

from bnnlv.data.module import Standardiser
from bnnlv.data.wet_chicken import FEATURES, TARGETS
from bnnlv.model.components import DrawnDynamics
from bnnlv.model.lit_module import BNNLV


class DrawnModel(NamedTuple):
    """K weight draws of the model, held fixed over a roll-out: a differentiable step."""

    drawn: DrawnDynamics  # standardised (x [K, B, D_in], z [K, B, L]) → (mean, σ²) [K, B, D]
    dynamics: ModelDynamics

    @property
    def n_draws(self) -> int:
        """K, the draws held fixed (those asked for, rounded up to a multiple of the members)."""
        return self.drawn.n_draws

    def step(self, state: Tensor, action: Tensor, z: Tensor, eps: Tensor) -> Tensor:
        """s' = f(s, a, z; W_k) + σ ε in raw units: state, action [K, B, 2], z [K, B, L],
        eps [K, B, D] → next state [K, B, D]."""
        d = self.dynamics
        inputs = (torch.cat([state, action], dim=-1) - d.x_mean) / d.x_std  # [K, B, D_in]
        mean, noise_var = self.drawn(inputs, z)  # [K, B, D] each, standardised
        return (mean + noise_var.sqrt() * eps) * d.y_std + d.y_mean  # [K, B, D]


class ModelDynamics:
    """A trained :class:`BNNLV` on Wet-Chicken transitions, frozen, with its standardiser.

    ``latent_dim`` (0 for ``bnn`` and ``mlp``) and ``latent_var`` γ say how to draw z;
    ``state_dim`` how many outputs ε needs; ``members`` how many networks the model mixes (M of
    an ``ensemble``, else 1). ValueError if the model was not trained on
    (x, y, a_x, a_y) → (x', y').
    """

    def __init__(
        self,
        model: BNNLV,
        scaler: Standardiser,
        feature_names: list[str],
        target_names: list[str],
    ) -> None:
        if tuple(feature_names) != FEATURES or tuple(target_names) != TARGETS:
            raise ValueError(
                "policy search needs a dynamics model of data=wet_chicken, inputs "
                f"{list(FEATURES)} → targets {list(TARGETS)}; this one maps {feature_names} → "
                f"{target_names}"
            )
        model.eval()
        model.requires_grad_(False)
        self.model = model
        self.x_mean, self.x_std, self.y_mean, self.y_std = (
            torch.as_tensor(v, dtype=torch.float32)
            for v in (scaler.x_mean, scaler.x_std, scaler.y_mean, scaler.y_std)
        )
        self.latent_dim = model.latent_dim
        self.latent_var = model.latent_prior_var
        self.state_dim = len(TARGETS)
        self.members = model.members

    def draw(self, n_draws: int) -> DrawnModel:
        """K weight samples W_k ~ q(W) (the means, K times, for a deterministic network), from
        the global torch generator. An ensemble's W is its member, drawn uniformly: each of its
        M members gives ⌈n_draws / M⌉ of them (block m of the K axis), so K = ``n_draws``
        rounded up to a multiple of M."""
        per_member = -(-n_draws // self.members)
        return DrawnModel(self.model.draw_dynamics(per_member), self)

    def sample_noise(self, n_draws: int, batch: int) -> tuple[Tensor, Tensor]:
        """One step's fresh draws: z ~ N(0, γ) [K, B, L] and ε ~ N(0, 1) [K, B, D]."""
        z = torch.randn(n_draws, batch, self.latent_dim) * math.sqrt(self.latent_var)
        eps = torch.randn(n_draws, batch, self.state_dim)
        return z, eps
