"""bnnlv.model.choices: the model's named choices, importable without torch."""

from __future__ import annotations

import subprocess
import sys

import pytest

from bnnlv.model.choices import layer_names, select_layers

NAMES = ["layer0", "layer1", "layer2"]


@pytest.mark.parametrize(
    ("selector", "chosen"),
    [
        ("all", {0, 1, 2}),
        (None, {0, 1, 2}),
        ([], set()),
        ([-1], {2}),
        ([0, -1], {0, 2}),
        ([-3], {0}),
        (["layer1"], {1}),
        ("layer1", {1}),
        ([0, "layer2"], {0, 2}),
    ],
)
def test_select_layers(selector: object, chosen: set[int]) -> None:
    assert select_layers(selector, NAMES) == chosen  # type: ignore[arg-type]


@pytest.mark.parametrize("selector", [[3], [-4], ["layer9"], "hidden", [True]])
def test_select_layers_rejects_a_selector_naming_no_layer(selector: object) -> None:
    bad = selector if isinstance(selector, str) else selector[0]  # type: ignore[index]
    with pytest.raises(ValueError, match=repr(bad) if isinstance(bad, str) else str(bad)):
        select_layers(selector, NAMES)  # type: ignore[arg-type]


def test_layer_names_count_the_output_layer() -> None:
    assert layer_names(2) == NAMES and layer_names(0) == ["layer0"]


def test_importing_the_choices_does_not_import_torch() -> None:
    """The run's config is checked with these before torch is imported (a second or so)."""
    code = "import sys, bnnlv.model.choices; print('torch' in sys.modules)"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "False"
