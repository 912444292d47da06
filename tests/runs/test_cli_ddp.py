"""``bnnlv train trainer=ddp``: Lightning re-launches the command for each extra process; the
subcommand survives and exactly one results folder comes out."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.cli_inprocess import TINY


@pytest.mark.slow
def test_two_process_ddp_on_cpu_writes_one_results_folder(tmp_path: Path) -> None:
    program = Path(sys.executable).with_name("bnnlv")  # the console script users run
    command = [str(program)] if program.is_file() else [sys.executable, "-m", "bnnlv.runs.cli"]
    result = subprocess.run(
        [*command, "train", "trainer=ddp", "trainer.accelerator=cpu", "trainer.devices=2",
         *TINY, "data.batch_size=10"],
        cwd=tmp_path, capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    (run_dir,) = (p for p in (tmp_path / "outputs").glob("*") if p.is_dir())
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["status"] == "ok" and metrics["epochs"] == 2
    assert metrics["steps"] == 2 * 5  # 2 epochs of 5 batches of 10 (shared by 2 processes)
    assert (run_dir / "checkpoints" / "last.ckpt").stat().st_size > 0
    assert (run_dir / "train_ddp_process_1.log").is_file()  # the re-launched process ran here
    assert result.stdout.count("test NLL") == 1  # only rank 0 reports
