"""bnnlv: Bayesian neural networks with latent variables, trained by black-box α-divergence."""

import sys
from pathlib import Path

__version__ = "0.1.0"

# Hydra loads launchers only from its ``hydra_plugins`` namespace package, and scans it once per
# process: make bnnlv's part of it (launcher=replicas, bnnlv/runs/plugins/) importable before
# any Hydra set-up can run.
PLUGINS_DIR = str(Path(__file__).parent / "runs" / "plugins")
if PLUGINS_DIR not in sys.path:
    sys.path.append(PLUGINS_DIR)
