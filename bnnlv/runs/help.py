"""``bnnlv COMMAND --help``: what a command takes, every config key explained in one line.

Hydra's own ``--help`` lists every config group of the configs folder (``model``, ``trainer`` and
``launcher`` for ``evaluate`` too, which takes none of them) and prints the config without saying
what a key means. :func:`command_help` composes the command's config with the overrides given
beside ``--help`` and prints the usage, the config groups the command takes (its defaults list)
with their options, and each key with its value and its line from :data:`KEY_HELP`, the one table
of key descriptions (tests/runs/test_help.py checks that every key of every config has one).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

GROUP_HELP = {
    "model": "bnn_lv: Bayesian weights and a latent input; bnn: no latent; mlp, het_mlp: "
    "deterministic; ensemble: het_mlps mixed",
    "data": "the data set: the toy problems, wet_chicken, uci (data.name=...), csv (your file)",
    "prior": "the prior variances of the weights and the latent input",
    "trainer": "Lightning's trainer: cpu, gpu, ddp (one run on several devices)",
    "experiment": "a preset that sets several keys at once",
    "hparams_search": "a sweep preset: optuna (TPE over alpha, prior.weight_var, model.lr)",
    "launcher": "where the jobs of a sweep run: joblib (local processes), slurm, submitit_local, "
    "replicas (seeds in one process)",
    "policy": "the policy search (bnnlv policy): its network, roll-outs, risk and evaluation",
    "active": "the active-learning loop (bnnlv active): acquisition, rounds, batch, retraining",
}

_DATA_HELP = {
    "data.batch_size": "training minibatch size (at most the training rows)",
    "data.n_points": "points generated, then split into training / validation / test",
    "data.noise_seed": "seed of the generated data's noise",
    "data.split_seed": "seed of the split into training / validation / test rows",
    "data.val_frac": "fraction of the rows for validation",
    "data.test_frac": "fraction of the rows for the test",
    "data.path": "the CSV file",
    "data.targets": "target columns, e.g. [y] or [y1,y2]",
    "data.features": "input columns; null: every column that is neither a target nor the split",
    "data.categorical": "text columns to one-hot encode, e.g. [site]; the categories are kept in "
    "the checkpoint",
    "data.missing": "error (an empty cell in a used column stops the run) or drop (its row is left "
    "out)",
    "data.split_column": "a column of train / val / test labels that fixes the split; null: "
    "split at random by the fractions",
    "data.name": "the UCI data set: its folder name, e.g. bostonHousing, concrete, yacht",
    "data.split": "which published train / test split of the UCI data set (0, 1, ...)",
    "data.root": "folder of the UCI data; null: ../shared/data/uci from here or the repository",
    "data.val_seed": "seed of the validation rows taken out of the UCI training rows",
}

_POLICY_HELP = {
    "policy.model_run": "a finished bnnlv train run on wet_chicken to take the dynamics model "
    "from; null: train one",
    "policy.hidden": "widths of the policy network's hidden layers (ReLU; tanh outputs)",
    "policy.horizon": "T: steps of each roll-out through the model",
    "policy.n_draws": "K weight draws per update, each held fixed over its roll-outs",
    "policy.n_rollouts": "R roll-outs per weight draw and start state",
    "policy.batch_size": "B start states per update, drawn from the training transitions",
    "policy.epochs": "epochs of policy training",
    "policy.steps_per_epoch": "policy updates per epoch",
    "policy.lr": "Adam learning rate of the policy",
    "policy.max_grad_norm": "clip the gradient's norm to this",
    "policy.clip_states": "clip each predicted state to the river [0, 5] × [0, 5]",
    "policy.beta": "β ≥ 0: weight of the epistemic std of the summed cost (risk)",
    "policy.gamma": "γ ≥ 0: weight of the aleatoric std of the summed cost (risk)",
    "policy.checkpoint_every": "epochs between saves of checkpoints/policy.ckpt; null: at the "
    "end and when interrupted",
    "policy.evaluation.episodes": "true-system episodes that score the policy",
    "policy.evaluation.horizon": "steps of each true-system episode",
    "policy.evaluation.seed": "seed of the evaluation's start states and noise (the same for "
    "every policy)",
    "policy.evaluation.monitor_episodes": "episodes of the per-epoch true reward in policy.csv",
    "policy.evaluation.model_draws": "M weight draws of the evaluation under the model",
    "policy.evaluation.model_rollouts": "R roll-outs per weight draw under the model",
    "policy.evaluation.model_starts": "evaluation start states used under the model",
    "policy.upper_bound.enabled": "search the same network on the true system (cross-entropy "
    "method): the upper bound",
    "policy.upper_bound.iterations": "iterations of the cross-entropy method",
    "policy.upper_bound.population": "candidate policies per iteration",
    "policy.upper_bound.elite_frac": "fraction of the candidates kept as the elite",
    "policy.upper_bound.init_std": "initial std of the candidates' parameters",
    "policy.upper_bound.min_std": "smallest std of the candidates' parameters",
    "policy.upper_bound.episodes": "true-system episodes per candidate and iteration",
}

_ACTIVE_HELP = {
    "active.acquisition": "epistemic I(y;W), total H[y|x], aleatoric E_W H[y|W,x], epistemic_var "
    "or random",
    "active.init_size": "labelled points drawn at random from the pool before the first round",
    "active.query_size": "pool points acquired per round",
    "active.rounds": "rounds of acquisition (the run trains rounds + 1 times)",
    "active.candidates": "unlabelled pool points scored per round, drawn at random",
    "active.pool_size": "null: the training split is the pool; N: a fresh pool of N points (toys)",
    "active.retrain": "warm (continue from the last round's model) or scratch (a new model)",
    "active.batch": "topk (the best scores) or stochastic (a sample ∝ exp(beta·score))",
    "active.beta": "β ≥ 0 of the stochastic batch, in 1 / units of the score",
    "active.entropy_draws": "components drawn per candidate for the entropies (S, 3 points each)",
}

KEY_HELP: dict[str, str] = {
    # train: the root config
    "alpha": "α of the black-box α energy, in [0, 1]; 0 is variational inference (the ELBO)",
    "seed": "seed of training's randomness (initial weights, noise draws, minibatch order)",
    "progress_bar": "auto (a bar on a terminal, none in logs), true or false",
    "plots": "write the figures (data.png, fit.png, training curves, diagnostics)",
    "threads": "torch CPU threads; null: torch's default (1 is fastest for small models)",
    "checkpoint_every": "epochs between saves of checkpoints/last.ckpt; null: only at the end "
    "and when interrupted",
    "resume": "a stopped (or finished) run's folder to continue in place: resume=DIR",
    "interval": "central predictive interval from the mixture's quantiles (0.9: columns q05, "
    "q95); null: none",
    # model
    "model.alpha": "α as the model gets it (follows alpha)",
    "model.hidden": "widths of the hidden layers, e.g. [40,40]",
    "model.prior_var": "prior variance of the weights (follows prior.weight_var)",
    "model.posterior_std_init": "initial standard deviation of each weight's posterior q(w)",
    "model.stochastic_layers": "which layers have Bayesian weights: all, [] (none) or indices / "
    "names layer0..layerH",
    "model.latent": "latent input z: per_point (a q(z_n) per training point), amortised "
    "(q(z|x,y) by a network) or none",
    "model.latent_dim": "dimension of the latent input z",
    "model.latent_prior_var": "prior variance γ of z (follows prior.latent_var)",
    "model.latent_hidden": "hidden widths of the amortised latent's inference network",
    "model.latent_init_var_frac": "initial variance of each q(z_n), as a fraction of the prior "
    "variance γ, in (0, 1)",
    "model.noise": "output noise: homoscedastic (one σ per output) or heteroscedastic "
    "(σ(x, z; W), a second output head)",
    "model.noise_std_init": "initial standard deviation σ of the output noise",
    "model.n_samples_train": "Monte Carlo samples K of weights and latents per training update",
    "model.n_samples_test": "weight samples M of the predictive mixture (validation, test, plots)",
    "model.n_latent_test": "latent samples L per weight sample: the mixture has M·L components",
    "model.lr": "Adam learning rate of the weights' posterior",
    "model.latent_lr": "learning rate of the per-point latent table; null: lr·N/batch_size",
    "model.noise_lr": "learning rate of the output noise's log variance",
    "model.predict_chunk": "rows predicted at a time (bounds the memory of prediction)",
    "model.weight_sampler": "shared (one weight draw per sample k) or flipout (per-example "
    "perturbations, cavity energy)",
    "model.compile": "torch.compile the training step (pays on a GPU, not on the CPU)",
    "model.members": "networks of a run, trained together and mixed in the predictive (1 but "
    "for an ensemble)",
    "model.fused": "train with the hand-written gradient where it applies (false: autograd)",
    # prior
    "prior.weight_var": "λ: prior variance of every Bayesian weight and bias, w ~ N(0, λ)",
    "prior.latent_var": "γ: prior variance of the latent input, z ~ N(0, γ); null: the number "
    "of input features",
    # trainer (Lightning's Trainer arguments)
    "trainer.accelerator": "cpu or gpu",
    "trainer.devices": "devices (processes) per node",
    "trainer.num_nodes": "nodes, for ddp under SLURM",
    "trainer.strategy": "ddp: one run on several devices, each taking a share of every minibatch",
    "trainer.max_epochs": "training epochs (passes over the training rows)",
    "trainer.check_val_every_n_epoch": "epochs between validation rows (NLL, RMSE) in "
    "logs/metrics.csv",
    "trainer.num_sanity_val_steps": "validation batches Lightning runs before training",
    "trainer.enable_model_summary": "print Lightning's table of the model's layers",
    "trainer.log_every_n_steps": "Lightning's interval for metrics logged per step",
    # evaluate and predict
    "run_dir": "the run folder to load (its config.yaml and checkpoints/last.ckpt)",
    **_DATA_HELP,
    **_POLICY_HELP,
    **_ACTIVE_HELP,
}

USAGE = {
    "train": """\
