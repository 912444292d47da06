"""What the user sees when something goes wrong: one line, a non-zero exit, an honest run folder.

Every case runs the real ``bnnlv train`` command line, in-process where it can (capsys sees what
the terminal would), in a subprocess where a real signal is needed. Each asserts the exit code,
that stderr is one ``bnnlv: error:`` line with no traceback, the key words of the message, and
the state of the results folder.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from hydra.errors import InstantiationException, MissingConfigException
from hydra.utils import instantiate

from bnnlv.data.module import Splits
from bnnlv.data.toy import ToyHeteroscedastic
from bnnlv.runs import cli
from bnnlv.runs.checkpoints import load_checkpoint
from bnnlv.runs.errors import describe
from tests.cli_inprocess import TINY, run_bnnlv, run_fresh
from tests.runs.test_interrupts import HalfMade


def train(monkeypatch: pytest.MonkeyPatch, run_dir: Path, *overrides: str) -> int:
    return run_bnnlv(monkeypatch, "train", *TINY, f"hydra.run.dir={run_dir}", *overrides)


def train_unnamed(monkeypatch: pytest.MonkeyPatch, cwd: Path, *overrides: str) -> int:
    """``bnnlv train`` from ``cwd`` into the folder it claims itself (outputs/<date>_<time>)."""
    monkeypatch.chdir(cwd)
    return run_bnnlv(monkeypatch, "train", *TINY, *overrides)


def one_error_line(err: str) -> str:
    """The single stderr line, which must be a ``bnnlv: error:`` line."""
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("bnnlv: error: ")
    return lines[0]


def metrics(run_dir: Path) -> dict[str, Any]:
    result: dict[str, Any] = json.loads((run_dir / "metrics.json").read_text())
    return result


def assert_no_results(run_dir: Path) -> None:
    """Nothing that could pass for a result, and no half-written temporary file."""
    names = {p.name for p in run_dir.iterdir()}
    assert not names & {"predictions.csv", "checkpoints", "plots"}, names
    assert not list(run_dir.rglob("*.tmp"))


class NaNToy(ToyHeteroscedastic):
    """The toy data with one NaN input: the generic data check must catch it."""

    def load(self) -> Splits:
        splits = super().load()
        splits.x_train[3, 0] = np.nan
        return splits


# ---------------------------------------------------------------------------------------------
# Bad command lines: Hydra cannot compose them; no run folder is made (exit 2)

COMPOSE_ERRORS = [
    ("model=foo", ["model=foo", "no such option", "bnn, bnn_lv, ensemble, het_mlp, mlp"]),
    ("data=nope", ["data=nope", "toy_heteroscedastic"]),
    ("foo=1", ["unknown key foo", "foo=1", "alpha", "model"]),
    ("model.fooo=1", ["unknown key model.fooo", "hidden", "n_samples_train"]),
    ("max_epochs=5", ["unknown key max_epochs", "did you mean trainer.max_epochs?"]),
    ("model.latent_dims=2", ["unknown key model.latent_dims", "did you mean model.latent_dim?"]),
    ("alpha=[", ["cannot parse", "["]),
    # Hydra's own way out is kept: a list, a quoted string, or a sweep
    (
        "alpha=0.5,1",
        [
            "Ambiguous value for argument 'alpha=0.5,1'",
            "use key=[value1,value2]",
            "quote the value",
            "add --multirun",
        ],
    ),
]


@pytest.mark.parametrize(("override", "words"), COMPOSE_ERRORS, ids=[c[0] for c in COMPOSE_ERRORS])
def test_uncomposable_command_line(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    override: str,
    words: list[str],
) -> None:
    assert train(monkeypatch, tmp_path / "run", override) == 2
    line = one_error_line(capsys.readouterr().err)
    for word in words:
        assert word in line
    assert not (tmp_path / "run").exists()
    assert "HYDRA_FULL_ERROR" not in os.environ


@pytest.mark.parametrize("command", ["evaluate", "predict"])
def test_a_group_the_command_does_not_take(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], command: str
) -> None:
    """evaluate and predict use the run's own model and trainer: choosing one is refused."""
    assert run_bnnlv(monkeypatch, command, "run_dir=/no/such/run", "model=mlp") == 2
    line = one_error_line(capsys.readouterr().err)
    assert "model: this command takes no model option" in line and "--help" in line


