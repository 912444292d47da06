"""The latent-variable posterior q(z_n) = N(μ_n, s_n²) and the prior N(0, γ I_L).

Two parameterisations (method.md §1): a free Gaussian per training point, stored as
an embedding table so that only the rows in a minibatch receive gradients, or an inference network
on (x_n, y_n). Variances are s² = γ·sigmoid(ρ) ≤ γ. Both return a :class:`LatentSample`.
Test-time z always comes from the prior, :func:`sample_prior`: a new point has no y.

Replicas first (model.replicas): R tables of N rows stacked as one [R·N, 2L] table (replica r's
row n is r·N + n), or R inference networks with weights [R, …]; batches are [R, S, ·].
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import NamedTuple

import torch
from torch import Tensor, nn

from bnnlv.model.choices import LATENT_KINDS
from bnnlv.model.energy import LOG_2PI, centred_log_ratio
from bnnlv.model.replicas import Generators, randn, uniform


class LatentSample(NamedTuple):
    """K draws of z for a batch of each replica, with the factor terms the energy needs at those
    same draws, and the noise and variance behind z = μ + √(s²) ε (for a hand-written backward)."""

    z: Tensor  # [R, K, S, L]
    log_ratio: Tensor  # [R, K, S]   centred log f_n(z_kn)
    log_norm_q: Tensor  # [R, S]      centred log Z_q(z_n)
    noise: Tensor  # [R, K, S, L]  ε
    var: Tensor  # [R, S, L]  s²


def _check_latent(latent_dim: int, prior_var: float) -> None:
    if latent_dim <= 0:
        raise ValueError(f"latent_dim must be a positive integer, got {latent_dim!r}")
    if prior_var <= 0:
        raise ValueError(f"latent prior_var (γ) must be > 0, got {prior_var!r}")


def draw_posterior(
    mean: Tensor, var: Tensor, n_samples: int, prior_var: float,
    generators: Generators | None = None,
) -> LatentSample:  # fmt: skip
    """K draws z_kn = μ_n + s_n ε_kn of q(z_n) for mean, var [R, S, L] → LatentSample; replica
    r's ε from ``generators[r]`` (None: torch's global generator)."""
    replicas = mean.shape[0]
    eps = randn(generators, replicas, (n_samples, *mean.shape[1:]), mean)  # [R, K, S, L]
    z = mean.unsqueeze(1) + var.sqrt().unsqueeze(1) * eps  # [R, K, S, L]
    log_ratio = centred_log_ratio(z, eps, prior_var, sample_dims=3)  # per point: [R, K, S]
    log_norm_q = 0.5 * (LOG_2PI + var.log()).sum(dim=-1)  # [R, S]
    return LatentSample(z, log_ratio, log_norm_q, eps, var)


def log_norm_prior(latent_dim: int, prior_var: float) -> float:
    """log Z_p(z) = L · ½ log(2πγ)."""
    return latent_dim * 0.5 * (LOG_2PI + math.log(prior_var))


def sample_prior(
    shape: Sequence[int], latent_dim: int, prior_var: float, like: Tensor,
    generator: torch.Generator | None = None,
) -> Tensor:  # fmt: skip
    """z ~ N(0, γ I_L) of shape [*shape, L], on like's device and dtype, drawn from
    ``generator`` (None: torch's global generator)."""
    eps = torch.randn(
        (*shape, latent_dim), device=like.device, dtype=like.dtype, generator=generator
    )
    return eps * math.sqrt(prior_var)


class Posterior(nn.Module):
    """What both parameterisations share: K draws of q(z_n) from :meth:`posterior`."""

    prior_var: float

    def posterior(self, index: Tensor, x: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
        raise NotImplementedError

    def forward(
        self, index: Tensor, x: Tensor, y: Tensor, n_samples: int,
        generators: Generators | None = None,
    ) -> LatentSample:  # fmt: skip
        """K draws for the points ``index`` [R, S] of each replica's training set, x [R, S, D_in],
        y [R, S, D_out] (a table uses index, an inference network x and the TARGET y)."""
        mean, var = self.posterior(index, x, y)
        return draw_posterior(mean, var, n_samples, self.prior_var, generators)


class PerPointLatent(Posterior):
    """One free q(z_n) per training point and replica: an embedding table [R·N, 2L] of (μ_n, ρ_n).

    One table rather than two: a step gathers, differentiates and updates one block of rows
    (each table costs ≈ 20 small operations a step in :class:`~.optim.RowAdam`). Initialised
    at the prior mean with variance ``init_var_frac``·γ. Rows absent from a batch get an exactly
    zero gradient; pair with RowAdam (the module does), which moves only the rows that had one.
    """

    offsets: Tensor  # a buffer, see __init__

    def __init__(
        self, n_points: int, latent_dim: int, prior_var: float, init_var_frac: float = 0.5,
        replicas: int = 1,
    ) -> None:  # fmt: skip
        super().__init__()
        _check_latent(latent_dim, prior_var)
        if n_points <= 0:
            raise ValueError(f"n_points must be positive, got {n_points}")
        if not 0.0 < init_var_frac < 1.0:
            raise ValueError(f"init_var_frac must be in (0, 1), got {init_var_frac!r}")
        self.latent_dim = latent_dim
        self.prior_var = float(prior_var)
        self.n_points = n_points
        self.table = nn.Embedding(replicas * n_points, 2 * latent_dim)
        offsets = torch.arange(replicas)[:, None] * n_points  # [R, 1]: replica r's first row
        self.register_buffer("offsets", offsets, persistent=False)
        with torch.no_grad():
            self.means.zero_()
            self.rhos.fill_(math.log(init_var_frac) - math.log1p(-init_var_frac))

    @property
    def means(self) -> Tensor:
        """μ of every point of every replica, [R·N, L] (a view of the table)."""
        return self.table.weight[:, : self.latent_dim]

    @property
    def rhos(self) -> Tensor:
        """ρ of every point of every replica, [R·N, L] (a view of the table): s² = γ·sigmoid(ρ)."""
        return self.table.weight[:, self.latent_dim :]

    def rows(self, index: Tensor) -> Tensor:
        """The table rows [R, S] of the points ``index`` [R, S] (replica r's row n is r·N + n)."""
        return index + self.offsets

    def posterior(self, index: Tensor, x: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
        """(μ_n, s_n²) [R, S, L] each for the points ``index`` [R, S] (x, y unused)."""
        mean, rho = self.table(self.rows(index)).split(self.latent_dim, dim=-1)
        return mean, self.prior_var * torch.sigmoid(rho)


class AmortisedLatent(Posterior):
    """q(z_n) = N(μ_φ(x_n, y_n), s_φ²(x_n, y_n)) from a small ReLU network on [x, y], per replica.

    Layer j is u = h W_j + b_j with W_j [R, d_in, d_out], b_j [R, d_out], initialised as torch's
    ``nn.Linear`` is (uniform within ±1/√d_in, replica r's from ``generators[r]``) except the
    head, which starts at zero: q(z) = N(0, γ/2), near the prior.
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        latent_dim: int,
        prior_var: float,
        hidden: Sequence[int] = (20,),
        generators: Generators | None = None,
        replicas: int = 1,
    ) -> None:
        super().__init__()
        _check_latent(latent_dim, prior_var)
        if any(h <= 0 for h in hidden):
            raise ValueError(f"inference network hidden sizes must be positive, got {hidden}")
        self.latent_dim = latent_dim
        self.prior_var = float(prior_var)
        replicas = len(generators) if generators is not None else replicas
        sizes = [in_features + out_features, *hidden, 2 * latent_dim]
        self.weights, self.biases = nn.ParameterList(), nn.ParameterList()
        like = torch.empty(())
        for d_in, d_out in zip(sizes[:-2], sizes[1:-1], strict=True):
            bound = 1.0 / math.sqrt(d_in)
            self.weights.append(uniform(generators, replicas, (d_in, d_out), like, bound))
            self.biases.append(uniform(generators, replicas, (d_out,), like, bound))
        self.weights.append(torch.zeros(replicas, sizes[-2], sizes[-1]))  # the head
        self.biases.append(torch.zeros(replicas, sizes[-1]))

    @property
    def linears(self) -> list[tuple[Tensor, Tensor]]:
        """(W [R, d_in, d_out], b [R, d_out]) of each layer in order (a ReLU follows each but
        the last, the head). Read from the lists' own dicts: iterating a ParameterList looks up
        one item at a time through Module.__getattr__ (≈ 60 µs for these four, measured on a
        loaded CPU core, three times an update)."""
        weights, biases = self.weights._parameters.values(), self.biases._parameters.values()
        return list(zip(weights, biases, strict=True))  # type: ignore[arg-type]

    def posterior(self, index: Tensor, x: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
        """(μ_φ, s_φ²) [R, S, L] each from x: [R, S, D_in], y: [R, S, D_out] — the TARGET
        enters."""
        h = torch.cat([x, y], dim=-1)  # [R, S, D_in + D_out]
        linears = self.linears
        for j, (weight, bias) in enumerate(linears):
            h = torch.baddbmm(bias.unsqueeze(1), h, weight)  # [R, S, d_out]
            if j < len(linears) - 1:
                h = torch.relu(h)
        mean, rho = h.split(self.latent_dim, dim=-1)
        return mean, self.prior_var * torch.sigmoid(rho)


def make_latent(
    kind: str, in_features: int, out_features: int, n_train: int, latent_dim: int,
    prior_var: float, init_var_frac: float, hidden: Sequence[int], generators: Generators,
) -> PerPointLatent | AmortisedLatent | None:  # fmt: skip
    """The latent posterior ``kind`` (one of :data:`LATENT_KINDS`) of one replica per generator;
    None for ``"none"``."""
    if kind == "per_point":
        return PerPointLatent(n_train, latent_dim, prior_var, init_var_frac, len(generators))
    if kind == "amortised":
        return AmortisedLatent(in_features, out_features, latent_dim, prior_var, hidden, generators)
    if kind == "none":
        return None
    raise ValueError(f"latent must be one of {list(LATENT_KINDS)}, got {kind!r}")
