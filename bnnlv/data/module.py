"""RegressionDataModule: train/validation/test splits kept as standardised tensors.

A data set is a subclass that implements ``load() -> Splits`` in raw units. The module
standardises inputs and targets with TRAINING statistics (population std, a zero std replaced by
1), keeps every split as one tensor on the training device, and serves minibatches by slicing a
per-epoch permutation: no per-step collation of Python objects. Minibatches carry the model's
replica axis first (:class:`StackedBatches`: replica r's rows in its own order, from its own
seed), and training minibatches reach the model in groups (:class:`GroupedBatches`). Whatever
``load`` returns is checked (:func:`check_splits`: numeric, finite, rows of x and y agree,
training rows exist), and a batch size larger than the training set is clamped to it with a
warning.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

import lightning as L
import numpy as np
import torch
from torch import Tensor

from bnnlv.data.columns import InputColumns

log = logging.getLogger("bnnlv")

# Oracle log-density p(y|x) in raw units: (x [B, D_in], y [B, D_out]) → [B].
OracleLogDensity = Callable[[np.ndarray, np.ndarray], np.ndarray]
# Minibatches per training "batch" of Lightning: see GroupedBatches.
TRAIN_GROUP = 16


def check_fraction(name: str, value: float, allow_one: bool = False) -> float:
    """``data.<name>``, a fraction of the rows in [0, 1) (or [0, 1] with ``allow_one``), as a
    float; ValueError otherwise."""
    top = 1 if allow_one else math.nextafter(1.0, 0.0)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= top:
        interval = "[0, 1]" if allow_one else "[0, 1)"
        raise ValueError(f"data.{name} must be a number in {interval}, got {value!r}")
    return float(value)


@dataclass(frozen=True)
class Splits:
    """Raw-unit arrays, 2-D: x_* [n, D_in], y_* [n, D_out].

    ``test_rows`` [n_test] says where each test row came from, so that predictions can be joined
    back to the source: for a CSV the data row as its error messages count it (1 is the first
    line after the header), for generated data the index in the generated array, for UCI the
    0-based row of data.txt. None: 0, 1, … in the order of the test split. ``inputs``: the
    source columns behind ``feature_names`` and their encoding (None: one numeric column each).
    """

    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    feature_names: Sequence[str]
    target_names: Sequence[str]
    oracle_log_density: OracleLogDensity | None = field(default=None, compare=False)
    test_rows: np.ndarray | None = field(default=None, compare=False)
    inputs: InputColumns | None = field(default=None, compare=False)

    @property
    def input_columns(self) -> InputColumns:
        """:attr:`inputs`, or the feature names as plain numeric columns."""
        return self.inputs or InputColumns(list(self.feature_names), {})


def check_splits(splits: Splits, training: bool = True) -> None:
    """Raise ``ValueError`` naming the split, row and column of the first bad value.

    Every array must be 2-D and numeric with only finite values, x and y of a split must have the
    same rows, and (when ``training``) the training split must not be empty. Rows count from 0
    within the split.
    """
    for split in ("train", "val", "test"):
        x, y = getattr(splits, f"x_{split}"), getattr(splits, f"y_{split}")
        for name, array, columns in (
            (f"x_{split}", x, splits.feature_names),
            (f"y_{split}", y, splits.target_names),
        ):
            if array.ndim != 2:
                raise ValueError(f"data: {name} must be 2-D [rows, columns], got {array.shape}")
            if not np.issubdtype(array.dtype, np.number):
                raise ValueError(f"data: {name} is not numeric (dtype {array.dtype})")
            bad = np.argwhere(~np.isfinite(array))
            if len(bad):
                row, col = (int(i) for i in bad[0])
                column = columns[col] if len(columns) == array.shape[1] else col
                raise ValueError(
                    f"data: {name} has a non-finite value ({array[row, col]}) at row {row} of "
                    f"the {split} split, column {column!r}"
                )
        if x.shape[0] != y.shape[0]:
            raise ValueError(f"data: {split} split has {x.shape[0]} x rows but {y.shape[0]} y rows")
    if splits.test_rows is not None and np.shape(splits.test_rows) != (splits.x_test.shape[0],):
        raise ValueError(
            f"data: test_rows has shape {np.shape(splits.test_rows)}; the test split has "
            f"{splits.x_test.shape[0]} rows"
        )
    if training and splits.x_train.shape[0] == 0:
        raise ValueError("data: the training split is empty")


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


def process_share() -> tuple[int, int]:
    """(rank, world size) of this process in a distributed (DDP) run; (0, 1) otherwise."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return 0, 1