# ---------------------------------------------------------------------------------------------
# Bad values: one line (exit 1), and no run folder left: a single run that made no update has
# nothing to keep (a sweep's job keeps its folder, saying failed, for the summary)

CONFIG_ERRORS = [
    ("alpha=2", ["alpha", "[0, 1]", "got 2"]),
    ("alpha=-0.1", ["alpha", "[0, 1]", "got -0.1"]),
    ("alpha=abc", ["alpha", "[0, 1]", "'abc'"]),
    ("alpha=nan", ["alpha", "[0, 1]", "nan"]),
    ("trainer.max_epochs=0", ["trainer.max_epochs", "positive integer", "got 0"]),
    ("trainer.max_epochs=-1", ["trainer.max_epochs", "positive integer", "got -1"]),
    ("data.batch_size=0", ["data.batch_size", "positive integer", "got 0"]),
    ("model.n_samples_train=0", ["model.n_samples_train", "positive integer", "got 0"]),
    ("model.n_samples_test=-3", ["model.n_samples_test", "positive integer", "got -3"]),
    ("model.n_latent_test=0", ["model.n_latent_test", "got 0"]),
    ("model.hidden=[8,0]", ["model.hidden", "positive", "[8, 0]"]),
    ("model.hidden=[]", ["model.hidden", "non-empty", "[]"]),
    ("model.latent_dim=0", ["model.latent_dim", "positive integer", "got 0"]),
    ("prior.weight_var=0", ["prior.weight_var", "positive", "got 0"]),
    ("prior.latent_var=-1", ["prior.latent_var", "positive", "got -1"]),
    ("model.lr=-0.01", ["model.lr", "positive", "got -0.01"]),
    ("model.stochastic_layers=[5]", ["model.stochastic_layers", "5", "names no layer", "layer1"]),
    ("model.stochastic_layers=[layer7]", ["model.stochastic_layers", "'layer7'", "layer0"]),
    ("model.latent=foo", ["model.latent", "per_point, amortised, none", "'foo'"]),
    ("checkpoint_every=0", ["checkpoint_every", "positive integer or null", "got 0"]),
    ("data.n_points=5", ["data.n_points", "5"]),  # the constructor's check, through Hydra
    ("+model.foo=1", ["model", "unexpected keyword argument 'foo'"]),
]


@pytest.mark.parametrize(("override", "words"), CONFIG_ERRORS, ids=[c[0] for c in CONFIG_ERRORS])
def test_bad_value_fails_the_run_in_one_line(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    override: str,
    words: list[str],
) -> None:
    assert train_unnamed(monkeypatch, tmp_path, override) == 1
    line = one_error_line(capsys.readouterr().err)
    for word in words:
        assert word in line
    assert not (tmp_path / "outputs").exists()


def test_a_bad_value_is_reported_before_the_heavy_imports(tmp_path: Path) -> None:
    """The check comes before torch, Lightning, pandas and matplotlib are imported (9-11 s of a
    bad value's feedback was their import), and the refused run leaves no folder."""
    code, imported, stderr = run_fresh(tmp_path, "train", "alpha=2")
    assert (code, imported) == (1, []), stderr
    assert one_error_line(stderr) == "bnnlv: error: alpha must be a number in [0, 1], got 2"
    assert not (tmp_path / "outputs").exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without a CUDA GPU")