usage: bnnlv train [GROUP=OPTION ...] [KEY=VALUE ...]
       bnnlv train -m KEY=V1,V2 [KEY=V1,V2 ...]    a sweep (--multirun): one run per
                                                   combination, then summary.csv / .md / .png
       bnnlv train resume=DIR [trainer.max_epochs=N]  continue a stopped run in its folder

Trains a model and writes its run folder outputs/<date>_<time>/: metrics.json,
predictions.csv, the figures, logs/metrics.csv, checkpoints/last.ckpt.""",
    "evaluate": """\
usage: bnnlv evaluate run_dir=DIR [data=OPTION] [data.KEY=VALUE ...]

Scores a saved run again from its checkpoint, on its own data or on another data config
(standardised with the run's training statistics): DIR/evaluate/<date>_<time>/.""",
    "policy": """\
usage: bnnlv policy [GROUP=OPTION ...] [KEY=VALUE ...]
       bnnlv policy -m KEY=V1,V2 [...]         a sweep, summarised (with the risk-return plot)
       bnnlv policy resume=DIR                 continue a stopped policy search in its folder

Searches a policy for Wet-Chicken through a dynamics model (trained first, or policy.model_run):
outputs/policy/<date>_<time>/. The model's keys are bnnlv train's.""",
    "active": """\
usage: bnnlv active [GROUP=OPTION ...] [KEY=VALUE ...]
       bnnlv active -m active.acquisition=epistemic,total,random seed=0,1,2,3,4
                                               a sweep: learning curves and paired areas
       bnnlv active resume=DIR                 continue at the round where it stopped

Pool-based active learning: rounds of train, score the candidates, acquire the best, evaluate,
into outputs/active/<date>_<time>/ (active.csv, acquired.png, learning_curve.png). The model's
keys are bnnlv train's; trainer.max_epochs is each round's.""",
    "predict": """\
usage: bnnlv predict run_dir=DIR data=csv data.path=FILE [data.features=[...]]

Predicts every row of a CSV of inputs with a saved run (no targets needed):
DIR/predict/<date>_<time>/predictions.csv.""",
}

