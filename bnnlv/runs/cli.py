"""The ``bnnlv`` command: ``bnnlv train [hydra overrides]`` and friends.

``train`` is a real Hydra app (``-m``, ``--cfg job``, ``--help``, ``hydra.run.dir=…``); this module
only dispatches the subcommand and turns failures into one line on stderr and a non-zero exit:
1 for a failed run, 2 for a command line Hydra cannot compose, 128 + signal for an interrupt.
In a sweep (``-m``) a failed job is reported and the other jobs carry on; the sweep exits 1 at
the end if any job failed. ``HYDRA_FULL_ERROR=1`` shows Hydra's own full error instead.
"""

from __future__ import annotations

import gc
import importlib
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from bnnlv.runs.errors import FAILED_JOBS, describe, root_cause
from bnnlv.runs.folders import config_dir, register_resolvers
from bnnlv.runs.interrupts import as_run_interrupted
from bnnlv.runs.results import METRICS_FILE, write_json

register_resolvers()
T = TypeVar("T")
# Lightning's DDP re-runs this process's command line (sys.argv) once per extra device; the
# re-run finds its subcommand here (see relaunchable).
COMMAND_ENV = "BNNLV_COMMAND"
_LAUNCHED_AS = sys.argv[0]


def _error(message: str) -> None:
    print(f"bnnlv: error: {message}", file=sys.stderr)


@hydra.main(version_base="1.3", config_path=config_dir(), config_name="train")
def train_app(cfg: DictConfig) -> float | None:
    """Hydra task: one run into hydra.runtime.output_dir; returns the validation NLL (the
    objective of hparams_search), None for a failed job of a sweep."""
    from lightning.pytorch.utilities import rank_zero_only

    from bnnlv.runs.resume import resume_config
    from bnnlv.runs.train import train

    freeze_imports()
    relaunchable("train")
    run_dir = Path(HydraConfig.get().runtime.output_dir)

    def run() -> dict[str, Any]:
        job_cfg = cfg
        if job_cfg.get("resume"):
            job_cfg = resume_config(job_cfg.resume, HydraConfig.get().overrides.task)
        if HydraConfig.get().mode == RunMode.MULTIRUN:
            check_no_relaunch(job_cfg)
        return train(job_cfg, run_dir)

    metrics = run_job(run_dir, run)
    if metrics is None or getattr(rank_zero_only, "rank", 0) != 0:
        return None
    print(
        f"bnnlv: test NLL {metrics['test_nll']:.4f} (standardised "
        f"{metrics['test_nll_standardised']:.4f}), R² {metrics['test_r2']:.4f}, "
        f"fit {metrics['fit_seconds']:.1f} s → {run_dir}"
    )
    val_nll = metrics.get("val_nll")
    return float(val_nll) if val_nll is not None else None


def run_job(run_dir: Path, run: Callable[[], T]) -> T | None:
    """``run()`` as one job of a Hydra task; its failures as the user should see them.

    An interrupt: one line and exit 128 + signal. A failure: one line, ``metrics.json`` says
    ``failed`` if the run had not begun its record; in a sweep the job joins FAILED_JOBS and
    None is returned (the sweep carries on), otherwise exit 1.
    """
    try:
        return run()
    except KeyboardInterrupt as stop:
        print(f"bnnlv: {describe(stop)}; status in {run_dir / 'metrics.json'}", file=sys.stderr)
        raise SystemExit(as_run_interrupted(stop).exit_code) from None
    except Exception as error:
        _error(f"{describe(error)} (run folder: {run_dir})")
        if not (run_dir / METRICS_FILE).exists():  # rejected before the run began its record
            write_json(run_dir / METRICS_FILE, {"status": "failed", "error": describe(error)})
        if HydraConfig.get().mode == RunMode.MULTIRUN:
            FAILED_JOBS.append(run_dir)
            return None
        raise SystemExit(1) from None


def freeze_imports() -> None:
    """Leave what has been imported so far out of the cyclic garbage collector (gc.freeze).

    torch, Lightning and what they import are ≈ 450,000 objects that live as long as the process,
    and each full collection walks them all, the interpreter's last one at exit included
    (measured: importing Lightning and exiting takes 1.0 s longer than importing it alone).
    Freezing them after the imports took ≈ 1 s off the default ``bnnlv train`` (20.2 → 19.1 s).
    Objects made later are collected as usual.
    """
    gc.freeze()


