"""BNNLV: the Lightning module that trains a BNN+LV (or its baselines) on the black-box α energy.

One ``model_step`` serves training and validation. The models of the ``model`` config group are
this class with different arguments: ``bnn_lv`` (latent input, stochastic weights), ``bnn``
(``latent="none"``), ``mlp`` (``latent="none"``, ``stochastic_layers=[]``: maximum likelihood
with learned Gaussian noise, since the energy then reduces to −Σ log N(y | f(x), σ²)) and
``het_mlp`` (an ``mlp`` with ``noise="heteroscedastic"``: σ(x) from a second head). The network is
model.layers.BayesianMLP, the noise model model.likelihood, the latent posterior model.latent.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from typing import Any, NamedTuple

import lightning as L
import torch
from lightning.pytorch.strategies import SingleDeviceStrategy, Strategy
from torch import Tensor

from bnnlv.data.module import Minibatch
from bnnlv.model.checks import flag, one_of, positive_float, positive_int
from bnnlv.model.choices import LATENT_KINDS, NOISE_KINDS, WEIGHT_SAMPLERS
from bnnlv.model.components import Components, DrawnDynamics, sample_components
from bnnlv.model.energy import (
    bb_alpha_energy,
    bb_alpha_energy_cavity,
    cavity_gaussian,
    check_alpha,
    gaussian_renyi,
)
from bnnlv.model.entropy import NOISE_NODES
from bnnlv.model.fused import FusedStep, fused_step, set_grads
from bnnlv.model.latent import AmortisedLatent, PerPointLatent, log_norm_prior
from bnnlv.model.layers import BayesianMLP
from bnnlv.model.lean_adam import LeanAdam
from bnnlv.model.legacy import upgrade_state_dict
from bnnlv.model.likelihood import HomoscedasticNoise, make_noise
from bnnlv.model.optim import RowAdam
from bnnlv.model.predictive import Prediction, gaussian_log_lik, predict_in_chunks

# Per-point tables from this many rows on get sparse gradients in single-process CPU training: the
# dense gradient's scan costs O(N) a step (measured on one CPU core: 0.38 ms dense vs 0.44 ms
# sparse at N = 560, batch 140; 9.9 ms vs 0.8 ms at N = 10⁶, batch 1,000).
SPARSE_TABLE_ROWS = 10_000
FUSED_PRECISIONS = ("32-true", "64-true")  # where the fused step's gradient is the one applied
VALIDATION_SEED = 1_000_003  # base of validation's own random stream (on_validation_epoch_start)
# Rows per predict chunk when entropies are requested: 3·S·M·L·rows·D ≤ this many floats (64 MiB).
ENTROPY_CHUNK_ELEMENTS = 2**24


def optimiser_updates(trainer: L.Trainer) -> int:
    """Updates made so far. Lightning's ``global_step`` counts every optimiser's steps, and an
    update of BNNLV steps each of its optimisers (two with a per-point latent table) once."""
    return trainer.global_step // max(1, len(trainer.optimizers))


class DivergenceError(RuntimeError):
    """The energy became non-finite during training."""


class StepOutput(NamedTuple):
    energy: Tensor  # []  E/N, the per-point energy estimate
    sq_error: Tensor  # []  Σ over the batch of ||y − mean_k F||²
    noise_std: Tensor  # []  mean σ over the batch's samples, points and outputs


class BNNLV(L.LightningModule):
    """Bayesian neural network with latent input z ~ N(0, γ), trained by minimising E_α / N.

    Args mirror ``configs/model/*.yaml``; ``in_features``, ``out_features``, ``n_train`` and
    ``batch_size`` come from the data. ``latent_prior_var=None`` means γ = in_features.
    ``latent_lr=None`` means lr·N/S for the per-point table (each row is updated once per epoch).
    ``compile=True`` runs the training step through ``torch.compile`` (for GPUs; see ``__init__``).
    ``fused=True`` trains with the hand-written gradient of model.fused where it applies (setup).
    ``noise`` is ``homoscedastic`` (one learned σ per output) or ``heteroscedastic`` (σ(x, z; W)
    from a second head of the network, model.likelihood); ``noise_std_init`` is σ at the start.
    ``noise_lr`` is the Adam step of the homoscedastic log σ². It is kept small on purpose: the
    additive noise σ and the latent path f(x, z) can explain the same spread, and a fast σ takes
    it all before q(z_n) has formed, leaving the latent unused (measured: test NLL 0.27 → 0.23 on
    the tutorial data). A heteroscedastic head learns at ``lr`` with the rest of the network.
    """

    _epoch_sums: Tensor  # a buffer, see __init__

    def __init__(
        self,
        in_features: int,
        out_features: int,
        n_train: int,
        batch_size: int,
        alpha: float = 0.5,
        hidden: Sequence[int] = (50, 50),
        prior_var: float = 1.0,
        posterior_std_init: float = 1e-3,
        stochastic_layers: str | Sequence[int | str] = "all",
        latent: str = "per_point",
        latent_dim: int = 1,
        latent_prior_var: float | None = None,
        latent_hidden: Sequence[int] = (20,),
        latent_init_var_frac: float = 0.5,
        noise_std_init: float = 0.1,
        n_samples_train: int = 10,
        n_samples_test: int = 50,
        n_latent_test: int = 20,
        lr: float = 1e-2,
        latent_lr: float | None = None,
        noise_lr: float = 1e-3,
        predict_chunk: int = 4096,
        weight_sampler: str = "shared",
        compile: bool = False,
        fused: bool = True,
        noise: str = "homoscedastic",
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.automatic_optimization = False
        self.alpha = check_alpha(alpha)
        for name in ("in_features", "out_features", "n_train", "batch_size", "latent_dim"):
            positive_int(name, locals()[name])
        for name in ("n_samples_train", "n_samples_test", "n_latent_test", "predict_chunk"):
            positive_int(name, locals()[name])
        positive_float("lr", lr)
        positive_float("noise_std_init", noise_std_init)
        if not positive_float("latent_init_var_frac", latent_init_var_frac) < 1.0:
            frac = latent_init_var_frac
            raise ValueError(f"latent_init_var_frac must be in (0, 1), got {frac!r}")
        one_of("latent", latent, LATENT_KINDS)
        if isinstance(hidden, int) or not hidden:
            raise ValueError(f"hidden must be a non-empty list of sizes, got {hidden!r}")
        for size in hidden:
            positive_int("hidden size", size)
        self.n_train = n_train
        self.batch_size = min(batch_size, n_train)
        self.n_samples_train = n_samples_train
        self.n_samples_test = n_samples_test
        self.n_latent_test = n_latent_test if latent != "none" else 1
        self.predict_chunk = predict_chunk
        self.weight_sampler = one_of("weight_sampler", weight_sampler, WEIGHT_SAMPLERS)
        flag("compile", compile)
        flag("fused", fused)
        # torch.compile of the training step (sampling, forward, energy), made at the first step:
        # it pays on a GPU, where an eager step is launch-bound; on the CPU compiling costs more
        # than it saves (measured: ~80 s to compile, ±5 % per step at batch 50).
        self._train_step_fn = torch.compile(self.model_step) if compile else self.model_step
        self.lr = lr
        self.latent_dim = latent_dim if latent != "none" else 0
        gamma = float(in_features) if latent_prior_var is None else latent_prior_var
        self.latent_prior_var = positive_float("latent_prior_var", gamma)
        self.noise_lr = positive_float("noise_lr", noise_lr)
        self.latent_lr = (
            lr * n_train / self.batch_size
            if latent_lr is None
            else positive_float("latent_lr", latent_lr)
        )

        self.noise = make_noise(one_of("noise", noise, NOISE_KINDS), out_features, noise_std_init)
        self.network = BayesianMLP(
            in_features + self.latent_dim,
            hidden,
            out_features + self.noise.head_width,
            positive_float("prior_var", prior_var),
            positive_float("posterior_std_init", posterior_std_init),
            stochastic_layers,
        )
        self.latent: PerPointLatent | AmortisedLatent | None
        if latent == "per_point":
            self.latent = PerPointLatent(n_train, latent_dim, gamma, latent_init_var_frac)
        elif latent == "amortised":
            self.latent = AmortisedLatent(
                in_features, out_features, latent_dim, gamma, latent_hidden
            )
        else:
            self.latent = None
        self.register_load_state_dict_pre_hook(upgrade_state_dict)  # older checkpoints
        # Σ over the epoch's batches of (S·E/N, squared error, S·σ) on the device, of S on the host.
        self.register_buffer("_epoch_sums", torch.zeros(3), persistent=False)
        self._epoch_rows = 0
        self._training_rng: tuple[Tensor, Tensor | None] | None = None  # set during validation
        self._resumed_totals: dict[str, Any] | None = None  # see continue_epoch
        self._fused = False  # the hand-written gradient (model.fused) is used; decided in setup
        # Wraps each update (draws, gradient, every optimiser's step, running sums): an update is
        # made whole or not at all. The runner hands in a guard that defers interrupts
        # (bnnlv.runs.interrupts.interrupts_deferred); the model itself knows nothing of signals.
        self.update_guard: Callable[[], AbstractContextManager[object]] = contextlib.nullcontext

    # ----------------------------------------------------------------------------------------
    def model_step(self, x: Tensor, y: Tensor, index: Tensor, n_samples: int) -> StepOutput:
        """Energy per point on a batch: x [S, D_in], y [S, D_out], index [S] into the train set.

        ``weight_sampler="shared"`` uses the factor form (one W_k ~ q per sample k),
        ``"flipout"`` the cavity form, the only one valid for per-example weights (method.md §2).
        """
        if self.weight_sampler == "flipout":
            return self._cavity_step(x, y, index, n_samples, "flipout")
        batch = x.shape[0]
        x_rep = x.expand(n_samples, batch, x.shape[-1])  # [K, S, D_in]
        if self.latent is not None:
            z = self.latent(index, x, y, n_samples)
            inputs = torch.cat([x_rep, z.z], dim=-1)  # [K, S, D_in + L]
            log_ratio_z, log_norm_q_z = z.log_ratio, z.log_norm_q
            log_norm_p_z = log_norm_prior(self.latent_dim, self.latent_prior_var)
        else:
            inputs = x_rep
            log_ratio_z = x.new_zeros(n_samples, batch)
            log_norm_q_z = x.new_zeros(batch)
            log_norm_p_z = 0.0
        out, log_ratio_w, log_norm_q_w = self.network.sample_forward(inputs)  # [K,S,·], [K], []
        f, log_noise_var = self.noise.split(out)  # [K, S, D], [D] or [K, S, D]
        log_lik = gaussian_log_lik(y, f, log_noise_var)  # [K, S]
        energy = bb_alpha_energy(
            log_lik,
            log_ratio_w,
            log_ratio_z,
            log_norm_q_w,
            self.network.log_norm_p(),
            log_norm_q_z,
            log_norm_p_z,
            self.n_train,
            self.alpha,
        )
        return self._step_output(energy, y, f, log_noise_var)

    def _step_output(
        self, energy: Tensor, y: Tensor, f: Tensor, log_noise_var: Tensor
    ) -> StepOutput:
        """E/N and the epoch's figures of a batch y [S, D] with component means f [K, S, D]."""
        sq_error = (y - f.detach().mean(dim=0)).square().sum()
        noise_std = log_noise_var.detach().mul(0.5).exp().mean()
        return StepOutput(energy / self.n_train, sq_error, noise_std)

    def _cavity_step(
        self, x: Tensor, y: Tensor, index: Tensor, n_samples: int, sampler: str
    ) -> StepOutput:
        """model_step in the cavity form: W ~ q̃(W) (power α/N), z ~ q̃_n(z) (power α)."""
        batch = x.shape[0]
        inputs = x.expand(n_samples, batch, x.shape[-1])  # [K, S, D_in]
        renyi_z = x.new_zeros(batch)  # [S]
        if self.latent is not None:
            mean_z, var_z = self.latent.posterior(index, x, y)  # [S, L] each
            gamma = self.latent_prior_var
            cav_mean, cav_var = cavity_gaussian(mean_z, var_z, gamma, self.alpha)
            eps = torch.randn((n_samples, *cav_mean.shape), device=x.device, dtype=x.dtype)
            z = cav_mean + cav_var.sqrt() * eps  # [K, S, L]
            inputs = torch.cat([inputs, z], dim=-1)  # [K, S, D_in + L]
            renyi_z = gaussian_renyi(mean_z, var_z, 0.0, gamma, 1.0 - self.alpha).sum(dim=-1)
        power_w = self.alpha / self.n_train
        out = self.network.cavity_forward(inputs, power_w, sampler)  # [K, S, D + head]
        f, log_noise_var = self.noise.split(out)  # [K, S, D], [D] or [K, S, D]
        log_lik = gaussian_log_lik(y, f, log_noise_var)  # [K, S]
        renyi_w = self.network.renyi_to_prior(1.0 - power_w)
        energy = bb_alpha_energy_cavity(log_lik, renyi_w, renyi_z, self.n_train, self.alpha)
        return self._step_output(energy, y, f, log_noise_var)

    def training_step(self, batch: list[Minibatch], batch_idx: int) -> Tensor | None:
        """One optimiser step per minibatch of the group (see data.module.GroupedBatches); an
        empty group (the minibatches a resumed run had already trained) does nothing."""
        optimizers = self.optimizers()
        optimizers = optimizers if isinstance(optimizers, list) else [optimizers]
        energy = None
        for x, y, index in batch:
            with self.update_guard():
                energy = self._update(optimizers, x, y, index)
        return energy

    def _update(self, optimizers: list[Any], x: Tensor, y: Tensor, index: Tensor) -> Tensor:
        """One update on a minibatch: noise draws, gradient, every optimiser's step, and the
        epoch's running sums; the energy per point."""
        out: StepOutput | FusedStep
        if self._fused:
            log_noise_var = self._homoscedastic_noise().log_var
            out = fused_step(
                self.network, self.latent, log_noise_var, x, y, index,
                self.n_samples_train, self.n_train, self.alpha,
            )  # fmt: skip
            self._check_finite(out.energy)
            set_grads(self.network, self.latent, log_noise_var, index, out)
        else:
            out = self._train_step_fn(x, y, index, self.n_samples_train)
            self._check_finite(out.energy)
            for optimizer in optimizers:
                optimizer.zero_grad(set_to_none=True)
            self.manual_backward(out.energy)
        for optimizer in optimizers:
            optimizer.step()
        rows = x.shape[0]
        figures = [out.energy.detach() * rows, out.sq_error, out.noise_std * rows]
        self._epoch_sums.add_(torch.stack(figures))
        self._epoch_rows += rows
        return out.energy

    def _check_finite(self, energy: Tensor) -> None:
        if not torch.isfinite(energy):
            raise DivergenceError(
                f"non-finite energy {energy.item()} at epoch {self.current_epoch}, "
                f"step {optimiser_updates(self.trainer)}"
            )

    def _homoscedastic_noise(self) -> HomoscedasticNoise:
        """The one σ per output; only called on the fused path."""
        assert isinstance(self.noise, HomoscedasticNoise)
        return self.noise

    def on_train_epoch_start(self) -> None:
        totals, self._resumed_totals = self._resumed_totals, None
        if totals is None:
            self._epoch_sums.zero_()
            self._epoch_rows = 0
        else:
            self._epoch_sums.copy_(totals["sums"])
            self._epoch_rows = int(totals["rows"])

    # Resuming mid-epoch: the row logged at the epoch's end sums over the whole epoch.
    def epoch_totals(self) -> dict[str, Any]:
        """The running sums of the epoch under way (for a checkpoint taken mid-epoch):
        ``sums`` [3] (Σ S·E/N, Σ squared error, Σ S·σ) on the CPU and ``rows`` (Σ S)."""
        return {"sums": self._epoch_sums.detach().cpu().clone(), "rows": self._epoch_rows}

    def continue_epoch(self, totals: dict[str, Any]) -> None:
        """Start the next training epoch from ``totals`` (:meth:`epoch_totals`) instead of zero."""
        self._resumed_totals = totals

    def training_rng(self) -> tuple[Tensor, Tensor | None]:
        """The states of training's random streams (CPU, and CUDA on a GPU), also while
        validation draws from its own (see :meth:`on_validation_epoch_start`)."""
        if self._training_rng is not None:
            return self._training_rng
        cuda = self.device.type == "cuda"
        return torch.get_rng_state(), torch.cuda.get_rng_state(self.device) if cuda else None

    def on_train_epoch_end(self) -> None:
        """One row of training figures per epoch, written to the loggers directly: the energy per
        point, the RMSE of the mean over the K samples and the mean noise σ (standardised units),
        each averaged over the epoch's training points.

        ``self.log`` costs ≈ 1 ms of bookkeeping a call on the CPU (measured: 3 calls were 2.6 ms
        of a 5.7 ms epoch of a tiny model), which a full-batch run pays every epoch. The row is the
        one Lightning would write: columns ``epoch`` and the metrics, at its epoch-end step. In a
        distributed run the sums are added over the processes first (one all-reduce).
        """
        if self._epoch_rows == 0:  # a distributed share too small to train on this epoch
            return
        rows = self._epoch_sums.new_tensor([self._epoch_rows])
        sums = self.trainer.strategy.reduce(torch.cat([self._epoch_sums, rows]), reduce_op="sum")
        energy_sum, sq_error, noise_sum, n_rows = sums.tolist()
        metrics = {
            "train/energy_per_point": energy_sum / n_rows,
            "train/rmse": math.sqrt(sq_error / (n_rows * self.hparams["out_features"])),
            "train/noise_std": noise_sum / n_rows,
            "epoch": self.current_epoch,
        }
        for logger in self.loggers:
            logger.log_metrics(metrics, step=self.last_update())

    def last_update(self) -> int:
        """Index of the last optimiser update, the ``step`` of the log's rows. Lightning's own step
        counts its batches, here groups of minibatches (data.module.GroupedBatches)."""
        return optimiser_updates(self.trainer) - 1

    def validation_step(self, batch: tuple[Tensor, Tensor, Tensor], batch_idx: int) -> None:
        x, y, _ = batch
        pred = self.predict(x, y)
        assert pred.log_density is not None
        self.log("val/nll", -pred.log_density.mean(), batch_size=x.shape[0], sync_dist=True)
        rmse = (pred.moments.mean - y).square().mean().sqrt()
        self.log("val/rmse", rmse, batch_size=x.shape[0], sync_dist=True)

    def on_validation_epoch_start(self) -> None:
        """Validation draws from its own random stream (seeded by the epoch), and training's
        stream is put back afterwards: how often one validates does not change the training."""
        self._training_rng = self.training_rng()
        torch.manual_seed(VALIDATION_SEED + self.current_epoch)  # every device's generator

    def on_validation_epoch_end(self) -> None:
        # The row's step and epoch: Lightning takes a logged "step" (and then adds no "epoch").
        if not self.trainer.sanity_checking:
            # the same on every process; sync_dist only keeps Lightning from warning about it
            self.log("step", float(self.last_update()), sync_dist=True)
            self.log("epoch", float(self.current_epoch), sync_dist=True)
        assert self._training_rng is not None
        cpu_state, cuda_state = self._training_rng
        torch.set_rng_state(cpu_state)
        if cuda_state is not None:
            torch.cuda.set_rng_state(cuda_state, self.device)
        self._training_rng = None

    # ----------------------------------------------------------------------------------------
    @torch.no_grad()
    def components(
        self,
        x: Tensor,
        n_weights: int | None = None,
        n_latent: int | None = None,
        generator: torch.Generator | None = None,
    ) -> Components:
        """The predictive mixture's components at x [B, D_in] (standardised): means and noise
        variances [M, L, B, D] each, for W_m ~ q(W) and z_ml ~ N(0, γ) drawn from ``generator``
        (None: torch's global one); M, L default to ``n_samples_test``, ``n_latent_test``."""
        f, log_noise_var = self._sample(x, n_weights, n_latent, generator)
        return Components(f, log_noise_var.exp().expand_as(f))

    def draw_dynamics(
        self, n_weights: int, generator: torch.Generator | None = None
    ) -> DrawnDynamics:
        """K = ``n_weights`` weight draws held fixed: a differentiable map (x [K, B, D_in],
        z [K, B, L]) → (mean, noise variance) [K, B, D] each, gradients to x only
        (model.components.DrawnDynamics)."""
        return DrawnDynamics(self.network, self.noise, self.latent_dim, n_weights, generator)

    def _sample(
        self, x: Tensor, n_weights: int | None, n_latent: int | None,
        generator: torch.Generator | None,
    ) -> tuple[Tensor, Tensor]:  # fmt: skip
        """(component means [M, L, B, D], noise log σ² [D] or [M, L, B, D]) at x [B, D_in]."""
        return sample_components(
            self.network, self.noise, self.latent_dim, self.latent_prior_var, x,
            n_weights or self.n_samples_test, n_latent or self.n_latent_test, generator,
        )  # fmt: skip

    @torch.no_grad()
    def predict(
        self,
        x: Tensor,
        y: Tensor | None = None,
        n_weights: int | None = None,
        n_latent: int | None = None,
        entropy_draws: int = 0,
        generator: torch.Generator | None = None,
        quantile_probs: Sequence[float] = (),
    ) -> Prediction:
        """Mixture predictive at x [B, D_in] (standardised), in chunks of ``predict_chunk`` rows.

        ``entropy_draws`` > 0 adds the entropy decomposition (standardised units), estimated
        from the same components as the moments, with smaller chunks to bound memory. Every
        draw comes from ``generator`` (None: torch's global generator). ``quantile_probs`` adds
        the mixture's quantiles at those levels (standardised units).
        """
        n_weights = n_weights or self.n_samples_test
        n_latent = n_latent or self.n_latent_test
        rows = self.predict_chunk
        if entropy_draws:
            per_row = entropy_draws * len(NOISE_NODES) * n_weights * n_latent
            per_row *= self.hparams["out_features"]
            rows = max(1, min(rows, ENTROPY_CHUNK_ELEMENTS // per_row))
        return predict_in_chunks(
            lambda rows_x: self._sample(rows_x, n_weights, n_latent, generator),
            x, y, rows, entropy_draws, generator, quantile_probs,
        )  # fmt: skip

    # ----------------------------------------------------------------------------------------
    def setup(self, stage: str) -> None:
        """Choose the training path for this trainer (see :meth:`fused_applies`). A large
        per-point table gets sparse gradients when training in one CPU process (see
        model.optim.RowAdam): where it was measured. DDP needs dense ones (all-reduce); the GPU
        figures and torch.compile were measured with the dense path."""
        if stage != "fit":
            return
        strategy = self.trainer.strategy
        self._fused = self.fused_applies(strategy, str(self.trainer.precision))
        if isinstance(self.latent, PerPointLatent):
            one_cpu = (
                isinstance(strategy, SingleDeviceStrategy) and strategy.root_device.type == "cpu"
            )
            large = self.latent.table.num_embeddings >= SPARSE_TABLE_ROWS
            self.latent.table.sparse = one_cpu and large and not self.hparams["compile"]

    def fused_applies(self, strategy: Strategy, precision: str) -> bool:
        """Whether training uses the hand-written gradient (model.fused): ``fused`` is on and it
        covers the model (the shared weight sampler, any latent, no torch.compile),
        and training is one process (DDP all-reduces gradients inside autograd's backward) at
        full precision (a precision plugin acts on autograd's backward). A heteroscedastic noise
        head trains through autograd."""
        hparams = self.hparams
        return bool(
            hparams.get("fused", True)
            and isinstance(strategy, SingleDeviceStrategy)
            and precision in FUSED_PRECISIONS
            and self.weight_sampler == "shared"
            and isinstance(self.noise, HomoscedasticNoise)
            and not hparams["compile"]
        )

    def configure_optimizers(self) -> list[torch.optim.Optimizer]:
        dense = [p for name, p in self.named_parameters() if name.startswith("network.")]
        groups: list[dict[str, Any]] = [{"params": dense}]
        noise = list(self.noise.parameters())  # a heteroscedastic head is part of the network
        if noise:
            groups.append({"params": noise, "lr": self.noise_lr})
        # torch's fused Adam (one kernel for every parameter; its per-tensor loop was ≈ 0.3 ms of a
        # ≈ 3 ms step of the default model), stepped without Adam.step's set-up (model.lean_adam)
        optimizers: list[torch.optim.Optimizer] = [LeanAdam(groups, lr=self.lr)]
        if isinstance(self.latent, PerPointLatent):
            optimizers.append(RowAdam(list(self.latent.parameters()), lr=self.latent_lr))
        elif self.latent is not None:
            optimizers[0].add_param_group({"params": list(self.latent.parameters())})
        return optimizers
