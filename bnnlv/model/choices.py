"""The named choices of a model's configuration, in plain Python (no torch).

The run's config is checked before torch is imported (bnnlv.runs.config, a bad value reported in
about a second), so what the check needs lives here: the allowed latent, noise and weight-sampler
kinds, and the selection of the stochastic layers by index or name.
"""

from __future__ import annotations

from collections.abc import Sequence

LATENT_KINDS = ("per_point", "amortised", "none")
NOISE_KINDS = ("homoscedastic", "heteroscedastic")
WEIGHT_SAMPLERS = ("shared", "flipout")


def layer_names(n_hidden: int) -> list[str]:
    """The names of an MLP's layers with ``n_hidden`` hidden layers: layer0 … layerH (output)."""
    return [f"layer{i}" for i in range(n_hidden + 1)]


def select_layers(selector: str | Sequence[int | str] | None, names: Sequence[str]) -> set[int]:
    """Indices of the stochastic layers among ``names`` (``"all"``/None, ``[]``, ints or names).

    Negative indices count from the output layer. An entry that names no layer is an error.
    """
    n = len(names)
    if selector is None or selector == "all":
        return set(range(n))
    if isinstance(selector, str):
        selector = [selector]
    chosen: set[int] = set()
    for entry in selector:
        if isinstance(entry, bool):
            raise ValueError(f"stochastic_layers entry {entry!r} is not a layer index or name")
        if isinstance(entry, int):
            if not -n <= entry < n:
                raise ValueError(
                    f"stochastic_layers entry {entry} names no layer; valid: {-n}..{n - 1} "
                    f"or {list(names)}"
                )
            chosen.add(entry % n)
        elif entry in names:
            chosen.add(list(names).index(entry))
        else:
            raise ValueError(
                f"stochastic_layers entry {entry!r} names no layer; valid: {list(names)} "
                f"or indices {-n}..{n - 1}"
            )
    return chosen
