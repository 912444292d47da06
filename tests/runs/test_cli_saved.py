"""Saved runs through the ``bnnlv`` command: evaluate, predict, resume, and same seed → same
metrics.json (timings excluded: every timing key ends in ``_seconds``)."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import torch

from bnnlv.model.lit_module import BNNLV
from tests.cli_inprocess import TINY, run_bnnlv, stopping_at_epoch

SHUFFLED = [*TINY, "data.batch_size=10", "trainer.check_val_every_n_epoch=1"]  # 5 steps an epoch


def metrics_of(folder: Path) -> dict[str, Any]:
    return dict(json.loads((folder / "metrics.json").read_text()))


def without_timings(metrics: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in metrics.items() if not k.endswith("_seconds")}


def stop_and_resume(monkeypatch: pytest.MonkeyPatch, folder: Path, settings: list[str]) -> None:
    """Train ``settings`` into ``folder``, stopped when epoch 1 begins (saved every epoch), then
    ``resume=`` it to the end."""
    with monkeypatch.context() as patch:
        patch.setattr(BNNLV, "on_train_epoch_start", stopping_at_epoch(1))
        code = run_bnnlv(patch, "train", *settings, "checkpoint_every=1",
                         f"hydra.run.dir={folder}")  # fmt: skip
    assert code == 1
    assert metrics_of(folder)["status"] == "failed" and metrics_of(folder)["epoch"] == 1
    assert run_bnnlv(monkeypatch, "train", f"resume={folder}") == 0


@pytest.fixture(scope="module")
def saved_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    run_dir = tmp_path_factory.mktemp("saved") / "run"
    with pytest.MonkeyPatch.context() as patch:
        assert run_bnnlv(patch, "train", *SHUFFLED, f"hydra.run.dir={run_dir}") == 0
    return run_dir


def test_checkpoint_loads_with_default_torch_loading(saved_run: Path) -> None:
    checkpoint = torch.load(saved_run / "checkpoints" / "last.ckpt")  # weights_only by default
    assert all(isinstance(v, (int, float, str, list, type(None)))
               for v in checkpoint["hyper_parameters"].values())  # fmt: skip
    model = BNNLV(**checkpoint["hyper_parameters"])
    model.load_state_dict(checkpoint["state_dict"])
    assert checkpoint["bnnlv"]["feature_names"] == ["x"]


def test_same_seed_gives_the_same_metrics(
    saved_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    again = tmp_path / "again"
    assert run_bnnlv(monkeypatch, "train", *SHUFFLED, f"hydra.run.dir={again}") == 0
    assert without_timings(metrics_of(again)) == without_timings(metrics_of(saved_run))
    assert set(metrics_of(again)) - set(without_timings(metrics_of(again))) == {"fit_seconds"}


def test_evaluate_reproduces_the_run_metrics(
    saved_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "eval"
    code = run_bnnlv(monkeypatch, "evaluate", f"run_dir={saved_run}", "plots=true",
                     f"hydra.run.dir={out}")  # fmt: skip
    assert code == 0
    run, again = metrics_of(saved_run), metrics_of(out)
    scores = [k for k in run if k.startswith(("test_", "val_"))]
    assert scores and {k: again[k] for k in scores} == {k: run[k] for k in scores}
    assert (out / "fit.png").is_file() and (out / "predictions.csv").is_file()


def test_evaluate_on_another_data_config(
    saved_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "other"
    code = run_bnnlv(monkeypatch, "evaluate", f"run_dir={saved_run}", "data=toy_heteroscedastic",
                     "data.n_points=200", "data.noise_seed=7", f"hydra.run.dir={out}",
                     "plots=false")  # fmt: skip
    assert code == 0
    assert len(pd.read_csv(out / "predictions.csv")) == 40  # ⌈0.2 · 200⌉ test points
    assert metrics_of(out)["test_nll"] != metrics_of(saved_run)["test_nll"]


def test_evaluate_without_a_run_folder_fails_in_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "empty").mkdir()
    code = run_bnnlv(monkeypatch, "evaluate", f"run_dir={tmp_path / 'empty'}",
                     f"hydra.run.dir={tmp_path / 'out'}")  # fmt: skip
    assert code == 1
    err = capsys.readouterr().err
    assert "not a bnnlv run folder" in err and "Traceback" not in err
    assert run_bnnlv(monkeypatch, "evaluate", f"run_dir={tmp_path / 'empty'}") == 1
    assert not list((tmp_path / "empty").iterdir())  # no evaluate/<date>_<time>/ left behind


def test_predict_new_inputs_in_original_units(
    saved_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tested = pd.read_csv(saved_run / "predictions.csv")
    inputs = tmp_path / "new.csv"
    pd.DataFrame({"id": range(len(tested)), "x": tested["x"]}).to_csv(inputs, index=False)
    out = tmp_path / "pred"
    code = run_bnnlv(monkeypatch, "predict", f"run_dir={saved_run}", "data=csv",
                     f"data.path={inputs}", f"hydra.run.dir={out}")  # fmt: skip
    assert code == 0
    predicted = pd.read_csv(out / "predictions.csv")
    assert list(predicted.columns) == ["row", "id", "x", "mean", "std", "epistemic_std",
                                       "aleatoric_std", "q05", "q95"]  # fmt: skip
    assert predicted["row"].tolist() == list(range(1, len(tested) + 1))
    # the same inputs and seed as the run's own test predictions: the same numbers
    for column in ("mean", "std", "epistemic_std", "aleatoric_std", "q05", "q95"):
        assert predicted[column].to_numpy() == pytest.approx(tested[column].to_numpy(), rel=1e-9)
    total = (predicted["epistemic_std"] ** 2 + predicted["aleatoric_std"] ** 2) ** 0.5
    assert predicted["std"].to_numpy() == pytest.approx(total.to_numpy())


def test_predict_rejections(
    saved_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    wrong = tmp_path / "wrong.csv"
    wrong.write_text("u,v\n1,2\n")
    out = f"hydra.run.dir={tmp_path / 'out'}"
    assert run_bnnlv(monkeypatch, "predict", f"run_dir={saved_run}", out) == 1
    assert "data=csv data.path=FILE" in capsys.readouterr().err
    code = run_bnnlv(monkeypatch, "predict", f"run_dir={saved_run}", "data=csv",
                     f"data.path={wrong}", out)  # fmt: skip
    assert code == 1
    assert "input column 'x' is not in the header" in capsys.readouterr().err


def test_resume_after_a_stop_reaches_the_uninterrupted_metrics(
    saved_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    stopped = tmp_path / "stopped"
    stop_and_resume(monkeypatch, stopped, SHUFFLED)
    assert without_timings(metrics_of(stopped)) == without_timings(metrics_of(saved_run))
    log = pd.read_csv(stopped / "logs" / "metrics.csv")
    assert sorted(log["train/energy_per_point"].dropna().index.map(log["epoch"])) == [0, 1]
    assert (stopped / ".hydra" / "overrides.yaml").read_text().count("resume=") == 0


def test_resume_can_train_longer_but_keeps_its_config(
    saved_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    assert run_bnnlv(monkeypatch, "train", f"resume={saved_run}", "model=mlp") == 1
    assert "cannot be combined with resume=" in capsys.readouterr().err
    assert run_bnnlv(monkeypatch, "train", f"resume={tmp_path}") == 1
    assert "not a bnnlv run folder" in capsys.readouterr().err
    longer = tmp_path / "longer"
    assert run_bnnlv(monkeypatch, "train", *SHUFFLED, f"hydra.run.dir={longer}") == 0
    assert run_bnnlv(monkeypatch, "train", f"resume={longer}", "trainer.max_epochs=3") == 0
    assert metrics_of(longer)["epochs"] == 3 and metrics_of(longer)["status"] == "ok"


LEGACY_RUN = Path(__file__).resolve().parents[1] / "fixtures" / "run_v0_1_0"


def test_a_run_saved_before_the_package_split_still_evaluates_and_resumes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """tests/fixtures/run_v0_1_0 was written by bnnlv 0.1.0 with the flat layout (its config names
    the model ``bnnlv.module.BNNLV``): evaluate re-scores it to the metrics it recorded, and a
    resume trains on from its checkpoint."""
    run = tmp_path / "run"
    shutil.copytree(LEGACY_RUN, run)
    assert "bnnlv.module.BNNLV" in (run / "config.yaml").read_text()
    out = tmp_path / "eval"
    assert run_bnnlv(monkeypatch, "evaluate", f"run_dir={run}", f"hydra.run.dir={out}") == 0
    recorded, again = metrics_of(run), metrics_of(out)
    for key in ("test_nll", "test_nll_standardised", "test_rmse", "test_r2", "test_crps"):
        assert again[key] == pytest.approx(recorded[key], rel=1e-12), key
    code = run_bnnlv(monkeypatch, "train", f"resume={run}", "trainer.max_epochs=102")
    assert code == 0
    assert metrics_of(run)["status"] == "ok" and metrics_of(run)["epochs"] == 102


@pytest.mark.parametrize("mask", [0o022, 0o077])
def test_every_file_of_a_run_follows_the_umask(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mask: int
) -> None:
    """Result files, checkpoint, figures and Hydra's record alike (evaluate and predict write
    through the same functions)."""
    run = tmp_path / "run"
    previous = os.umask(mask)
    try:
        code = run_bnnlv(monkeypatch, "train", *TINY, "plots=true", "checkpoint_every=1",
                         f"hydra.run.dir={run}")  # fmt: skip
    finally:
        os.umask(previous)
    assert code == 0
    files = [p for p in run.rglob("*") if p.is_file()]
    names = {p.name for p in files}
    assert {"metrics.json", "predictions.csv", "config.yaml", "last.ckpt", "fit.png"} <= names
    modes = {str(p.relative_to(run)): oct(p.stat().st_mode & 0o777) for p in files}
    assert modes == dict.fromkeys(modes, oct(0o666 & ~mask))


def _site_table(path: Path, rows: int, sites: tuple[str, ...], seed: int) -> Path:
    """a (a number), site (text), y; a few empty cells in a at rows 3 and 7."""
    rng = np.random.default_rng(seed)
    a, site = rng.normal(size=rows).round(3), rng.choice(sites, rows)
    y = (2 * a + 3 * (site == sites[0]) + 0.3 * rng.normal(size=rows)).round(3)
    frame = pd.DataFrame({"site": site, "a": a.astype(str), "y": y})
    frame.loc[[2, 6], "a"] = ""
    frame.to_csv(path, index=False)
    return path


@pytest.fixture(scope="module")
def csv_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("csv")
    table = _site_table(folder / "train.csv", 80, ("north", "south", "east"), seed=0)
    settings = ["trainer.max_epochs=2", "model.hidden=[8]", "model.n_samples_test=5",
                "model.n_latent_test=2", "plots=false", "progress_bar=false"]  # fmt: skip
    with pytest.MonkeyPatch.context() as patch:
        code = run_bnnlv(patch, "train", "data=csv", f"data.path={table}", "data.targets=[y]",
                         "data.categorical=[site]", "data.missing=drop", *settings,
                         f"hydra.run.dir={folder / 'run'}")  # fmt: skip
    assert code == 0
    return folder / "run"


def test_a_csv_run_keeps_its_categories_in_a_safe_checkpoint(csv_run: Path) -> None:
    checkpoint = torch.load(csv_run / "checkpoints" / "last.ckpt")  # weights_only by default
    assert checkpoint["bnnlv"]["inputs"] == ["site", "a"]
    assert checkpoint["bnnlv"]["categories"] == {"site": ["east", "north", "south"]}
    predicted = pd.read_csv(csv_run / "predictions.csv")
    assert not {3, 7} & set(predicted["row"])  # dropped for their empty cell
    source = pd.read_csv(csv_run.parent / "train.csv")
    assert (source.loc[predicted["row"] - 1, "y"].to_numpy() == predicted["y"].to_numpy()).all()


def test_evaluate_on_a_new_csv_scores_every_row_with_the_runs_columns(
    csv_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    """Issue 12: a labelled hold-out file given to evaluate is not split again; targets, inputs
    and categories are the run's; no training-set warnings (the log goes to stdout)."""
    holdout = _site_table(tmp_path / "holdout.csv", 100, ("north", "south"), seed=1)
    out = tmp_path / "scored"
    code = run_bnnlv(monkeypatch, "evaluate", f"run_dir={csv_run}", "data=csv", "data.missing=drop",
                     f"data.path={holdout}", f"hydra.run.dir={out}")  # fmt: skip
    assert code == 0
    log = capsys.readouterr().out
    scored = pd.read_csv(out / "predictions.csv")
    assert scored["row"].tolist() == [r for r in range(1, 101) if r not in (3, 7)]
    assert list(scored.columns[:6]) == ["row", "site=east", "site=north", "site=south", "a", "y"]
    assert (scored["site=east"] == 0).all() and {"q05", "q95"} <= set(scored.columns)
    assert "dropped 2 of 100 rows" in log and "larger than" not in log
    assert metrics_of(out)["status"] == "ok" and metrics_of(out)["val_nll"] is None


