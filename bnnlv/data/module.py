"""RegressionDataModule: train/validation/test splits kept as standardised tensors.

A data set is a subclass that implements ``load() -> Splits`` in raw units. The module
standardises inputs and targets with TRAINING statistics (population std, a zero std replaced by
1), keeps every split as one tensor on the training device, and serves minibatches by slicing a
per-epoch permutation: no per-step collation of Python objects.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

import lightning as L
import numpy as np
import torch
from torch import Tensor

# Oracle log-density p(y|x) in raw units: (x [B, D_in], y [B, D_out]) → [B].
OracleLogDensity = Callable[[np.ndarray, np.ndarray], np.ndarray]


@dataclass(frozen=True)
class Splits:
    """Raw-unit arrays, 2-D: x_* [n, D_in], y_* [n, D_out]."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    feature_names: Sequence[str]
    target_names: Sequence[str]
    oracle_log_density: OracleLogDensity | None = field(default=None, compare=False)


@dataclass(frozen=True)
class Standardiser:
    """z = (v − mean) / std with training statistics; a zero std is replaced by 1."""

    x_mean: np.ndarray
    x_std: np.ndarray
    y_mean: np.ndarray
    y_std: np.ndarray

    @classmethod
    def fit(cls, x: np.ndarray, y: np.ndarray) -> Standardiser:
        def std(a: np.ndarray) -> np.ndarray:
            s = a.std(axis=0)
            return np.where(s > 0, s, 1.0)

        return cls(x.mean(axis=0), std(x), y.mean(axis=0), std(y))

    def x(self, x: np.ndarray) -> np.ndarray:
        return (x - self.x_mean) / self.x_std

    def y(self, y: np.ndarray) -> np.ndarray:
        return (y - self.y_mean) / self.y_std

    def y_inverse(self, y: np.ndarray) -> np.ndarray:
        return y * self.y_std + self.y_mean


class TensorBatches:
    """Minibatches (x, y, index) sliced from tensors; reshuffled each epoch if ``shuffle``."""

    def __init__(
        self, x: Tensor, y: Tensor, batch_size: int, shuffle: bool, generator: torch.Generator
    ) -> None:
        self.x, self.y = x, y
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.generator = generator

    def __len__(self) -> int:
        return -(-self.x.shape[0] // self.batch_size)

    def __iter__(self) -> Iterator[tuple[Tensor, Tensor, Tensor]]:
        n = self.x.shape[0]
        if self.shuffle and self.batch_size < n:
            order = torch.randperm(n, generator=self.generator).to(self.x.device)
        else:
            order = torch.arange(n, device=self.x.device)
        for start in range(0, n, self.batch_size):
            index = order[start : start + self.batch_size]
            yield self.x[index], self.y[index], index


class RegressionDataModule(L.LightningDataModule):
    """Base of every data set: subclasses implement :meth:`load` (raw units)."""

    def __init__(self, batch_size: int = 512, seed: int = 0) -> None:
        super().__init__()
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size <= 0:
            raise ValueError(f"data.batch_size must be a positive integer, got {batch_size!r}")
        self.batch_size = batch_size
        self.shuffle_seed = seed
        self.device = torch.device("cpu")
        self._splits: Splits | None = None
        self._scaler: Standardiser | None = None

    def load(self) -> Splits:
        raise NotImplementedError

    def prepare(self) -> None:
        """Load and standardise once (idempotent); called by the runner before the model exists."""
        if self._splits is None:
            splits = self.load()
            self._splits = splits
            self._scaler = Standardiser.fit(splits.x_train, splits.y_train)

    @property
    def splits(self) -> Splits:
        self.prepare()
        assert self._splits is not None
        return self._splits

    @property
    def scaler(self) -> Standardiser:
        self.prepare()
        assert self._scaler is not None
        return self._scaler

    @property
    def in_features(self) -> int:
        return self.splits.x_train.shape[1]

    @property
    def out_features(self) -> int:
        return self.splits.y_train.shape[1]

    @property
    def n_train(self) -> int:
        return self.splits.x_train.shape[0]

    def tensors(self, split: str) -> tuple[Tensor, Tensor]:
        """Standardised (x, y) float32 tensors of 'train', 'val' or 'test' on ``self.device``."""
        s = self.splits
        x, y = getattr(s, f"x_{split}"), getattr(s, f"y_{split}")
        as_tensor = lambda a: torch.as_tensor(a, dtype=torch.float32, device=self.device)  # noqa: E731
        return as_tensor(self.scaler.x(x)), as_tensor(self.scaler.y(y))

    def setup(self, stage: str | None = None) -> None:
        self.prepare()
        self._train = self.tensors("train")
        self._val = self.tensors("val")

    def train_dataloader(self) -> TensorBatches:
        generator = torch.Generator().manual_seed(self.shuffle_seed)
        return TensorBatches(*self._train, self.batch_size, True, generator)

    def val_dataloader(self) -> TensorBatches | list[TensorBatches]:
        if self._val[0].shape[0] == 0:
            return []
        return TensorBatches(*self._val, 8192, False, torch.Generator())
