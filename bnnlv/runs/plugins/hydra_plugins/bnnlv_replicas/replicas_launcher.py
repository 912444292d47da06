"""Where Hydra finds bnnlv's ``launcher=replicas`` (it loads launchers from ``hydra_plugins``
only): the class and its config ``hydra/launcher=bnnlv_replicas``; the work is in
bnnlv.runs.launcher. No ``from __future__ import annotations``: Hydra runs this module before
it is in sys.modules, where a dataclass cannot resolve string annotations."""

from dataclasses import dataclass

from hydra.core.config_store import ConfigStore

from bnnlv.runs.launcher import GroupingLauncher


class ReplicasLauncher(GroupingLauncher):
    """Jobs that differ only in seed / data.split / data.noise_seed train together
    (bnnlv.runs.launcher)."""


@dataclass
class ReplicasLauncherConf:
    _target_: str = "hydra_plugins.bnnlv_replicas.replicas_launcher.ReplicasLauncher"


ConfigStore.instance().store(
    group="hydra/launcher", name="bnnlv_replicas", node=ReplicasLauncherConf, provider="bnnlv"
)