def test_a_failed_evaluate_leaves_no_folder_and_names_the_unseen_category(
    csv_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    unseen = _site_table(tmp_path / "unseen.csv", 10, ("west", "north"), seed=2)
    code = run_bnnlv(monkeypatch, "evaluate", f"run_dir={csv_run}", "data=csv",
                     f"data.path={unseen}")  # fmt: skip
    assert code == 1
    assert ("unseen.csv: column 'site', row 1: category 'west' was not seen in training; known "
            "categories: ['east', 'north', 'south']") in capsys.readouterr().err  # fmt: skip
    assert not (csv_run / "evaluate").exists()
    assert run_bnnlv(monkeypatch, "predict", f"run_dir={csv_run}", "data=csv",
                     f"data.path={unseen}") == 1  # fmt: skip
    assert not (csv_run / "predict").exists()


def test_predict_encodes_new_rows_as_the_run_did(
    csv_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    new = tmp_path / "new.csv"
    new.write_text("id,place,a\n7,north,0.5\n8,south,\n9,east,-1\n")
    out = tmp_path / "predicted"
    code = run_bnnlv(monkeypatch, "predict", f"run_dir={csv_run}", "data=csv", f"data.path={new}",
                     "data.features=[place,a]", "data.missing=drop",
                     f"hydra.run.dir={out}")  # fmt: skip
    assert code == 0
    predicted = pd.read_csv(out / "predictions.csv")
    assert predicted["row"].tolist() == [1, 3] and predicted["id"].tolist() == [7, 9]
    assert list(predicted.columns[:4]) == ["row", "id", "place", "a"]


def test_an_ensemble_run_evaluates_predicts_and_resumes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """model=ensemble through every command: the same predictions.csv columns as bnn_lv's, the
    members' disagreement as epistemic std, evaluate re-scoring to the same metrics, predict,
    and resume= continuing to the metrics of a run never stopped."""
    ensemble = [*SHUFFLED, "model=ensemble", "model.members=3"]
    run = tmp_path / "run"
    assert run_bnnlv(monkeypatch, "train", *ensemble, f"hydra.run.dir={run}") == 0
    tested = pd.read_csv(run / "predictions.csv")
    columns = ["row", "x", "y", "mean", "std", "epistemic_std", "aleatoric_std", "q05", "q95",
               "entropy_total", "entropy_aleatoric", "entropy_epistemic", "nll"]  # fmt: skip
    assert list(tested.columns) == columns  # as bnn_lv's
    assert (tested["epistemic_std"] > 0).all() and (tested["entropy_epistemic"] >= 0).all()
    out = tmp_path / "eval"
    assert run_bnnlv(monkeypatch, "evaluate", f"run_dir={run}", f"hydra.run.dir={out}") == 0
    assert metrics_of(out)["test_nll"] == metrics_of(run)["test_nll"]
    inputs = tmp_path / "new.csv"
    pd.DataFrame({"x": tested["x"]}).to_csv(inputs, index=False)
    code = run_bnnlv(monkeypatch, "predict", f"run_dir={run}", "data=csv",
                     f"data.path={inputs}", f"hydra.run.dir={tmp_path / 'pred'}")  # fmt: skip
    assert code == 0
    predicted = pd.read_csv(tmp_path / "pred" / "predictions.csv")
    assert predicted["std"].to_numpy() == pytest.approx(tested["std"].to_numpy(), rel=1e-9)
    stopped = tmp_path / "stopped"
    stop_and_resume(monkeypatch, stopped, ensemble)
    assert without_timings(metrics_of(stopped)) == without_timings(metrics_of(run))