FOOTER = """\
Other flags: --cfg job prints the composed config; --hydra-help shows Hydra's own flags."""


def command_help(command: str, overrides: Sequence[str]) -> str:
    """The help text of ``bnnlv COMMAND`` for its config composed with ``overrides``."""
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    from bnnlv.runs.folders import config_dir

    with initialize_config_dir(config_dir=config_dir(), version_base="1.3"):
        cfg = compose(config_name=command, overrides=list(overrides), return_hydra_config=True)
    choices = cfg.hydra.runtime.choices
    values = {str(k): v for k, v in OmegaConf.to_container(cfg, resolve=False).items()}  # type: ignore[union-attr]
    del values["hydra"]
    lines = [USAGE[command], "", "Config groups (GROUP=OPTION; the current choice in brackets):"]
    for group in [group for group in GROUP_HELP if group in choices]:
        options = ", ".join(config_options(group))
        lines += [
            f"  {group}: {options} [{choices[group] or 'none'}]",
            f"      {GROUP_HELP[group]}",
        ]
    lines += ["", "Keys (KEY=VALUE; the current value shown; ${key}: follows that key):"]
    settings = leaf_keys(values)
    for key, value in sorted(settings, key=lambda setting: "." in setting[0]):  # root keys first
        lines += [f"  {key}={show(value)}", f"      {KEY_HELP.get(key, '')}"]
    lines += ["", FOOTER]
    return "\n".join(lines)


def config_options(group: str) -> list[str]:
    """The options of a config group: the YAML files of configs/<group>/."""
    from bnnlv.runs.folders import config_dir

    return sorted(path.stem for path in (Path(config_dir()) / group).glob("*.yaml"))


def leaf_keys(node: dict[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    """(dotted key, value) of every setting under ``node``, in order; ``_target_`` (the class a
    group builds) is left out."""
    leaves: list[tuple[str, Any]] = []
    for name, value in node.items():
        key = f"{prefix}{name}"
        if isinstance(value, dict):
            leaves += leaf_keys(value, f"{key}.")
        elif name != "_target_":
            leaves.append((key, value))
    return leaves


def show(value: Any) -> str:
    """A value as it is typed on the command line (YAML's null, true, false, [a, b])."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, list):
        return "[" + ",".join(show(v) for v in value) + "]"
    return str(value)
