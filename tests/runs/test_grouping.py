"""Which runs train together (runs.grouping): only those that differ in seed, split or data
draw, none resumed; and the check imports neither torch nor Lightning."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable

import pytest
from omegaconf import DictConfig

from bnnlv.runs.grouping import check_group, group_key


def test_only_runs_that_differ_in_seed_split_or_data_draw_train_together(
    compose_train: Callable[..., DictConfig],
) -> None:
    check_group([compose_train("seed=0"), compose_train("seed=5")])
    check_group([compose_train("data.noise_seed=1"), compose_train("seed=2", "data.noise_seed=7")])
    check_group(
        [compose_train("data=uci", "data.split=0"), compose_train("data=uci", "data.split=3")]
    )
    with pytest.raises(ValueError, match=r"^runs trained together may differ only in seed, data"):
        check_group([compose_train("seed=0"), compose_train("seed=1", "alpha=0.3")])
    with pytest.raises(ValueError, match=r"resumed runs train one at a time$"):
        check_group([compose_train("resume=a"), compose_train("resume=b")])
    with pytest.raises(ValueError, match=r"^train_replicas needs at least one run config$"):
        check_group([])


def test_the_key_leaves_out_the_run_keys_and_nothing_else(
    compose_train: Callable[..., DictConfig],
) -> None:
    key = group_key(compose_train("seed=0", "data.noise_seed=1"))
    assert key == group_key(compose_train("seed=4", "data.noise_seed=9"))
    assert '"seed"' not in key and '"noise_seed"' not in key and '"alpha": 0.5' in key
    assert key != group_key(compose_train("seed=0", "model.lr=0.5"))


def test_grouping_imports_neither_torch_nor_lightning() -> None:
    """A benchmark's main process groups its jobs before its workers start: the seconds of
    importing the training stack there would hold every worker back."""
    code = (
        "import sys; import bnnlv.runs.benchmark, bnnlv.runs.grouping, bnnlv.runs.launcher; "
        "print(sorted({'torch', 'lightning'} & set(sys.modules)))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
