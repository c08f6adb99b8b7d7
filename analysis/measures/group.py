"""Groups of networks compared pair by pair, layer by layer (PWCCA Sec. 3: within-group and between-group
similarity of networks trained from different seeds, widths or labels).

Each network's layer is prepared once; every pair then costs one `compare`. For a measure that is not
symmetric (PWCCA), a pair's value is the mean of its two directions, so that it does not depend on the
order in which the networks are listed.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import combinations, product
from typing import Any

import numpy as np

from .checks import unify
from .conv import Reduction, check_reduction
from .grid import named_layers, same_samples
from .progress import progress_bar
from .registry import measure as get_measure
from .threads import parallel_map, worth_splitting

Networks = Mapping[Any, Any] | Sequence[Any]


@dataclass(frozen=True)
class GroupComparison:
    """`measure` for pairs of networks, layer by layer: `values` (len(layers), len(pairs)), float64.

    `pairs`: the networks' names, (a, b) per column: every pair within one group, or every (group 1,
    group 2) pair between two groups. `mean`, `std`, `min`, `max` (len(layers),): over the pairs.
    """

    values: np.ndarray
    layers: tuple
    pairs: tuple[tuple, ...]
    measure: str

    def __getitem__(self, layer) -> np.ndarray:
        """The pairs' values (len(pairs),) at one layer."""
        return self.values[self.layers.index(layer)]

    @property
    def mean(self) -> np.ndarray:
        return self.values.mean(axis=1)

    @property
    def std(self) -> np.ndarray:
        return self.values.std(axis=1)

    @property
    def min(self) -> np.ndarray:
        return self.values.min(axis=1)

    @property
    def max(self) -> np.ndarray:
        return self.values.max(axis=1)


def compare_group(
    networks: Networks,
    other: Networks | None = None,
    measure: str = "pwcca",
    *,
    layers: Sequence | None = None,
    reduce: Reduction = "flatten",
    progress: bool | None = None,
    **options,
) -> GroupComparison:
    """`measure` of every pair of `networks` (K(K-1)/2 pairs), or of every network in `networks` with every
    one in `other` (K x K' pairs), at each layer.

    Networks: a mapping name -> network or a sequence (named 0, 1, ...); a network is a mapping layer name ->
    activations (n, d) on the same n samples as every other, or one array (a single layer, named None).
    `layers`: which layers (default: those of the first network, each must be in every network). `measure`,
    `options`, `reduce`: as in `similarity_grid`.
    """
    m = get_measure(measure)
    full = m.resolve(options)
    check_reduction(reduce)
    group = _networks(networks, "networks")
    second = None if other is None else _networks(other, "other")
    if second is None and len(group) < 2:
        raise ValueError(f"a group needs at least 2 networks to form a pair, got {len(group)}")
    everyone = {**{(0, k): v for k, v in group.items()}, **({} if second is None else {(1, k): v for k, v in second.items()})}
    names = tuple(layers) if layers is not None else tuple(next(iter(group.values())))
    if not names:
        raise ValueError("no layers to compare")
    for (_, net), acts in everyone.items():
        missing = [layer for layer in names if layer not in acts]
        if missing:
            raise ValueError(f"network {net!r} has no layer(s) {missing}; it has {list(acts)}")
    keys = list(everyone)
    if second is None:
        pairs = list(combinations(keys, 2))
    else:
        pairs = list(product([k for k in keys if k[0] == 0], [k for k in keys if k[0] == 1]))
    values = np.empty((len(names), len(pairs)))
    with progress_bar(total=len(names), desc=f"{measure} group", disable=progress is False, delay=0 if progress else 2.0) as bar:
        for row, layer in enumerate(names):
            labels, acts = named_layers({(s, k): everyone[s, k][layer] for s, k in keys}, f"layer {layer!r}", reduce, m)
            acts = unify(*acts)
            same_samples([f"network {k!r}" for _, k in labels], acts)
            prepared = dict(zip(keys, parallel_map(lambda x: m.prepare(x, **full), acts, threads=worth_splitting(*acts))))
            for col, (p, q) in enumerate(pairs):
                value = float(m.compare(prepared[p], prepared[q]))
                if not m.symmetric:
                    value = (value + float(m.compare(prepared[q], prepared[p]))) / 2
                values[row, col] = value
            bar.update()
    return GroupComparison(values, names, tuple((p[1], q[1]) for p, q in pairs), measure)


def _networks(networks: Networks, what: str) -> dict:
    """Networks by name, each a mapping layer -> activations (a lone array: one layer named None)."""
    if isinstance(networks, Mapping):
        items = dict(networks)
    elif isinstance(networks, Sequence) and not isinstance(networks, (str, bytes)):
        items = dict(enumerate(networks))
    else:
        raise TypeError(f"{what} must map network names to networks, or be a sequence of networks")
    return {k: v if isinstance(v, Mapping) else {None: v} for k, v in items.items()}
