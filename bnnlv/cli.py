"""The ``bnnlv`` command: ``bnnlv train [hydra overrides]`` and friends.

``train`` is a real Hydra app (``-m``, ``--cfg job``, ``--help``, ``hydra.run.dir=…``); this module
only dispatches the subcommand and turns failures into one line on stderr and a non-zero exit.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

import bnnlv


def config_dir() -> str:
    """The configs folder: inside the installed package, or the repo's top-level ``configs/``."""
    package = Path(bnnlv.__file__).resolve().parent
    for candidate in (package / "configs", package.parent / "configs"):
        if (candidate / "train.yaml").is_file():
            return str(candidate)
    raise FileNotFoundError(f"no configs/train.yaml next to {package}")


def _fail(error: BaseException) -> None:
    message = str(error).strip().splitlines()
    print(f"bnnlv: error: {message[0] if message else type(error).__name__}", file=sys.stderr)


@hydra.main(version_base="1.3", config_path=config_dir(), config_name="train")
def train_app(cfg: DictConfig) -> float | None:
    """Hydra task: one run into hydra.runtime.output_dir."""
    from bnnlv.train import train

    run_dir = Path(HydraConfig.get().runtime.output_dir)
    try:
        metrics = train(cfg, run_dir)
    except KeyboardInterrupt:
        print(f"bnnlv: interrupted; partial results in {run_dir}", file=sys.stderr)
        raise SystemExit(130) from None
    except Exception as error:
        _fail(error)
        print(f"bnnlv: run folder: {run_dir}", file=sys.stderr)
        raise SystemExit(1) from None
    nll = metrics.get("test_nll")
    print(
        f"bnnlv: test NLL {metrics['test_nll']:.4f} (standardised "
        f"{metrics['test_nll_standardised']:.4f}), R² {metrics['test_r2']:.4f}, "
        f"fit {metrics['fit_seconds']:.1f} s → {run_dir}"
    )
    return float(nll) if nll is not None else None


COMMANDS: dict[str, tuple[Callable[[], object], str]] = {
    "train": (train_app, "train a model; Hydra overrides follow (bnnlv train --help)"),
}


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
    if command not in COMMANDS:
        print(f"bnnlv: error: unknown command {command!r}; choose from {list(COMMANDS)}",
              file=sys.stderr)  # fmt: skip
        raise SystemExit(2)
    sys.argv = [f"bnnlv {command}", *args[1:]]
    COMMANDS[command][0]()


if __name__ == "__main__":
    main()