class TensorBatches:
    """Minibatches (x, y, index) sliced from tensors; reshuffled each epoch if ``shuffle``.

    With ``shard`` in a distributed run of W processes, process r takes rows r, r+W, … of each
    minibatch (every process draws the same permutation from the same seed, so the shares are
    disjoint and cover the minibatch); a last minibatch with fewer than W rows is skipped.
    """

    def __init__(
        self, x: Tensor, y: Tensor, batch_size: int, shuffle: bool, generator: torch.Generator,
        shard: bool = False,
    ) -> None:  # fmt: skip
        self.x, self.y = x, y
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.generator = generator
        self.shard = shard

    def __len__(self) -> int:
        return -(-self.x.shape[0] // self.batch_size)

    def order(self) -> Tensor:
        """This epoch's order of the rows [N]: a permutation drawn from the generator, or
        0 … N − 1 when not shuffling (or when one minibatch holds every row)."""
        n = self.x.shape[0]
        if self.shuffle and self.batch_size < n:
            return torch.randperm(n, generator=self.generator).to(self.x.device)
        return torch.arange(n, device=self.x.device)

    def indices(self, order: Tensor) -> Iterator[Tensor]:
        """The minibatches' row indices [..., S] from orders [..., N] (any leading axes): this
        process's share of each (see the class docstring)."""
        rank, world = process_share() if self.shard else (0, 1)
        for start in range(0, order.shape[-1], self.batch_size):
            index = order[..., start : start + self.batch_size]
            if world > 1:
                if index.shape[-1] < world:
                    continue
                index = index[..., rank::world]  # this process's share of the minibatch
            yield index

    def __iter__(self) -> Iterator[tuple[Tensor, Tensor, Tensor]]:
        for index in self.indices(self.order()):
            yield self.x[index], self.y[index], index


Minibatch = tuple[Tensor, Tensor, Tensor]  # x [R, S, D_in], y [R, S, D_out], index [R, S]


class StackedBatches:
    """The minibatches of several :class:`TensorBatches`, replica r's from ``parts[r]``, stacked
    on a leading replica axis: (x [R, S, D_in], y [R, S, D_out], index [R, S]). Every part must
    have as many rows and the same batch size (so every minibatch has the same S).

    Each part draws its own order each epoch; a minibatch is then one gather per tensor for all
    replicas: from the shared rows when every part holds the same tensors (an ensemble's members,
    seeds of one data set), else from the parts' rows stacked [R, N, ·].
    """

    def __init__(self, parts: Sequence[TensorBatches]) -> None:
        sizes = {(part.x.shape[0], part.batch_size) for part in parts}
        if len(sizes) != 1:
            raise ValueError(
                f"replicas must have as many rows and the same batch size, got (rows, batch) "
                f"{sorted(sizes)}"
            )
        self.parts = list(parts)
        first = self.parts[0]
        self.shared = all(part.x is first.x and part.y is first.y for part in self.parts)
        self.x = first.x if self.shared else torch.stack([part.x for part in self.parts])
        self.y = first.y if self.shared else torch.stack([part.y for part in self.parts])
        self.replica = torch.arange(len(self.parts), device=first.x.device)[:, None]  # [R, 1]

    @property
    def generators(self) -> list[torch.Generator]:
        """Each replica's shuffling generator (saved in checkpoints, see bnnlv.runs.state)."""
        return [part.generator for part in self.parts]

    def __len__(self) -> int:
        return len(self.parts[0])

    def __iter__(self) -> Iterator[Minibatch]:
        orders = torch.stack([part.order() for part in self.parts])  # [R, N]
        for index in self.parts[0].indices(orders):  # [R, S]
            if self.shared:
                yield self.x[index], self.y[index], index
            else:
                yield self.x[self.replica, index], self.y[self.replica, index], index


class GroupedBatches:
    """The minibatches of :class:`StackedBatches`, handed out ``size`` at a time (a list each).

    The training step runs one optimiser step per minibatch of the group. Lightning's own
    bookkeeping between batches (hooks, progress, signal checks) costs ≈ 0.8 ms, a third of a step
    of the default model; grouping pays it once per group. Nothing numerical changes: the same
    minibatches in the same order. Callbacks act between groups.

    A pass draws its order when its first group is fetched. A run resumed mid-epoch
    (:mod:`bnnlv.runs.state`) starts the generator at the epoch's state and sets ``skip``: the next
    pass leaves out its first ``skip`` minibatches (trained before the stop), and a group whose
    minibatches were all trained is handed out empty, so that the epoch keeps its number of groups
    (Lightning validates after the same one).
    """

    def __init__(self, batches: StackedBatches, size: int, skip: int = 0) -> None:
        if size <= 0:
            raise ValueError(f"group size must be positive, got {size}")
        if skip < 0:
            raise ValueError(f"skip must be a count of minibatches >= 0, got {skip}")
        self.batches, self.size = batches, size
        self.skip = skip

    @property
    def generators(self) -> list[torch.Generator]:
        """The replicas' shuffling generators (saved in checkpoints, see bnnlv.runs.state)."""
        return self.batches.generators

    def __len__(self) -> int:
        return -(-len(self.batches) // self.size)

    def __iter__(self) -> Iterator[list[Minibatch]]:
        skip, self.skip = self.skip, 0
        group: list[Minibatch] = []
        position = -1
        for position, batch in enumerate(self.batches):
            if position >= skip:
                group.append(batch)
            if position % self.size == self.size - 1:
                yield group
                group = []
        if position % self.size != self.size - 1:
            yield group


class RegressionDataModule(L.LightningDataModule):
    """Base of every data set: subclasses implement :meth:`load` (raw units).

    The training rows are shuffled once per replica of the run's model, in the order seeded by
    ``shuffle_seeds`` (by default the run's ``seed``; an ensemble's runner sets its members').
    """

    def __init__(self, batch_size: int = 512, seed: int = 0) -> None:
        super().__init__()
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size <= 0:
            raise ValueError(f"data.batch_size must be a positive integer, got {batch_size!r}")
        self.batch_size = batch_size
        self.shuffle_seeds = [seed]
        self.device = torch.device("cpu")
        self._splits: Splits | None = None
        self._scaler: Standardiser | None = None
        self._resume: tuple[list[Tensor], int] | None = None  # see resume_training

    def load(self) -> Splits:
        raise NotImplementedError

    def prepare(self, scaler: Standardiser | None = None) -> None:
        """Load and standardise once (idempotent); called by the runner before the model exists.

        With ``scaler``, a trained model's statistics, the data is only scored: standardised with
        those, its training split may be empty, and the batch size is left alone.
        """
        if self._splits is None:
            splits = self.load()
            check_splits(splits, training=scaler is None)
            self._splits = splits
            if scaler is None:
                self._scaler = Standardiser.fit(splits.x_train, splits.y_train)
                n_train = splits.x_train.shape[0]
                if self.batch_size > n_train:
                    log.warning(
                        "data.batch_size=%d is larger than the %d training points; using %d "
                        "(one full batch per epoch)", self.batch_size, n_train, n_train
                    )  # fmt: skip
                    self.batch_size = n_train
        if scaler is not None:
            self._scaler = scaler

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

    def resume_training(self, shuffle_states: Sequence[Tensor], done: int) -> None:
        """Make the next :meth:`train_dataloader` continue an epoch: its first pass draws each
        replica's order from its state in ``shuffle_states`` and leaves out the first ``done``
        minibatches."""
        self._resume = (list(shuffle_states), done)

    def train_batches(self) -> list[TensorBatches]:
        """The training minibatches of each replica of the run: one per shuffle seed."""
        orders = [torch.Generator().manual_seed(seed) for seed in self.shuffle_seeds]
        return [
            TensorBatches(*self._train, self.batch_size, True, order, shard=True)
            for order in orders
        ]

    def val_batches(self) -> TensorBatches:
        """The validation points in order, 8,192 at a time."""
        return TensorBatches(*self._val, 8192, False, torch.Generator())

    def train_dataloader(self) -> GroupedBatches:
        loader = training_loader(self.train_batches(), self._resume)
        self._resume = None
        return loader

    def val_dataloader(self) -> StackedBatches | list[StackedBatches]:
        """The run's validation points, [1, B, ·] a batch (one run); none if there are none."""
        return [] if self._val[0].shape[0] == 0 else StackedBatches([self.val_batches()])

    def transfer_batch_to_device(
        self, batch: Minibatch | list[Minibatch], device: torch.device, dataloader_idx: int
    ) -> Minibatch | list[Minibatch]:
        """A batch already on ``device`` (sliced from the tensors there) is returned as it is:
        Lightning's generic walk over the batch costs ≈ 0.5 ms a step (10 % at batch 50)."""
        if on_device(batch, device):
            return batch
        return super().transfer_batch_to_device(batch, device, dataloader_idx)


def training_loader(
    parts: Sequence[TensorBatches], resume: tuple[list[Tensor], int] | None
) -> GroupedBatches:
    """The replicas' training minibatches in groups; ``resume`` = (each replica's shuffling state
    at the epoch's start, minibatches already trained) continues an epoch (RegressionDataModule.
    resume_training), None starts afresh from the seeds."""
    skip = 0
    if resume is not None:
        states, skip = resume
        for part, state in zip(parts, states, strict=False):  # none: drawn from the seeds
            part.generator.set_state(state)
    return GroupedBatches(StackedBatches(parts), TRAIN_GROUP, skip)


def on_device(batch: Minibatch | list[Minibatch], device: torch.device) -> bool:
    """Whether every tensor of a minibatch (or a group of them) is on ``device`` already."""
    parts = batch if isinstance(batch, list) else [batch]
    return all(t.device == device for part in parts for t in part)
