"""The latent-variable posterior q(z_n) = N(μ_n, s_n²) and the prior N(0, γ I_L).

Two parameterisations (method.md §1): a free Gaussian per training point, stored as
an embedding table so that only the rows in a minibatch receive gradients, or an inference network
on (x_n, y_n). Variances are s² = γ·sigmoid(ρ) ≤ γ. Both return a :class:`LatentSample`.
Test-time z always comes from the prior, :func:`sample_prior`: a new point has no y.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import NamedTuple

import torch
from torch import Tensor, nn

from bnnlv.model.energy import LOG_2PI, centred_log_ratio


class LatentSample(NamedTuple):
    """K draws of z for a batch, with the factor terms the energy needs at those same draws, and
    the noise and variance behind z = μ + √(s²) ε (what a hand-written backward needs)."""

    z: Tensor  # [K, S, L]
    log_ratio: Tensor  # [K, S]   centred log f_n(z_kn)
    log_norm_q: Tensor  # [S]      centred log Z_q(z_n)
    noise: Tensor  # [K, S, L]  ε
    var: Tensor  # [S, L]  s²


def _check_latent(latent_dim: int, prior_var: float) -> None:
    if latent_dim <= 0:
        raise ValueError(f"latent_dim must be a positive integer, got {latent_dim!r}")
    if prior_var <= 0:
        raise ValueError(f"latent prior_var (γ) must be > 0, got {prior_var!r}")


def draw_posterior(mean: Tensor, var: Tensor, n_samples: int, prior_var: float) -> LatentSample:
    """K draws z_kn = μ_n + s_n ε_kn of q(z_n) for mean, var [S, L] → LatentSample."""
    eps = torch.randn((n_samples, *mean.shape), device=mean.device, dtype=mean.dtype)
    z = mean + var.sqrt() * eps  # [K, S, L]
    log_ratio = centred_log_ratio(z, eps, prior_var, sample_dims=2)  # per point: [K, S]
    log_norm_q = 0.5 * (LOG_2PI + var.log()).sum(dim=-1)  # [S]
    return LatentSample(z, log_ratio, log_norm_q, eps, var)


def log_norm_prior(latent_dim: int, prior_var: float) -> float:
    """log Z_p(z) = L · ½ log(2πγ)."""
    return latent_dim * 0.5 * (LOG_2PI + math.log(prior_var))


def sample_prior(
    n_samples: int,
    batch: int,
    latent_dim: int,
    prior_var: float,
    like: Tensor,
    generator: torch.Generator | None = None,
) -> Tensor:
    """z ~ N(0, γ I_L) of shape [n_samples, batch, L], on like's device and dtype, drawn from
    ``generator`` (None: torch's global generator)."""
    shape = (n_samples, batch, latent_dim)
    eps = torch.randn(shape, device=like.device, dtype=like.dtype, generator=generator)
    return eps * math.sqrt(prior_var)


class PerPointLatent(nn.Module):
    """One free q(z_n) per training point: an embedding table [N, 2L] holding (μ_n, ρ_n).

    One table rather than two: a step gathers, differentiates and updates one block of rows
    (each table costs ≈ 20 small operations a step in :class:`~.optim.RowAdam`). Initialised
    at the prior mean with variance ``init_var_frac``·γ. Rows absent from a batch get an exactly
    zero gradient; pair with RowAdam (the module does), which moves only the rows that had one.
    """

    def __init__(
        self, n_points: int, latent_dim: int, prior_var: float, init_var_frac: float = 0.5
    ) -> None:
        super().__init__()
        _check_latent(latent_dim, prior_var)
        if n_points <= 0:
            raise ValueError(f"n_points must be positive, got {n_points}")
        if not 0.0 < init_var_frac < 1.0:
            raise ValueError(f"init_var_frac must be in (0, 1), got {init_var_frac!r}")
        self.latent_dim = latent_dim
        self.prior_var = float(prior_var)
        self.table = nn.Embedding(n_points, 2 * latent_dim)
        with torch.no_grad():
            self.means.zero_()
            self.rhos.fill_(math.log(init_var_frac) - math.log1p(-init_var_frac))

    @property
    def means(self) -> Tensor:
        """μ of every point, [N, L] (a view of the table)."""
        return self.table.weight[:, : self.latent_dim]

    @property
    def rhos(self) -> Tensor:
        """ρ of every point, [N, L] (a view of the table): s² = γ·sigmoid(ρ)."""
        return self.table.weight[:, self.latent_dim :]

    def posterior(self, index: Tensor, x: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
        """(μ_n, s_n²) [S, L] each for the rows ``index`` [S] (x, y unused: q(z_n) is free)."""
        mean, rho = self.table(index).split(self.latent_dim, dim=-1)
        return mean, self.prior_var * torch.sigmoid(rho)

    def forward(self, index: Tensor, x: Tensor, y: Tensor, n_samples: int) -> LatentSample:
        """index: [S] rows of the training set (x, y unused: q(z_n) is free)."""
        return draw_posterior(*self.posterior(index, x, y), n_samples, self.prior_var)


class AmortisedLatent(nn.Module):
    """q(z_n) = N(μ_φ(x_n, y_n), s_φ²(x_n, y_n)) from a small ReLU network on [x, y]."""

    def __init__(
        self,
        in_features: int,
        out_features: int,
        latent_dim: int,
        prior_var: float,
        hidden: Sequence[int] = (20,),
    ) -> None:
        super().__init__()
        _check_latent(latent_dim, prior_var)
        if any(h <= 0 for h in hidden):
            raise ValueError(f"inference network hidden sizes must be positive, got {hidden}")
        self.latent_dim = latent_dim
        self.prior_var = float(prior_var)
        sizes = [in_features + out_features, *hidden]
        blocks: list[nn.Module] = []
        for d_in, d_out in zip(sizes[:-1], sizes[1:], strict=True):
            blocks += [nn.Linear(d_in, d_out), nn.ReLU()]
        head = nn.Linear(sizes[-1], 2 * latent_dim)
        nn.init.zeros_(head.weight)  # start exactly at q(z) = N(0, γ/2): near the prior
        nn.init.zeros_(head.bias)
        self.net = nn.Sequential(*blocks, head)

    @property
    def linears(self) -> list[nn.Linear]:
        """The network's affine layers in order (a ReLU follows each but the last, the head)."""
        return [layer for layer in self.net if isinstance(layer, nn.Linear)]

    def posterior(self, index: Tensor, x: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
        """(μ_φ, s_φ²) [S, L] each from x: [S, D_in], y: [S, D_out] — the TARGET enters."""
        out = self.net(torch.cat([x, y], dim=-1))  # [S, 2L]
        mean, rho = out.split(self.latent_dim, dim=-1)
        return mean, self.prior_var * torch.sigmoid(rho)

    def forward(self, index: Tensor, x: Tensor, y: Tensor, n_samples: int) -> LatentSample:
        """x: [S, D_in], y: [S, D_out] — the TARGET enters the inference network."""
        return draw_posterior(*self.posterior(index, x, y), n_samples, self.prior_var)