def relaunchable(command: str) -> None:
    """Let Lightning re-run this command: sys.argv[0] back to the program as launched (Hydra
    saw 'bnnlv COMMAND'), and the subcommand in the environment the worker processes inherit."""
    os.environ[COMMAND_ENV] = command
    sys.argv[0] = _LAUNCHED_AS


def check_no_relaunch(cfg: DictConfig) -> None:
    """A sweep job must not ask Lightning to re-launch the command (local multi-device DDP):
    the re-launched processes would re-run the whole sweep. Under SLURM (srun) the cluster
    starts every process, so launcher=slurm with several tasks is fine."""
    strategy, devices = str(cfg.trainer.get("strategy", "")), cfg.trainer.get("devices", 1)
    if strategy.startswith("ddp") and devices not in (1, "1") and "SLURM_NTASKS" not in os.environ:
        raise ValueError(
            f"trainer.strategy={strategy} with trainer.devices={devices} cannot run inside a "
            "sweep (-m): Lightning re-launches the command. Sweep with one device per job, or "
            "run each multi-device job on its own (or under launcher=slurm)"
        )


def _lazy(module: str, name: str) -> Callable[[], object]:
    """A command imported when it runs (keeps ``bnnlv --help`` fast)."""
    return lambda: getattr(importlib.import_module(module), name)()


COMMANDS: dict[str, tuple[Callable[[], object], str]] = {
    "train": (train_app, "train a model; Hydra overrides follow (bnnlv train --help)"),
    "evaluate": (_lazy("bnnlv.runs.saved", "evaluate_app"),
                 "re-score a saved run: run_dir=DIR [data=...] (bnnlv evaluate --help)"),
    "predict": (_lazy("bnnlv.runs.saved", "predict_app"),
                "predict new inputs: run_dir=DIR data=csv data.path=FILE"),
    "policy": (_lazy("bnnlv.policy.app", "policy_app"),
               "policy search on Wet-Chicken through a dynamics model (bnnlv policy --help)"),
    "summarize": (_lazy("bnnlv.runs.sweep", "summarize_main"),
                  "rebuild a sweep's summary: bnnlv summarize SWEEP_DIR"),
}  # fmt: skip


def usage() -> str:
    lines = ["usage: bnnlv COMMAND [ARGS...]", "", "commands:"]
    lines += [f"  {name:<10} {text}" for name, (_, text) in COMMANDS.items()]
    lines += ["", "Run 'bnnlv COMMAND --help' for a command's options."]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help", "help"):
        print(usage())
        return
    command = args[0]
    if command not in COMMANDS and os.environ.get("LOCAL_RANK") and COMMAND_ENV in os.environ:
        command, args = os.environ[COMMAND_ENV], [os.environ[COMMAND_ENV], *args]
    if command not in COMMANDS:
        print(f"bnnlv: error: unknown command {command!r}; choose from {list(COMMANDS)}",
              file=sys.stderr)  # fmt: skip
        raise SystemExit(2)
    sys.argv = [f"bnnlv {command}", *args[1:]]
    run_hydra_app(COMMANDS[command][0])


def run_hydra_app(app: Callable[[], object]) -> None:
    """Run a Hydra app, reporting a command line it cannot compose in one line (exit 2).

    Hydra prints its own multi-line report unless HYDRA_FULL_ERROR=1, in which case it raises:
    set it for the duration so the exception reaches us, unless the user set it to see it all.
    """
    if os.environ.get("HYDRA_FULL_ERROR") == "1":
        app()
        return
    FAILED_JOBS.clear()
    os.environ["HYDRA_FULL_ERROR"] = "1"
    try:
        app()
    except Exception as error:
        from hydra.errors import HydraException

        message = describe(error)
        if isinstance(root_cause(error), OSError) and not isinstance(error, HydraException):
            message = f"cannot write the output location: {message}"
        _error(message)
        raise SystemExit(2 if isinstance(error, HydraException) else 1) from None
    finally:
        del os.environ["HYDRA_FULL_ERROR"]
    if FAILED_JOBS:
        _error(f"{len(FAILED_JOBS)} sweep job(s) failed: {', '.join(map(str, FAILED_JOBS))}")
        raise SystemExit(1)


if __name__ == "__main__":
    main()
