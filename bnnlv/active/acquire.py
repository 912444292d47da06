"""One round's acquisition: draw candidates from the unlabelled pool, score them, pick a batch.

The candidates are scored in chunks of rows that bound the entropy estimator's temporary
(3·S·M·L·rows·D floats, as for the model's own predictions); the chunks share the round's
random streams (:func:`bnnlv.active.pool.round_seed`), so a round scores the same whenever it
runs.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any, NamedTuple

import torch
from torch import Tensor

from bnnlv.active.acquisition import ENTROPY_ACQUISITIONS, Scores, acquisition_scores
from bnnlv.active.batch import select_batch
from bnnlv.active.components import components, n_components
from bnnlv.active.config import ActiveSettings
from bnnlv.active.pool import BATCH_STREAM, SCORE_STREAM, draw_candidates, round_seed
from bnnlv.data.module import Splits, Standardiser
from bnnlv.model.components import ENTROPY_CHUNK_ELEMENTS
from bnnlv.model.entropy import NOISE_NODES
from bnnlv.model.lit_module import BNNLV


class Acquisition(NamedTuple):
    """What a round acquired, and the figures of active.csv about it (standardised units)."""

    pool_indices: list[int]  # the batch, best first
    scores: list[float]  # their acquisition scores
    mean_score: float  # over all candidates
    n_negative: int | None  # I(y; W) estimates < 0 among the candidates (entropy acquisitions)
    n_candidates: int
    seconds: float

    def row(self) -> dict[str, Any]:
        return {
            "n_candidates": self.n_candidates,
            "mean_score": self.mean_score,
            "n_negative_epistemic": self.n_negative,
            "score_seconds": self.seconds,
            "acquired": " ".join(str(i) for i in self.pool_indices),
            "scores": " ".join(f"{s:.6g}" for s in self.scores),
        }


def score_candidates(
    model: BNNLV, x: Tensor, settings: ActiveSettings, generator: torch.Generator
) -> Scores:
    """Acquisition scores of the candidates x [B, D_in] (standardised), in chunks of rows;
    ``generator`` draws the model's weights and latents and the estimators' samples."""
    rows = x.shape[0]
    if settings.acquisition in ENTROPY_ACQUISITIONS:
        per_row = len(NOISE_NODES) * settings.entropy_draws * n_components(model)
        per_row *= model.hparams["out_features"]
        rows = max(1, ENTROPY_CHUNK_ELEMENTS // per_row)
    values: list[Tensor] = []
    negatives: list[int] = []
    for start in range(0, x.shape[0], rows):
        mixture = components(model, x[start : start + rows], generator)
        scores = acquisition_scores(
            settings.acquisition, mixture.f, mixture.log_noise_var, settings.entropy_draws,
            generator,
        )  # fmt: skip
        values.append(scores.values)
        if scores.n_negative is not None:
            negatives.append(scores.n_negative)
    return Scores(torch.cat(values), sum(negatives) if negatives else None)


def acquire(
    model: BNNLV,
    splits: Splits,
    scaler: Standardiser,
    labelled: Sequence[int],
    settings: ActiveSettings,
    seed: int,
    round_index: int,
) -> Acquisition:
    """Round ``round_index``'s batch of ``settings.query_size`` unlabelled pool points."""
    start = time.perf_counter()
    model.eval()
    candidates = draw_candidates(
        len(splits.x_train), labelled, settings.candidates, seed, round_index
    )  # [B] pool indices
    x = torch.as_tensor(
        scaler.x(splits.x_train[candidates]), dtype=torch.float32, device=model.device
    )  # [B, D_in]
    stream = torch.Generator(device=model.device)
    stream.manual_seed(round_seed(seed, round_index, SCORE_STREAM))  # the model's draws, the MC
    scores = score_candidates(model, x, settings, stream)
    values = scores.values.cpu()  # [B]
    batch_stream = torch.Generator().manual_seed(round_seed(seed, round_index, BATCH_STREAM))
    picked = select_batch(values, settings.query_size, settings.batch, settings.beta, batch_stream)
    return Acquisition(
        pool_indices=[int(i) for i in candidates[picked.numpy()]],
        scores=[float(v) for v in values[picked]],
        mean_score=float(values.mean()),
        n_negative=scores.n_negative,
        n_candidates=len(candidates),
        seconds=time.perf_counter() - start,
    )
