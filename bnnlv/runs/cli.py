"""The ``bnnlv`` command: ``bnnlv train [hydra overrides]`` and friends.

``train``, ``evaluate`` and ``predict`` are Hydra apps (``-m``, ``--cfg job``, ``hydra.run.dir=…``);
``--help`` is this module's own (bnnlv.runs.help: every key in one line). This module only
dispatches the subcommand and turns failures into one line on stderr and a non-zero exit: 1 for a
failed run, 2 for a command line Hydra cannot compose (and for no command at all), 128 + signal for
an interrupt. In a sweep (``-m``) a failed job is reported and the other jobs carry on; the sweep
exits 1 at the end if any job failed. ``HYDRA_FULL_ERROR=1`` shows Hydra's own full error instead.

Ctrl-C (or SIGTERM) at any moment gives one line and exit 130 (143), the imports of torch and
Lightning included: the interrupt handler (bnnlv.runs.interrupts) is installed before anything
heavy is imported, which is why this module imports only the standard library and the light parts
of bnnlv at the top.
"""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Callable, Sequence

import bnnlv
from bnnlv.runs.folders import register_resolvers, release_claimed
from bnnlv.runs.interrupts import as_run_interrupted, interrupts_raised, interrupts_surfaced

# Lightning's DDP re-runs this process's command line (sys.argv) once per extra device; the
# re-run finds its subcommand here (see relaunchable).
COMMAND_ENV = "BNNLV_COMMAND"
_LAUNCHED_AS = sys.argv[0]
HELP_FLAGS = ("-h", "--help")


def _error(message: str) -> None:
    print(f"bnnlv: error: {message}", file=sys.stderr)


def relaunchable(command: str) -> None:
    """Let Lightning re-run this command: sys.argv[0] back to the program as launched (Hydra
    saw 'bnnlv COMMAND'), and the subcommand in the environment the worker processes inherit."""
    os.environ[COMMAND_ENV] = command
    sys.argv[0] = _LAUNCHED_AS


def _lazy(module: str, name: str) -> Callable[[], object]:
    """A command imported when it runs (keeps ``bnnlv --help`` fast)."""
    return lambda: getattr(importlib.import_module(module), name)()


COMMANDS: dict[str, tuple[Callable[[], object], str]] = {
    "train": (_lazy("bnnlv.runs.train_app", "train_app"),
              "train a model; KEY=VALUE overrides follow (bnnlv train --help)"),
    "evaluate": (_lazy("bnnlv.runs.saved", "evaluate_app"),
                 "re-score a saved run: run_dir=DIR [data=...] (bnnlv evaluate --help)"),
    "predict": (_lazy("bnnlv.runs.saved", "predict_app"),
                "predict new inputs: run_dir=DIR data=csv data.path=FILE"),
    "policy": (_lazy("bnnlv.policy.app", "policy_app"),
               "policy search on Wet-Chicken through a dynamics model (bnnlv policy --help)"),
    "active": (_lazy("bnnlv.active.app", "active_app"),
               "pool-based active learning: [active.acquisition=...] (bnnlv active --help)"),
    "summarize": (_lazy("bnnlv.runs.sweep", "summarize_main"),
                  "rebuild a sweep's summary: bnnlv summarize SWEEP_DIR"),
}  # fmt: skip
HYDRA_COMMANDS = ("train", "evaluate", "predict", "policy", "active")


def usage() -> str:
    lines = ["usage: bnnlv COMMAND [ARGS...]", "       bnnlv --version", "", "commands:"]
    lines += [f"  {name:<10} {text}" for name, (_, text) in COMMANDS.items()]
    lines += ["", "Run 'bnnlv COMMAND --help' for a command's options."]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    """The ``bnnlv`` command. An interrupt anywhere is one line and exit 128 + signal.

    Whatever the end, folders claimed in this process that hold nothing but Hydra's record of
    the command are removed: an interrupted or refused run's, and those Hydra claims while it
    composes a config that overrides another's folders (bnnlv active and policy compose train's
    config: OmegaConf resolves train's ``hydra.run.dir`` before replacing it)."""
    with interrupts_raised():
        try:
            _main(list(sys.argv[1:] if argv is None else argv))
        except KeyboardInterrupt as stop:
            release_claimed()
            print(f"bnnlv: {as_run_interrupted(stop)}", file=sys.stderr)
            raise SystemExit(as_run_interrupted(stop).exit_code) from None
        except BrokenPipeError:  # the reader of the output went away (bnnlv train --help | head)
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            raise SystemExit(1) from None
        finally:
            release_claimed()


def _main(args: list[str]) -> None:
    if not args:
        print(usage(), file=sys.stderr)
        raise SystemExit(2)
    if args[0] in ("-h", "--help", "help"):
        print(usage())
        return
    if args[0] == "--version":
        print(f"bnnlv {bnnlv.__version__}")
        return
    command = args[0]
    if command not in COMMANDS and os.environ.get("LOCAL_RANK") and COMMAND_ENV in os.environ:
        command, args = os.environ[COMMAND_ENV], [os.environ[COMMAND_ENV], *args]
    if command not in COMMANDS:
        _error(f"unknown command {command!r}; choose from {list(COMMANDS)}")
        raise SystemExit(2)
    if command in HYDRA_COMMANDS and any(flag in args[1:] for flag in HELP_FLAGS):
        run_reported(lambda: _print_help(command, args[1:]))
        return
    if command in HYDRA_COMMANDS:
        register_resolvers()
    sys.argv = [f"bnnlv {command}", *args[1:]]
    run_reported(COMMANDS[command][0])


def _print_help(command: str, args: list[str]) -> None:
    from bnnlv.runs.help import command_help

    print(command_help(command, [arg for arg in args if arg not in HELP_FLAGS]))


def run_reported(app: Callable[[], object]) -> None:
    """Run a Hydra app, reporting a command line it cannot compose in one line (exit 2).

    Hydra prints its own multi-line report unless HYDRA_FULL_ERROR=1, in which case it raises:
    set it for the duration so the exception reaches us, unless the user set it to see it all.
    """
    from bnnlv.runs.errors import FAILED_JOBS

    if os.environ.get("HYDRA_FULL_ERROR") == "1":
        app()
        return
    FAILED_JOBS.clear()
    os.environ["HYDRA_FULL_ERROR"] = "1"
    try:
        with interrupts_surfaced():
            app()
    except BrokenPipeError:
        raise
    except Exception as error:
        from hydra.errors import HydraException

        from bnnlv.runs.errors import describe, root_cause

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
