"""The scripts under scripts/ are not a package: each test module loads its script by path."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

import pytest

SCRIPTS = Path(__file__).resolve().parents[2] / "scripts"


def load_script(name: str) -> ModuleType:
    """scripts/<name>.py, imported as the module ``name``."""
    spec = importlib.util.spec_from_file_location(name, SCRIPTS / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def grouped_and_alone(
    script: ModuleType, argv: Sequence[str], out: Path, monkeypatch: pytest.MonkeyPatch
) -> dict[str, Path]:
    """Run ``script.main()`` with ``argv`` twice, into ``out/grouped`` and, with ``--no-group``,
    ``out/alone``: those folders by name. In this process (``--jobs 1``): the worker processes
    are tested in tests/runs/test_benchmark.py."""
    folders = {"grouped": out / "grouped", "alone": out / "alone"}
    for name, folder in folders.items():
        option = ["--no-group"] if name == "alone" else []
        argv_run = ["script", *argv, "--jobs", "1", "--out", str(folder), *option]
        monkeypatch.setattr(sys, "argv", argv_run)
        script.main()
    return folders


def refusal(
    script: ModuleType, argv: Sequence[str], out: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> str:  # fmt: skip
    """``script.main()`` with ``argv`` must stop with exit 2, writing nothing under ``out``:
    its message."""
    monkeypatch.setattr(sys, "argv", ["script", *argv, "--out", str(out)])
    with pytest.raises(SystemExit) as stop:
        script.main()
    assert stop.value.code == 2 and not any(out.iterdir())
    return capsys.readouterr().err
