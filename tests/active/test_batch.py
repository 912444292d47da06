"""Top-k and stochastic batches: distinct positions, the right law, bad input refused."""

from __future__ import annotations

import math

import pytest
import torch

from bnnlv.active.batch import select_batch


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_topk_takes_the_best_scores_best_first_and_breaks_ties_by_position() -> None:
    scores = torch.tensor([0.1, 0.9, 0.5, 0.9, -2.0, 0.7])
    assert select_batch(scores, 4).tolist() == [1, 3, 5, 2]


@pytest.mark.parametrize("kind", ["topk", "stochastic"])
def test_a_batch_never_picks_a_candidate_twice(kind: str) -> None:
    scores = torch.zeros(50)  # all tied: the hardest case for distinctness
    for seed in range(20):
        picked = select_batch(scores, 50 if seed == 0 else 17, kind, 3.0, _gen(seed))
        assert len(set(picked.tolist())) == len(picked)
        assert picked.min() >= 0 and picked.max() < 50


def test_stochastic_first_pick_follows_the_softmax() -> None:
    """k = 1 draws candidate b with probability exp(β s_b) / Σ exp(β s): frequencies over 3,000
    batches within 5 standard deviations of the binomial."""
    scores, beta, trials = torch.tensor([0.0, 1.0, 2.0, 0.5]), 1.5, 3000
    expected = torch.softmax(beta * scores.double(), dim=0)
    counts = torch.zeros(4, dtype=torch.float64)
    generator = _gen(1)
    for _ in range(trials):
        counts[select_batch(scores, 1, "stochastic", beta, generator)] += 1
    sd = (expected * (1 - expected) / trials).sqrt()
    assert ((counts / trials - expected).abs() < 5 * sd).all()


def test_large_beta_is_topk_and_zero_beta_ignores_the_scores() -> None:
    scores = torch.linspace(0.0, 1.0, 30)
    assert torch.equal(select_batch(scores, 5, "stochastic", 1e4, _gen(2)), select_batch(scores, 5))
    hits = torch.zeros(30)
    generator = _gen(3)
    for _ in range(1500):
        hits[select_batch(scores, 1, "stochastic", 0.0, generator)] += 1
    assert (hits / 1500 - 1 / 30).abs().max() < 5 * math.sqrt(1 / 30 / 1500)


@pytest.mark.parametrize(
    ("args", "match"),
    [
        (
            (torch.zeros(4), 2, "greedy"),
            "active.batch must be one of topk, stochastic, got 'greedy'",
        ),
        ((torch.zeros(4), 5, "topk"), r"batch size k must be an integer in \[1, 4\], got 5"),
        ((torch.zeros(4), 0, "topk"), r"batch size k must be an integer in \[1, 4\], got 0"),
        ((torch.zeros(2, 2), 1, "topk"), r"scores must be \[B\], got shape \(2, 2\)"),
        ((torch.tensor([0.0, math.nan]), 1, "topk"), "acquisition score of candidate 1 is nan"),
        ((torch.zeros(4), 1, "stochastic", -1.0), "active.beta must be a finite number >= 0"),
    ],
)
def test_rejects_bad_input(args: tuple, match: str) -> None:  # type: ignore[type-arg]
    with pytest.raises(ValueError, match=match):
        select_batch(*args)
