"""Layer-by-layer grids: every layer of one set against every layer of another, by any registered measure.

Each layer is prepared once (centring, Gram or SVD factorisation, SVCCA's reduction, a kernel matrix: the
measure's `prepare`; on the CPU, one layer per core at a time); every cell then costs only the measure's
`compare`, so a grid of L x L layers costs L preparations instead of L² pairs of them. Values equal the
pairwise functions'.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .checks import as_array, is_torch, unify
from .conv import Reduction, as_conv, check_reduction, reduce_conv
from .progress import progress_bar
from .protocol import Measure
from .registry import measure as get_measure
from .threads import parallel_map, worth_splitting

Layers = Mapping[Any, Any] | Sequence[Any]


@dataclass(frozen=True)
class Grid:
    """Values of `measure` for every layer in `rows` (layers_a) with every layer in `cols` (layers_b).

    `values` (len(rows), len(cols)) float64 (similarities, or distances for a distance measure), also what
    `np.asarray(grid)` gives; `grid[row, col]` by name.
    """

    values: np.ndarray
    rows: tuple
    cols: tuple
    measure: str

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        return np.array(self.values, dtype=dtype, copy=True if copy is None else copy)

    def __getitem__(self, key: tuple) -> float:
        row, col = key
        return float(self.values[self.rows.index(row), self.cols.index(col)])


def similarity_grid(
    layers_a: Layers,
    layers_b: Layers | None = None,
    measure: str = "svcca",
    *,
    reduce: Reduction = "flatten",
    progress: bool | None = None,
    **options,
) -> Grid:
    """`measure` of every layer in `layers_a` (rows) with every layer in `layers_b` (columns; default: a).

    Layers: a mapping name -> activations (n, d), or a sequence of them (named 0, 1, ...); numpy or torch
    (one device), all on the same n samples. Conv layers (n, c, h, w) are flattened to (n, c*h*w)
    (`reduce="flatten"`) or averaged over positions to (n, c) (`reduce="mean"`), except for conv measures
    (`dft_cca`), which take them as they are. `measure`: any name in `registry.MEASURES`, with its options
    (e.g. svcca's `keep`, `by`); for PWCCA the weights come from the row layer. Precision follows the inputs as
    in `cca`. `progress`: a progress bar; None shows one only once the grid has taken more than two seconds.
    """
    m = get_measure(measure)
    full = m.resolve(options)
    check_reduction(reduce)
    same = layers_b is None or layers_b is layers_a
    rows, acts_a = named_layers(layers_a, "layers_a", reduce, m)
    cols, acts_b = (rows, []) if same else named_layers(layers_b, "layers_b", reduce, m)
    everything = unify(*acts_a, *acts_b)
    labels = [f"layers_a[{r!r}]" for r in rows] + ([] if same else [f"layers_b[{c!r}]" for c in cols])
    same_samples(labels, everything)
    symmetric = same and m.symmetric
    cells = [(i, j) for i in range(len(rows)) for j in range(len(cols)) if not symmetric or i <= j]
    values = np.empty((len(rows), len(cols)))
    with progress_bar(total=len(everything) + len(cells), desc=f"{measure} grid", disable=progress is False,
              delay=0 if progress else 2.0) as bar:
        def prepared_one(x):
            out = m.prepare(x, **full)
            bar.update()
            return out

        prepared = parallel_map(prepared_one, everything, threads=worth_splitting(*everything))
        a, b = prepared[: len(rows)], prepared if same else prepared[len(rows):]
        for i, j in cells:
            values[i, j] = float(m.compare(a[i], b[j]))
            if symmetric:
                values[j, i] = values[i, j]
            bar.update()
    return Grid(values, tuple(rows), tuple(cols), measure)


def named_layers(layers: Layers, what: str, reduce: str, m: Measure) -> tuple[list, list]:
    """Names and validated activations of a mapping or sequence of layers, shaped for measure `m`: (n, d),
    conv layers reduced; or, for a conv measure, (n, c, h, w), fully connected ones as (n, d, 1, 1)."""
    if isinstance(layers, Mapping):
        items = list(layers.items())
    elif isinstance(layers, Sequence) and not isinstance(layers, (str, bytes)):
        items = list(enumerate(layers))
    else:
        raise TypeError(f"{what} must map layer names to activations, or be a sequence of activations")
    if not items:
        raise ValueError(f"{what} holds no layers")
    names, acts = [], []
    for name, x in items:
        x = x if is_torch(x) else np.asarray(x)
        if m.ndim == 4:
            x = as_conv(x)
        elif x.ndim == 4:
            x = reduce_conv(x, reduce)
        names.append(name)
        acts.append(as_array(x, f"{what}[{name!r}]", ndim=m.ndim, native=True))
    return names, acts


def same_samples(labels: list[str], acts: list) -> None:
    """A ValueError naming the first layer whose sample count differs from the first layer's."""
    n = len(acts[0])
    for label, x in zip(labels, acts):
        if len(x) != n:
            raise ValueError(f"every layer must hold the same samples: {labels[0]} has {n}, {label} has {len(x)}")
