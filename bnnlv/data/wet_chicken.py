"""Wet-Chicken 2-D: the continuous river of Hans & Udluft (2009), as used by Depeweg et al. (ICLR
2017, §4.1) to test BNN+LV on bimodal, heteroscedastic transitions (datasets.md).

A canoeist at (x, y) on a river of width w and length l paddles with action (a_x, a_y); a waterfall
at y = l throws them back to the start. The drift v = 3x/w grows towards one bank while the
turbulence s = 3.5 − v shrinks, so the next y is uniform with an x-dependent width, clipped at both
ends, and the fall makes the next state bimodal. There is no oracle density: y' and x' have point
masses at 0 (and x' at w), so p(y'|x) is not a density with respect to Lebesgue measure.
"""

from __future__ import annotations

from typing import overload

import numpy as np
from torch import Tensor

from bnnlv.data.module import RegressionDataModule, Splits, check_fraction
from bnnlv.data.toy import check_n_points, shuffle_split

WIDTH = 5.0  # w, the river's width
LENGTH = 5.0  # l, the river's length; the waterfall is at y = l
FEATURES = ("x", "y", "a_x", "a_y")
TARGETS = ("x_next", "y_next")


def wet_chicken_step(
    x: np.ndarray, y: np.ndarray, a_x: np.ndarray, a_y: np.ndarray, tau: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """One transition (x, y, a) → (x', y') for arrays of equal shape; τ ∈ [−1, 1] is the noise.

        v = 3x/w,  s = 3.5 − v,  ŷ = y + (a_y − 1) + v + s·τ
        x' = 0 if x + a_x < 0;  0 if ŷ > l (fell: restart);  w if x + a_x > w;  else x + a_x
        y' = 0 if ŷ < 0;  0 if ŷ > l;  else ŷ

    The cases are checked in this order, so a fall resets x' even when x + a_x > w.
    """
    v = 3.0 * x / WIDTH
    s = 3.5 - v
    y_hat = y + (a_y - 1.0) + v + s * tau
    fell = y_hat > LENGTH
    x_moved = x + a_x
    x_next = np.where((x_moved < 0) | fell, 0.0, np.where(x_moved > WIDTH, WIDTH, x_moved))
    y_next = np.where((y_hat < 0) | fell, 0.0, y_hat)
    return x_next, y_next


@overload
def wet_chicken_reward(y_next: np.ndarray) -> np.ndarray: ...
@overload
def wet_chicken_reward(y_next: Tensor) -> Tensor: ...
def wet_chicken_reward(y_next: np.ndarray | Tensor) -> np.ndarray | Tensor:
    """reward = −(l − y') of the state reached, for numpy arrays and torch tensors alike: 0 at
    the waterfall's edge, −l at the start of the river (and after a fall)."""
    return y_next - LENGTH


def wet_chicken_transitions(n_points: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """n_points transitions from uniformly random states and actions.

    Returns inputs [n, 4] = (x, y, a_x, a_y) with (x, y) ~ U([0, w] × [0, l]) and
    (a_x, a_y) ~ U([−1, 1]²), and targets [n, 2] = (x', y'), with τ ~ U[−1, 1].
    """
    rng = np.random.default_rng(seed)
    x = rng.uniform(0.0, WIDTH, n_points)
    y = rng.uniform(0.0, LENGTH, n_points)
    a_x = rng.uniform(-1.0, 1.0, n_points)
    a_y = rng.uniform(-1.0, 1.0, n_points)
    tau = rng.uniform(-1.0, 1.0, n_points)
    x_next, y_next = wet_chicken_step(x, y, a_x, a_y, tau)
    return np.stack([x, y, a_x, a_y], axis=1), np.stack([x_next, y_next], axis=1)


class WetChicken(RegressionDataModule):
    """2,500 random Wet-Chicken transitions; targets x' and y' (the paper scores y' only).

    The transitions are split like the toy sets (``shuffle_split``): test the first
    ⌈test_frac·n⌉ of a seeded permutation, validation ⌈val_frac·n_o⌉ of the rest.
    """

    def __init__(
        self,
        n_points: int = 2500,
        noise_seed: int = 0,
        split_seed: int = 42,
        test_frac: float = 0.2,
        val_frac: float = 0.125,
        **kwargs: int,
    ) -> None:
        super().__init__(**kwargs)
        self.n_points = check_n_points(n_points)
        self.noise_seed, self.split_seed = noise_seed, split_seed
        self.test_frac = check_fraction("test_frac", test_frac)
        self.val_frac = check_fraction("val_frac", val_frac)
        if self.test_frac == 0:
            raise ValueError(f"data.test_frac must be > 0, got {test_frac!r}")

    def load(self) -> Splits:
        inputs, targets = wet_chicken_transitions(self.n_points, self.noise_seed)
        train, val, test = shuffle_split(
            self.n_points, self.split_seed, self.test_frac, self.val_frac
        )
        return Splits(
            inputs[train],
            targets[train],
            inputs[val],
            targets[val],
            inputs[test],
            targets[test],
            feature_names=list(FEATURES),
            target_names=list(TARGETS),
            test_rows=test,
        )