def test_gpu_trainer_without_a_gpu(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    assert train_unnamed(monkeypatch, tmp_path, "trainer=gpu") == 1
    line = one_error_line(capsys.readouterr().err)
    assert "trainer.accelerator=gpu" in line and "trainer=cpu" in line
    assert not (tmp_path / "outputs").exists()


def test_batch_larger_than_the_training_set_is_clamped_with_a_warning(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    assert train(monkeypatch, tmp_path, "data.batch_size=5000") == 0
    out = capsys.readouterr()
    assert "data.batch_size=5000 is larger than the 42 training points; using 42" in out.out
    assert metrics(tmp_path)["status"] == "ok"
    assert (
        load_checkpoint(tmp_path / "checkpoints/last.ckpt")["hyper_parameters"]["batch_size"] == 42
    )


# ---------------------------------------------------------------------------------------------
# Bad data


def test_non_finite_data_names_split_row_and_column(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    assert train_unnamed(monkeypatch, tmp_path, f"data._target_={__name__}.NaNToy") == 1
    line = one_error_line(capsys.readouterr().err)
    assert "x_train" in line and "nan" in line and "row 3" in line and "column 'x'" in line
    assert not (tmp_path / "outputs").exists()


def test_missing_data_file(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    missing = tmp_path / "no_such.csv"
    not_toy = [arg for arg in TINY if not arg.startswith("data.")]
    monkeypatch.chdir(tmp_path)
    code = run_bnnlv(monkeypatch, "train", *not_toy, "data=csv", f"data.path={missing}",
                     "data.targets=[y]")  # fmt: skip
    assert code == 1
    line = one_error_line(capsys.readouterr().err)
    assert str(missing) in line and "not found" in line
    assert not (tmp_path / "outputs").exists()


# ---------------------------------------------------------------------------------------------
# Training that goes wrong


def test_divergence_stops_at_once_and_keeps_the_last_good_checkpoint(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code = train(monkeypatch, tmp_path, "model.lr=1e3", "trainer.max_epochs=500",
                 "checkpoint_every=1")  # fmt: skip
    assert code == 1
    line = one_error_line(capsys.readouterr().err)
    assert "non-finite energy" in line and "epoch" in line and "step" in line
    record = metrics(tmp_path)
    assert record["status"] == "failed" and record["error_type"] == "DivergenceError"
    assert record["epoch"] >= 1 and record["epoch"] < 500 and record["step"] >= 1
    assert record["checkpoint"] == "checkpoints/last.ckpt"
    saved = load_checkpoint(tmp_path / record["checkpoint"])
    assert saved["epoch"] == record["epoch"] - 1  # the epoch before the bad one
    assert all(torch.isfinite(t).all() for t in saved["state_dict"].values())
    assert not (tmp_path / "predictions.csv").exists()
    assert not list(tmp_path.rglob("*.tmp"))


def test_divergence_without_periodic_checkpoints_claims_none(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    assert train(monkeypatch, tmp_path, "model.lr=1e3", "trainer.max_epochs=500") == 1
    one_error_line(capsys.readouterr().err)
    assert metrics(tmp_path)["checkpoint"] is None
    assert_no_results(tmp_path)


def test_failed_job_does_not_stop_a_sweep(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code = run_bnnlv(monkeypatch, "train", "-m", *TINY, "alpha=2,0.5",
                     f"hydra.sweep.dir={tmp_path}")  # fmt: skip
    assert code == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert "alpha must be a number in [0, 1], got 2" in err and "1 sweep job(s) failed" in err
    assert metrics(tmp_path / "0")["status"] == "failed"
    assert metrics(tmp_path / "1")["status"] == "ok"


# ---------------------------------------------------------------------------------------------
# An output location that cannot be written: reported before anything is trained


def test_unwritable_run_folder(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    assert train(monkeypatch, blocker / "run") == 1
    line = one_error_line(capsys.readouterr().err)
    assert "cannot write the output location" in line and str(blocker / "run") in line


def test_unwritable_default_output_folder(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    (tmp_path / "outputs").write_text("")  # outputs/ is a file: no run folder can be made
    monkeypatch.chdir(tmp_path)
    assert run_bnnlv(monkeypatch, "train", *TINY) == 1
    line = one_error_line(capsys.readouterr().err)
    assert "cannot write the output location" in line and "outputs/" in line
    assert (tmp_path / "outputs").is_file()


# ---------------------------------------------------------------------------------------------
# Interrupts: a real signal to a real process


def start_training(run_dir: Path) -> subprocess.Popen[str]:
    """``bnnlv train`` that would run for hours, saving a checkpoint every epoch; returns once
    the first checkpoint exists (training is under way). SIGINT is restored to its default so
    that Python raises KeyboardInterrupt even when this test runs in a background job."""
    process = subprocess.Popen(
        [sys.executable, "-m", "bnnlv.runs.cli", "train", *TINY, "trainer.max_epochs=1000000",
         "checkpoint_every=1", f"hydra.run.dir={run_dir}"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )  # fmt: skip
    deadline = time.monotonic() + 120
    while not (run_dir / "checkpoints/last.ckpt").exists():
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise AssertionError(f"training did not start: {process.communicate()}")
        time.sleep(0.1)
    time.sleep(0.3)
    return process


# SIGINT takes the same path (both are a KeyboardInterrupt inside Lightning's fit): slow only.
@pytest.mark.parametrize(
    "signum",
    [signal.SIGTERM, pytest.param(signal.SIGINT, marks=pytest.mark.slow)],
    ids=["SIGTERM", "SIGINT"],
)
def test_interrupt_saves_a_checkpoint_and_marks_the_run(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    signum: signal.Signals,
) -> None:
    run_dir = tmp_path / "run"
    process = start_training(run_dir)
    process.send_signal(signum)
    _, err = process.communicate(timeout=120)
    assert process.returncode == 128 + signum
    assert "Traceback" not in err
    last = err.strip().splitlines()[-1]
    assert last.startswith(f"bnnlv: interrupted by {signum.name} at epoch ")
    record = metrics(run_dir)
    assert record["status"] == "interrupted" and signum.name in record["error"]
    assert record["checkpoint"] == "checkpoints/last.ckpt"
    saved = load_checkpoint(run_dir / record["checkpoint"])
    # the default model steps two optimisers (weights, per-point table) per update
    assert (saved["epoch"], saved["global_step"]) == (record["epoch"], 2 * record["step"])
    assert not list(run_dir.rglob("*.tmp"))
    if signum == signal.SIGTERM:  # resume=<dir> finishes it (in-process: faster)
        stop = record["epoch"] + 2
        code = run_bnnlv(monkeypatch, "train", f"resume={run_dir}",
                         f"trainer.max_epochs={stop}")  # fmt: skip
        assert code == 0, capsys.readouterr().err
        assert metrics(run_dir)["status"] == "ok"
        assert load_checkpoint(run_dir / "checkpoints/last.ckpt")["epoch"] == stop


# ---------------------------------------------------------------------------------------------
# Untrusted run folders: evaluate and resume= refuse what could run code, and run none of it


class Touch:
    """Unpickling this creates ``marker``: what a hostile checkpoint could do."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (Path.touch, (self.marker,))


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    run_dir = tmp_path_factory.mktemp("trained") / "run"
    with pytest.MonkeyPatch.context() as patch:
        assert train(patch, run_dir) == 0
    return run_dir


def hostile_copy(run_dir: Path, tmp_path: Path, part: str) -> tuple[Path, Path]:
    """A copy of a run whose config or checkpoint would create ``marker`` if trusted."""
    copy, marker = tmp_path / "stranger", tmp_path / "code_ran"
    shutil.copytree(run_dir, copy)
    if part == "config":  # a nested target: Hydra calls it before the data module
        text = (copy / "config.yaml").read_text()
        text = text.replace("data:\n", f"data:\n  hook:\n    _target_: pathlib.Path.touch\n"
                                       f"    _args_: ['{marker}']\n", 1)  # fmt: skip
        (copy / "config.yaml").write_text(text)
    else:
        torch.save({"state_dict": Touch(marker)}, copy / "checkpoints/last.ckpt")
    return copy, marker


@pytest.mark.parametrize("command", ["evaluate", "train"])
@pytest.mark.parametrize("part", ["config", "checkpoint"])
def test_a_strangers_run_folder_cannot_run_code(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    trained_run: Path,
    command: str,
    part: str,
) -> None:
    stranger, marker = hostile_copy(trained_run, tmp_path, part)
    arg = f"run_dir={stranger}" if command == "evaluate" else f"resume={stranger}"
    assert run_bnnlv(monkeypatch, command, arg) == 1
    line = one_error_line(capsys.readouterr().err)
    assert not marker.exists()
    if part == "config":
        assert "data.hook._target_='pathlib.Path.touch' is not allowed" in line
    else:
        assert "refused" in line and "weights_only=True" in line


# ---------------------------------------------------------------------------------------------
# describe(), the piece the lines above are made of


def test_describe_unwraps_to_the_innermost_reason() -> None:
    with pytest.raises(InstantiationException) as wrapped:
        instantiate({"_target_": "bnnlv.data.toy.ToyHeteroscedastic", "n_points": 5})
    assert describe(wrapped.value) == "data.n_points must be an integer >= 10, got 5"
    assert describe(FileNotFoundError(2, "No such file or directory", "/x.csv")) == (
        "No such file or directory: /x.csv"
    )
    assert describe(ValueError("first line\nsecond line")) == "first line"
    assert describe(KeyboardInterrupt()) == "interrupted by SIGINT"
    assert describe(RuntimeError("")) == "RuntimeError"


def test_hydra_full_error_set_by_the_user_shows_hydras_own_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("HYDRA_FULL_ERROR", "1")
    with pytest.raises(MissingConfigException):
        train(monkeypatch, tmp_path, "model=foo")
    assert os.environ["HYDRA_FULL_ERROR"] == "1"


# ---------------------------------------------------------------------------------------------
# Ctrl-C or SIGTERM before training: during the imports of torch and Lightning, or while Hydra
# sets the run up. One line, 128 + signal, and nothing left that looks like a run.

PROC_STATUS = Path("/proc/self/status")


def catches_sigterm(pid: int) -> bool:
    """Whether process ``pid`` handles SIGTERM: Python leaves it at the default, so a handler
    there is bnnlv's (bnnlv.runs.interrupts), installed before anything heavy is imported."""
    status = Path(f"/proc/{pid}/status").read_text()
    found = re.search(r"^SigCgt:\s*([0-9a-f]+)$", status, flags=re.MULTILINE)
    return found is not None and bool(int(found.group(1), 16) >> (signal.SIGTERM - 1) & 1)


@pytest.mark.skipif(not PROC_STATUS.exists(), reason="reads the signal mask from /proc")
@pytest.mark.parametrize(
    ("signum", "delay"),
    [(signal.SIGINT, 0.0), (signal.SIGINT, 0.2), (signal.SIGINT, 0.8), (signal.SIGTERM, 0.0),
     (signal.SIGTERM, 0.5)],
    ids=["SIGINT-at-once", "SIGINT-0.2s", "SIGINT-0.8s", "SIGTERM-at-once", "SIGTERM-0.5s"],
)  # fmt: skip
def test_an_interrupt_during_the_imports_is_one_line(
    tmp_path: Path, signum: signal.Signals, delay: float
) -> None:
    """``delay`` seconds after bnnlv took over the signals (Python is up: the imports of Hydra,
    torch and Lightning are still to come). Whatever it cuts, the user reads one line; a run folder
    is left only if the run had trained, and then it says ``interrupted``."""
    process = subprocess.Popen(
        [sys.executable, "-m", "bnnlv", "train", *TINY, "trainer.max_epochs=1000000"],
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )  # fmt: skip
    deadline = time.monotonic() + 60
    while process.poll() is None and not catches_sigterm(process.pid):
        assert time.monotonic() < deadline, "bnnlv never installed its signal handlers"
        time.sleep(0.001)
    time.sleep(delay)
    process.send_signal(signum)
    out, err = process.communicate(timeout=120)
    assert process.returncode == 128 + signum, err
    assert err.count("\n") == 1 and err.startswith(f"bnnlv: interrupted by {signum.name}"), err
    assert "Traceback" not in out + err and "FakeTensor" not in out + err
    for run in (tmp_path / "outputs").glob("*"):
        assert metrics(run)["status"] == "interrupted"


def test_an_interrupt_that_a_library_turned_into_an_error_is_still_one_interrupt_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Ctrl-C inside OmegaConf while Hydra composes the config: the library's cleanup failed on
    its half-made node and raised an AttributeError in place of the interrupt. The user still
    reads one ``interrupted`` line, with exit 130, not an ``error:`` line with exit 1."""
    monkeypatch.setitem(cli.COMMANDS, "train", (HalfMade, "cut short"))
    with pytest.raises(SystemExit) as stopped:
        cli.main(["train"])
    assert stopped.value.code == 130
    assert capsys.readouterr().err == "bnnlv: interrupted by SIGINT\n"


def test_resume_of_a_run_stopped_before_training_says_what_to_do(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """A sweep job stopped during the imports keeps its folder (for the summary), with no
    checkpoint: resume= says so in one line and how to start it again."""
    (tmp_path / ".hydra").mkdir()
    (tmp_path / "metrics.json").write_text('{"status": "interrupted"}')
    assert run_bnnlv(monkeypatch, "train", f"resume={tmp_path}") == 1
    line = one_error_line(capsys.readouterr().err)
    assert "stopped before it began" in line and "start it again" in line
