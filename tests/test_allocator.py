"""keep_freed_memory: after it, a training step reuses freed memory instead of faulting pages in."""

from __future__ import annotations

import resource
import sys

import pytest
import torch

from bnnlv.allocator import keep_freed_memory
from bnnlv.module import BNNLV


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc malloc only")
def test_training_steps_fault_no_pages_in() -> None:
    """Batch 2,000, K = 10, hidden [50, 50, 50]: activations of 4 MiB each, ~4,400 page faults a
    step with glibc's default thresholds (measured); none to speak of once memory is kept."""
    assert keep_freed_memory()
    torch.manual_seed(0)
    n = 2000
    model = BNNLV(in_features=8, out_features=1, n_train=n, batch_size=n, hidden=[50, 50, 50])
    x, y, index = torch.randn(n, 8), torch.randn(n, 1), torch.arange(n)

    def step() -> None:
        model.zero_grad(set_to_none=True)
        model.model_step(x, y, index, n_samples=10).energy.backward()

    for _ in range(3):
        step()
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(3):
        step()
    faults_per_step = (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / 3
    assert faults_per_step < 500
