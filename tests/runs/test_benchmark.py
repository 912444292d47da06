"""Benchmark plumbing: summary statistics by hand, tables, option parsing, the grouping of runs
onto the replica axis, and real tiny runs through the composed config (the same path
``scripts/bench_*.py`` take), grouped and alone."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from bnnlv.runs import benchmark
from bnnlv.runs.benchmark import (
    MODELS,
    QUIET,
    Job,
    Stopwatch,
    choices,
    compose_config,
    epochs_override,
    format_mean_se,
    groups,
    int_list,
    job_config,
    markdown_table,
    mean_se,
    parser,
    run_jobs,
    run_note,
    write_report,
)

TINY = ("data=toy_bimodal", "data.n_points=40", "data.batch_size=40", "trainer.max_epochs=2",
        "model.hidden=[4]", "model.n_samples_test=2", "model.n_latent_test=2")  # fmt: skip


def test_mean_se_by_hand() -> None:
    # values 1, 2, 3, 6: mean 3, population variance (4 + 1 + 0 + 9) / 4 = 3.5, se = √3.5 / 2
    mean, se = mean_se([1.0, 2.0, 3.0, 6.0])
    assert mean == 3.0 and se == pytest.approx(math.sqrt(3.5) / 2)
    assert mean_se([5.0]) == (5.0, 0.0)
    assert all(math.isnan(v) for v in mean_se([math.nan]))


def test_format_mean_se_counts_missing_runs() -> None:
    assert format_mean_se([1.0, 3.0]) == "2.000 ± 0.707"  # std 1, n 2
    assert format_mean_se([1.0, math.nan, 3.0], digits=1) == "2.0 ± 0.7 (2/3 runs)"
    assert format_mean_se([math.nan]) == "–"


def test_markdown_table_and_ragged_rows() -> None:
    assert markdown_table(["a", "b"], [["1", "2"]]) == "| a | b |\n| --- | --- |\n| 1 | 2 |"
    with pytest.raises(ValueError, match="2 cells"):
        markdown_table(["a", "b", "c"], [["1", "2"]])


def test_int_list() -> None:
    assert int_list("0-2,5") == [0, 1, 2, 5]
    assert int_list("7") == [7]


def test_a_jobs_values_are_its_overrides_the_last_of_a_key_winning() -> None:
    job = Job("a", ("model=mlp", "trainer.max_epochs=5", "x.y=a=b", "trainer.max_epochs=2"))
    assert job.values == {"model": "mlp", "trainer.max_epochs": "2", "x.y": "a=b"}


def test_compose_config_applies_overrides() -> None:
    cfg = compose_config(["data=wet_chicken", "model=bnn", "model.hidden=[7]"])
    assert cfg.data._target_ == "bnnlv.data.wet_chicken.WetChicken"
    assert cfg.model.latent == "none" and list(cfg.model.hidden) == [7]
    for name in ("toy_bimodal", "uci", "csv"):
        assert compose_config([f"data={name}"]).data._target_.startswith("bnnlv.data.")


def test_job_config_composes_once_for_jobs_that_differ_in_run_keys(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    jobs = [Job("a", ("data=uci", "data.split=3", "seed=4")),
            Job("b", ("data=wet_chicken", "seed=2", "data.noise_seed=2", "seed=5")),
            Job("c", ("model=ensemble", "model.lr=1e-3"))]  # fmt: skip
    for job in jobs:  # the same config as Hydra's compose of every override
        assert job_config(job) == compose_config([*QUIET, *job.overrides])
    job_config(Job("d", ("data=toy_bimodal",)))
    composed: list[tuple[str, ...]] = []
    monkeypatch.setattr(benchmark, "compose_config", lambda o, c: composed.append(tuple(o)))
    for split in (5, 6):  # cached: no compose, its own split on a copy
        cfg = job_config(Job("a", ("data=uci", f"data.split={split}", "seed=4")))
        assert (cfg.data.split, cfg.seed) == (split, 4)
    assert job_config(Job("a", ("data=uci", "seed=4"))).data.split == 0  # the cache untouched
    assert composed == []
    job_config(Job("d", ("data=toy_bimodal", "data.split=3")))  # no such key: Hydra's compose
    assert composed == [(*QUIET, "data=toy_bimodal", "data.split=3")]


def test_run_jobs_trains_and_reports_failures(tmp_path: Path) -> None:
    tiny = TINY
    jobs = [Job("ok", tiny), Job("bad", (*tiny, "data.n_points=3"))]
    seen: list[str] = []
    results = run_jobs(jobs, tmp_path, report=lambda job, m: seen.append(job.label))
    assert seen == ["ok", "bad"]
    assert results["ok"]["status"] == "ok" and math.isfinite(results["ok"]["test_nll"])
    assert (tmp_path / "ok" / "metrics.json").is_file()
    assert results["bad"]["status"] == "failed" and "n_points" in results["bad"]["error"]
    with pytest.raises(ValueError, match="unique"):
        run_jobs([Job("x", tiny), Job("x", tiny)], tmp_path)


def test_write_report(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write_report("demo", "# title\n\n| a |\n", tmp_path)
    assert path == tmp_path / "demo.md" and path.read_text() == "# title\n\n| a |\n"
    assert "# title" in capsys.readouterr().out


def test_choices_and_the_no_group_option(capsys: pytest.CaptureFixture[str]) -> None:
    cli = parser("demo")
    assert choices(cli, "mlp,bnn", list(MODELS), "model row") == ["mlp", "bnn"]
    with pytest.raises(SystemExit) as stop:
        choices(cli, "mlp,ens", list(MODELS), "model row")
    assert stop.value.code == 2
    assert "unknown model row 'ens'; choose from ['bnn_lv'," in capsys.readouterr().err
    assert cli.parse_args([]).group and epochs_override(cli.parse_args([])) == ()
    assert cli.parse_args([]).jobs == benchmark.cores() >= 1  # every core, a run on each
    args = cli.parse_args(["--no-group", "--jobs", "1", "--epochs", "3", "model.lr=1"])
    assert epochs_override(args) == ("trainer.max_epochs=3",)
    note = run_note(args, Stopwatch())
    assert note.startswith("Extra overrides: ['model.lr=1']; epochs: 3. Wall time 0.0 min (1 job")
    assert note.endswith("every run trained alone (--no-group)).")


def test_groups_join_runs_that_differ_only_in_seed_split_or_data_draw() -> None:
    seeds = [Job(f"s{s}", (*TINY, f"seed={s}", f"data.noise_seed={s}")) for s in range(3)]
    other = Job("mlp", (*TINY, "model=mlp"))
    bad = Job("bad", (*TINY, "model.lr=-1"))
    policy = Job("policy", TINY, runner="bnnlv.policy.run.run_policy")
    together = groups([seeds[0], other, seeds[1], bad, policy, seeds[2]])
    assert [[job.label for job in group] for group in together] == [
        ["s0", "s1", "s2"], ["mlp"], ["bad"], ["policy"]
    ]  # fmt: skip
    assert [len(group) for group in groups(seeds, together=False)] == [1, 1, 1]


def test_grouped_runs_give_the_figures_of_runs_alone(tmp_path: Path) -> None:
    jobs = [Job(f"seed{s}", (*TINY, f"seed={s}")) for s in (0, 1)]
    grouped = run_jobs(jobs, tmp_path / "grouped")
    alone = run_jobs(jobs, tmp_path / "alone", group=False)
    for label, metrics in alone.items():
        assert grouped[label]["status"] == metrics["status"] == "ok"
        for key in ("test_nll", "test_rmse", "test_nll_standardised"):
            assert grouped[label][key] == pytest.approx(metrics[key], rel=1e-5), key
        share = grouped[label]["fit_seconds_per_run"]
        assert share == pytest.approx(grouped[label]["fit_seconds"] / 2)
        assert metrics["fit_seconds_per_run"] == metrics["fit_seconds"]
    assert grouped["seed0"]["test_nll"] != grouped["seed1"]["test_nll"]
    assert (tmp_path / "grouped" / "seed1" / "predictions.csv").is_file()


def test_worker_processes_give_the_figures_of_one_process(tmp_path: Path) -> None:
    jobs = [Job(f"{m}{s}", (*TINY, f"model={m}", f"seed={s}")) for m in ("mlp", "bnn_lv")
            for s in (0, 1)]  # fmt: skip
    here = run_jobs(jobs, tmp_path / "here")
    workers = run_jobs(jobs, tmp_path / "workers", n_workers=2)  # two groups, each in a worker
    assert list(workers) == [job.label for job in jobs]
    for label, metrics in here.items():
        assert workers[label]["status"] == metrics["status"] == "ok"
        assert workers[label]["test_nll"] == metrics["test_nll"], label  # same seeds, same numbers
        assert (tmp_path / "workers" / label / "metrics.json").is_file()


def test_a_group_that_fails_fails_every_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(cfgs: object, run_dirs: object) -> None:
        raise RuntimeError("out of memory")

    monkeypatch.setattr("bnnlv.runs.train.train_replicas", broken)
    jobs = [Job(f"seed{s}", (*TINY, f"seed={s}")) for s in (0, 1)]
    results = run_jobs(jobs, tmp_path)
    assert [r["error"] for r in results.values()] == ["RuntimeError: out of memory"] * 2
