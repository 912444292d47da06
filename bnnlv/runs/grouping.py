"""Which runs may train together on the replica axis (bnnlv.runs.replicas): those whose configs
differ only in ``seed``, ``data.split`` and ``data.noise_seed``, the same model, data set and
training, so that their training sets have as many rows (a split of the same data, or another
draw of a generated set).

Config logic only, without torch or Lightning: a benchmark's or a launcher's main process groups
its jobs with it before any worker starts, and importing the training stack there cost seconds.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from omegaconf import DictConfig, OmegaConf

# what may differ between runs trained together: the run's seed, and which rows it trains on
RUN_KEYS = ("seed", "data.split", "data.noise_seed")


def check_group(cfgs: Sequence[DictConfig]) -> None:
    """ValueError unless the configs differ only in :data:`RUN_KEYS` and, for several, none
    resumes a run (a run folder resumes alone, from its own checkpoint)."""
    if not cfgs:
        raise ValueError("train_replicas needs at least one run config")
    first = group_key(cfgs[0])
    for cfg in cfgs:
        if cfg.get("resume") and len(cfgs) > 1:
            raise ValueError(f"resume={cfg.resume}: resumed runs train one at a time")
        if group_key(cfg) != first:
            raise ValueError(
                f"runs trained together may differ only in {', '.join(RUN_KEYS)}; these differ "
                "in other keys too"
            )


def group_key(cfg: DictConfig) -> str:
    """The config but its :data:`RUN_KEYS`, as text: runs with equal keys can train together."""
    plain = OmegaConf.to_container(cfg, resolve=True)
    assert isinstance(plain, dict)
    for key in RUN_KEYS:
        *parents, name = key.split(".")
        node = plain
        for parent in parents:
            node = node.get(parent, {})
        node.pop(name, None)
    return json.dumps(plain, sort_keys=True, default=str)
