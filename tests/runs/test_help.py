"""bnnlv.runs.help: one line for every key of every config a command can compose, none stale."""

from __future__ import annotations

from typing import Any

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from bnnlv.runs.folders import config_dir, register_resolvers
from bnnlv.runs.help import GROUP_HELP, KEY_HELP, command_help, config_options, leaf_keys, show

TRAIN_GROUPS = ["model", "data", "prior", "trainer", "experiment", "hparams_search", "launcher"]
GROUPS = {"train": TRAIN_GROUPS, "evaluate": ["data"], "predict": ["data"],
          "policy": [*TRAIN_GROUPS, "policy"], "active": [*TRAIN_GROUPS, "active"]}  # fmt: skip


def composed_keys(command: str, overrides: list[str]) -> set[str]:
    register_resolvers()
    with initialize_config_dir(config_dir=config_dir(), version_base="1.3"):
        cfg = compose(config_name=command, overrides=overrides)
    values = OmegaConf.to_container(cfg, resolve=False)
    assert isinstance(values, dict)
    return {key for key, _ in leaf_keys({str(k): v for k, v in values.items()})}


def every_config() -> list[Any]:
    """Each command alone and with each option of each of its groups."""
    cases = []
    for command, groups in GROUPS.items():
        cases.append(pytest.param(command, [], id=command))
        for group in groups:
            for option in config_options(group):
                override = f"{group}={option}"
                cases.append(pytest.param(command, [override], id=f"{command}-{override}"))
    return cases


CONFIGS = every_config()


@pytest.mark.parametrize(("command", "overrides"), CONFIGS)
def test_every_key_has_a_one_line_description(command: str, overrides: list[str]) -> None:
    missing = composed_keys(command, overrides) - KEY_HELP.keys()
    assert not missing, f"add these keys to bnnlv.runs.help.KEY_HELP: {sorted(missing)}"


def test_no_description_is_stale() -> None:
    seen: set[str] = set()
    for case in CONFIGS:
        seen |= composed_keys(*case.values)  # type: ignore[arg-type]
    assert not KEY_HELP.keys() - seen
    assert all("\n" not in text and len(text) <= 100 for text in KEY_HELP.values())
    assert set(GROUP_HELP) == {group for groups in GROUPS.values() for group in groups}


def test_help_shows_the_current_values_and_choices() -> None:
    text = command_help("train", ["model=bnn", "alpha=0.25"])
    assert "\n  model: bnn, bnn_lv, ensemble, het_mlp, mlp [bnn]\n" in text
    assert "\n  alpha=0.25\n      α of the" in text and "\n  model.alpha=${alpha}\n" in text
    assert "\n  experiment: seed_tutorial [none]\n" in text


@pytest.mark.parametrize(
    ("value", "typed"),
    [(None, "null"), (True, "true"), ([40, 40], "[40,40]"), ("all", "all"), (0.5, "0.5")],
)
def test_values_are_shown_as_they_are_typed(value: object, typed: str) -> None:
    assert show(value) == typed
