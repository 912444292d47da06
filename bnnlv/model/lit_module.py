"""BNNLV: the Lightning module that trains a BNN+LV (or its baselines) on the black-box α energy.

One ``model_step`` serves training and validation. The models of the ``model`` config group are
this class with different arguments: ``bnn_lv`` (latent input, stochastic weights), ``bnn``
(``latent="none"``), ``mlp`` (``latent="none"``, ``stochastic_layers=[]``: maximum likelihood
with learned Gaussian noise, since the energy then reduces to −Σ log N(y | f(x), σ²)),
``het_mlp`` (an ``mlp`` with ``noise="heteroscedastic"``: σ(x) from a second head) and
``ensemble`` (``members`` het_mlps whose predictive is mixed). The network is
model.layers.BayesianMLP, the noise model model.likelihood, the latent posterior model.latent.

Every model is R replicas on one leading axis (model.replicas): ``seeds`` holds one seed per
replica, and replicas come in runs of ``members``. One run of one network is R = 1.
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
from bnnlv.model.checks import check_arguments, positive_float
from bnnlv.model.components import Components, DrawnDynamics, Predictor
from bnnlv.model.divergence import Divergences
from bnnlv.model.energy import (
    bb_alpha_energy,
    bb_alpha_energy_cavity,
    cavity_gaussian,
    check_alpha,
    gaussian_renyi,
)
from bnnlv.model.figures import EpochFigures, write_rows
from bnnlv.model.fused import FusedStep, fused_step, set_grads
from bnnlv.model.latent import PerPointLatent, log_norm_prior, make_latent
from bnnlv.model.layers import BayesianMLP
from bnnlv.model.legacy import upgrade_optimiser_states, upgrade_state_dict
from bnnlv.model.likelihood import make_noise
from bnnlv.model.optim import model_optimisers, optimiser_parameters
from bnnlv.model.predictive import Prediction, gaussian_log_lik
from bnnlv.model.replicas import randn, seeded, split_state

# Per-point tables from this many rows on get sparse gradients in single-process CPU training: the
# dense gradient's scan costs O(N) a step (measured on one CPU core: 0.38 ms dense vs 0.44 ms
# sparse at N = 560, batch 140; 9.9 ms vs 0.8 ms at N = 10⁶, batch 1,000).
SPARSE_TABLE_ROWS = 10_000
FUSED_PRECISIONS = ("32-true", "64-true")  # where the fused step's gradient is the one applied
VALIDATION_SEED = 1_000_003  # validation's own random stream: this + the epoch


def optimiser_updates(trainer: L.Trainer) -> int:
    """Updates made so far. Lightning's ``global_step`` counts every optimiser's steps, and an
    update of BNNLV steps each of its optimisers (two with a per-point latent table) once."""
    return trainer.global_step // max(1, len(trainer.optimizers))


class StepOutput(NamedTuple):
    energy: Tensor  # [R]  E/N, each replica's per-point energy estimate
    sq_error: Tensor  # [R]  Σ over the batch of ||y − mean_k F||²
    noise_std: Tensor  # [R]  mean σ over the batch's samples, points and outputs


class BNNLV(L.LightningModule):
    """Bayesian neural network with latent input z ~ N(0, γ), trained by minimising E_α / N.

    Args mirror ``configs/model/*.yaml``; ``in_features``, ``out_features``, ``n_train`` and
    ``batch_size`` come from the data, ``seeds`` (one per replica) and ``members`` from the run.
    ``latent_prior_var=None`` means γ = in_features. ``latent_lr=None`` means lr·N/S for the
    per-point table (each row is updated once per epoch). ``compile=True`` runs the training step
    through ``torch.compile`` (for GPUs: it pays where an eager step is launch-bound; on the CPU
    compiling cost ~80 s and saved ±5 % a step at batch 50). ``fused=True`` trains with the
    hand-written gradient of model.fused where it applies (setup). ``noise`` is ``homoscedastic``
    (one learned σ per output) or ``heteroscedastic`` (σ(x, z; W) from a second head of the
    network, model.likelihood); ``noise_std_init`` is σ at the start. ``noise_lr`` is the Adam
    step of the homoscedastic log σ². It is kept small on purpose: the additive noise σ and the
    latent path f(x, z) can explain the same spread, and a fast σ takes it all before q(z_n) has
    formed, leaving the latent unused (measured: test NLL 0.27 → 0.23 on the tutorial data). A
    heteroscedastic head learns at ``lr`` with the rest of the network.
    """

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
        seeds: Sequence[int] = (0,),
        members: int = 1,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.automatic_optimization = False
        check_arguments(locals())
        self.alpha = check_alpha(alpha)
        self.replicas, self.members = len(seeds), members
        self.runs = self.replicas // members
        self.n_train = n_train
        self.n_samples_train = n_samples_train
        n_latent_test = n_latent_test if latent != "none" else 1
        self.weight_sampler = weight_sampler
        self._train_step_fn = torch.compile(self.model_step) if compile else self.model_step
        self.lr = lr
        self.latent_dim = latent_dim if latent != "none" else 0
        gamma = float(in_features) if latent_prior_var is None else latent_prior_var
        self.latent_prior_var = positive_float("latent_prior_var", gamma)
        self.noise_lr = noise_lr
        self.latent_lr = lr * n_train / min(batch_size, n_train) if latent_lr is None else latent_lr
        # Replica r's random stream: its initial weights here, then every training draw.
        self.generators = seeded(seeds)
        self.noise = make_noise(noise, out_features, noise_std_init, self.replicas)
        self.network = BayesianMLP(
            in_features + self.latent_dim, hidden, out_features + self.noise.head_width,
            prior_var, posterior_std_init, stochastic_layers, self.generators,
        )  # fmt: skip
        self.latent = make_latent(
            latent, in_features, out_features, n_train, latent_dim, gamma,
            latent_init_var_frac, latent_hidden, self.generators,
        )  # fmt: skip
        self.predictor = Predictor(
            self.network, self.noise, self.latent_dim, gamma, members, n_samples_test,
            n_latent_test, predict_chunk,
        )  # fmt: skip
        self.register_load_state_dict_pre_hook(upgrade_state_dict)  # older checkpoints
        self.figures = EpochFigures(self.replicas, members, out_features)  # the log rows' sums
        self._val_generators: list[torch.Generator] = []
        self.diverged = Divergences(self.runs, members)  # model.divergence
        self._fused = False  # the hand-written gradient (model.fused) is used; decided in setup
        # Wraps each update (draws, gradient, every optimiser's step, running sums): an update is
        # made whole or not at all. The runner hands in a guard that defers interrupts
        # (bnnlv.runs.interrupts.interrupts_deferred); the model itself knows nothing of signals.
        self.update_guard: Callable[[], AbstractContextManager[object]] = contextlib.nullcontext

    # ----------------------------------------------------------------------------------------
    def model_step(self, x: Tensor, y: Tensor, index: Tensor, n_samples: int) -> StepOutput:
        """Each replica's energy per point on its batch: x [R, S, D_in], y [R, S, D_out], index
        [R, S] into its training set; draws z then W from the replicas' generators.

        ``weight_sampler="shared"`` uses the factor form (one W_k ~ q per sample k),
        ``"flipout"`` the cavity form, the only one valid for per-example weights (method.md §2).
        """
        if self.weight_sampler == "flipout":
            return self._cavity_step(x, y, index, n_samples, "flipout")
        replicas, batch, d_in = x.shape
        inputs = x.unsqueeze(1).expand(replicas, n_samples, batch, d_in)  # [R, K, S, D_in]
        log_ratio_z, log_norm_q_z = (
            x.new_zeros(replicas, n_samples, batch),
            x.new_zeros(replicas, batch),
        )
        log_norm_p_z = 0.0
        if self.latent is not None:
            z = self.latent(index, x, y, n_samples, self.generators)
            inputs = torch.cat([inputs, z.z], dim=-1)  # [R, K, S, D_in + L]
            log_ratio_z, log_norm_q_z = z.log_ratio, z.log_norm_q
            log_norm_p_z = log_norm_prior(self.latent_dim, self.latent_prior_var)
        out, log_ratio_w, log_norm_q_w = self.network.sample_forward(inputs, self.generators)
        f, log_noise_var = self.noise.split(out)  # [R, K, S, D], broadcastable to it
        log_lik = gaussian_log_lik(y.unsqueeze(1), f, log_noise_var)  # [R, K, S]
        energy = bb_alpha_energy(
            log_lik, log_ratio_w, log_ratio_z, log_norm_q_w, self.network.log_norm_p(),
            log_norm_q_z, log_norm_p_z, self.n_train, self.alpha,
        )  # fmt: skip
        return self._step_output(energy, y, f, log_noise_var)

    def _step_output(
        self, energy: Tensor, y: Tensor, f: Tensor, log_noise_var: Tensor
    ) -> StepOutput:
        """E/N and the epoch's figures of batches y [R, S, D], component means f [R, K, S, D]."""
        sq_error = (y - f.detach().mean(dim=1)).square().sum((1, 2))  # [R]
        noise_std = log_noise_var.detach().mul(0.5).exp_().mean((1, 2, 3))  # [R], broadcast too
        return StepOutput(energy / self.n_train, sq_error, noise_std)

    def _cavity_step(
        self, x: Tensor, y: Tensor, index: Tensor, n_samples: int, sampler: str
    ) -> StepOutput:
        """model_step in the cavity form: W ~ q̃(W) (power α/N), z ~ q̃_n(z) (power α)."""
        replicas, batch, d_in = x.shape
        inputs = x.unsqueeze(1).expand(replicas, n_samples, batch, d_in)  # [R, K, S, D_in]
        renyi_z = x.new_zeros(replicas, batch)  # [R, S]
        if self.latent is not None:
            mean_z, var_z = self.latent.posterior(index, x, y)  # [R, S, L] each
            gamma = self.latent_prior_var
            cav_mean, cav_var = cavity_gaussian(mean_z, var_z, gamma, self.alpha)
            eps = randn(self.generators, replicas, (n_samples, *cav_mean.shape[1:]), x)
            z = cav_mean.unsqueeze(1) + cav_var.sqrt().unsqueeze(1) * eps  # [R, K, S, L]
            inputs = torch.cat([inputs, z], dim=-1)  # [R, K, S, D_in + L]
            renyi_z = gaussian_renyi(mean_z, var_z, 0.0, gamma, 1.0 - self.alpha).sum(dim=-1)
        power_w = self.alpha / self.n_train
        out = self.network.cavity_forward(inputs, power_w, sampler, self.generators)
        f, log_noise_var = self.noise.split(out)  # [R, K, S, D], broadcastable to it
        log_lik = gaussian_log_lik(y.unsqueeze(1), f, log_noise_var)  # [R, K, S]
        renyi_w = self.network.renyi_to_prior(1.0 - power_w)  # [R]
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
        """One update on the replicas' minibatch x [R, S, D_in], y [R, S, D_out], index [R, S]:
        noise draws, gradient, every optimiser's step, and the epoch's running sums; the
        replicas' summed energy per point. The energies are summed for the backward, so each
        replica gets its own gradient."""
        out: StepOutput | FusedStep
        if self._fused:
            out = fused_step(
                self.network, self.latent, self.noise, x, y, index,
                self.n_samples_train, self.n_train, self.alpha, self.generators,
            )  # fmt: skip
            self._check_finite(out.energy)
            set_grads(self.network, self.latent, self.noise, index, out)
        else:
            out = self._train_step_fn(x, y, index, self.n_samples_train)
            self._check_finite(out.energy)
            for optimizer in optimizers:
                optimizer.zero_grad(set_to_none=True)
            self.manual_backward(out.energy.sum())
        for optimizer in optimizers:
            optimizer.step()
        self.figures.add_training(out.energy, out.sq_error, out.noise_std, x.shape[1])
        return out.energy.detach().sum()

    def _check_finite(self, energy: Tensor) -> None:
        """Record the replicas whose energy [R] is not finite (model.divergence)."""
        if not all(map(math.isfinite, energy.tolist())):  # one copy to the host, no kernels
            self.diverged.record(energy, self.current_epoch, optimiser_updates(self.trainer))

    def on_train_epoch_start(self) -> None:
        self.figures.start_epoch()

    def epoch_totals(self) -> dict[str, Any]:
        """The running sums of the epoch under way (for a checkpoint taken mid-epoch), so that
        the row logged at a resumed epoch's end sums over the whole epoch (model.figures)."""
        return self.figures.totals()

    def continue_epoch(self, totals: dict[str, Any]) -> None:
        """Start the next training epoch from ``totals`` (:meth:`epoch_totals`) instead of zero."""
        self.figures.continue_epoch(totals)

    def on_train_epoch_end(self) -> None:
        """One row of training figures per run and epoch (model.figures)."""
        rows = self.figures.training_rows(self._reduce)
        write_rows(self.loggers, rows, self.last_update(), self.current_epoch)

    def _reduce(self, sums: Tensor) -> Tensor:
        return self.trainer.strategy.reduce(sums, reduce_op="sum")

    def last_update(self) -> int:
        """Index of the last optimiser update, the ``step`` of the log's rows. Lightning's own step
        counts its batches, here groups of minibatches (data.module.GroupedBatches)."""
        return optimiser_updates(self.trainer) - 1

    def on_validation_epoch_start(self) -> None:
        """Validation draws from its own random streams, one per run seeded by the epoch: how
        often one validates does not change the training, nor does grouping runs."""
        self.figures.start_validation()
        seeds = [VALIDATION_SEED + self.current_epoch] * self.runs
        self._val_generators = seeded(seeds, self.figures.val_sums.device)

    def validation_step(self, batch: tuple[Tensor, Tensor, Tensor], batch_idx: int) -> None:
        """Each run's validation points: x [G, B, D_in], y [G, B, D_out]."""
        x, y, _ = batch
        preds = self.predictor.predict_runs(x, y, generators=self._val_generators)
        nll = [-pred.log_density.sum() for pred in preds if pred.log_density is not None]
        means = torch.stack([pred.moments.mean for pred in preds])  # [G, B, D_out]
        sq_error = (means - y).square().sum((1, 2))  # [G]
        self.figures.add_validation(torch.stack(nll), sq_error, x.shape[1])

    def on_validation_epoch_end(self) -> None:
        """One row of validation figures per run (model.figures), and their mean over the runs
        as ``val/nll`` for Lightning's callbacks and progress bar."""
        rows = self.figures.validation_rows(self._reduce)
        self.log("val/nll", sum(row["val/nll"] for row in rows) / len(rows), logger=False)
        if not self.trainer.sanity_checking:
            write_rows(self.loggers, rows, self.last_update(), self.current_epoch)

    # ----------------------------------------------------------------------------------------
    def components(
        self, x: Tensor, n_weights: int | None = None, n_latent: int | None = None,
        generator: torch.Generator | None = None,
    ) -> Components:  # fmt: skip
        """The predictive mixture's components at x [B, D_in] (standardised): means and noise
        variances [M·n_w, L, B, D] each (M members, one but for an ensemble), for W ~ q(W) and
        z ~ N(0, γ) drawn from ``generator`` (None: torch's global one); n_w and L default to
        ``n_samples_test`` and ``n_latent_test``. A model of one run (:meth:`split_runs`)."""
        return self.predictor.components(x, n_weights, n_latent, generator)

    def draw_dynamics(
        self, n_weights: int, generator: torch.Generator | None = None
    ) -> DrawnDynamics:
        """K = M·``n_weights`` weight draws held fixed: a differentiable map (x [K, B, D_in],
        z [K, B, L]) → (mean, noise variance) [K, B, D] each, gradients to x only
        (model.components.DrawnDynamics). A model of one run (:meth:`split_runs`)."""
        return self.predictor.draw_dynamics(n_weights, generator)

    def predict(
        self, x: Tensor, y: Tensor | None = None, n_weights: int | None = None,
        n_latent: int | None = None, entropy_draws: int = 0,
        generator: torch.Generator | None = None, quantile_probs: Sequence[float] = (),
    ) -> Prediction:  # fmt: skip
        """Mixture predictive at x [B, D_in] (standardised), in chunks of ``predict_chunk`` rows:
        moments, the log density at y, with ``entropy_draws`` > 0 the entropy decomposition and
        the mixture's quantiles at ``quantile_probs`` (standardised units), every draw from
        ``generator`` (None: torch's global one). A model of one run (:meth:`split_runs`)."""
        return self.predictor.predict(
            x, y, n_weights, n_latent, entropy_draws, generator, quantile_probs
        )

    def split_runs(self) -> list[BNNLV]:
        """The model's runs as models of one run each, on the CPU: run g's replicas' slices of
        every parameter, and their generators' states (model.replicas.split_state)."""
        seeds = list(self.hparams["seeds"])
        states = split_state({k: v.cpu() for k, v in self.state_dict().items()}, self.runs)
        models = []
        for g, state in enumerate(states):
            run = slice(g * self.members, (g + 1) * self.members)
            model = BNNLV(**(dict(self.hparams) | {"seeds": seeds[run]}))
            model.load_state_dict(state)
            for mine, theirs in zip(model.generators, self.generators[run], strict=True):
                mine.set_state(theirs.get_state())
            models.append(model)
        return models

    # ----------------------------------------------------------------------------------------
    def setup(self, stage: str) -> None:
        """Choose the training path for this trainer (see :meth:`fused_applies`) and put the
        replicas' generators on its device. A large per-point table gets sparse gradients when
        training in one CPU process (see model.optim.RowAdam): where it was measured. DDP needs
        dense ones (all-reduce); the GPU figures and torch.compile were measured with the dense
        path."""
        if stage != "fit":
            return
        strategy = self.trainer.strategy
        self._fused = self.fused_applies(strategy, str(self.trainer.precision))
        device = strategy.root_device
        if device.type != "cpu":  # a device's own streams, seeded as the CPU's
            self.generators = seeded(self.hparams["seeds"], device)
        if isinstance(self.latent, PerPointLatent):
            one_cpu = isinstance(strategy, SingleDeviceStrategy) and device.type == "cpu"
            large = self.latent.table.num_embeddings >= SPARSE_TABLE_ROWS
            self.latent.table.sparse = one_cpu and large and not self.hparams["compile"]

    def fused_applies(self, strategy: Strategy, precision: str) -> bool:
        """Whether training uses the hand-written gradient (model.fused): ``fused`` is on and it
        covers the model (the shared weight sampler, any latent and noise, no torch.compile),
        and training is one process (DDP all-reduces gradients inside autograd's backward) at
        full precision (a precision plugin acts on autograd's backward)."""
        hparams = self.hparams
        return bool(
            hparams.get("fused", True)
            and isinstance(strategy, SingleDeviceStrategy)
            and precision in FUSED_PRECISIONS
            and self.weight_sampler == "shared"
            and not hparams["compile"]
        )

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """An older checkpoint's optimiser states get the replica axis (model.legacy)."""
        per_point = isinstance(self.latent, PerPointLatent)
        parameters = optimiser_parameters(self.network, self.latent, self.noise, per_point)
        upgrade_optimiser_states(checkpoint, parameters)

    def configure_optimizers(self) -> list[torch.optim.Optimizer]:
        return model_optimisers(
            self.network, self.latent, self.noise, self.lr, self.noise_lr, self.latent_lr,
            isinstance(self.latent, PerPointLatent),
        )  # fmt: skip
