"""Layer-by-layer similarity grids (similarities): every layer of one set against every layer of another.

Each layer is decomposed once (centring, Gram or SVD factorisation, SVCCA's reduction: `cca.decompose`;
on the CPU, one layer per core at a time); every pair then costs only its cross product, so a grid of
L x L layers costs L decompositions instead of L² pairs of them. Values equal the pairwise functions'
(`cca`, `svcca`, `pwcca`, `linear_cka`).
"""
from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from tqdm.auto import tqdm

from .cca import Subspace, cca_of, decompose, svcca_subspace
from .checks import as_array, is_torch, unify
from .cka import cka_layer, linear_cka_of
from .conv import Reduction, check_reduction, reduce_conv
from .threads import parallel_map, worth_splitting

Measure = Literal["cca", "svcca", "pwcca", "linear_cka"]
Layers = Mapping[Any, Any] | Sequence[Any]

_OPTIONS = {"cca": set(), "pwcca": set(), "linear_cka": set(), "svcca": {"keep", "by"}}
_SYMMETRIC = {"cca", "svcca", "linear_cka"}


def check_measure(measure: str, options: dict) -> None:
    """A clear ValueError for an unknown measure, or options it does not take."""
    if measure not in _OPTIONS:
        raise ValueError(f"measure must be one of {sorted(_OPTIONS)}, got {measure!r}")
    unknown = set(options) - _OPTIONS[measure]
    if unknown:
        raise ValueError(f"measure {measure!r} takes no option(s) {sorted(unknown)}")


@dataclass(frozen=True)
class Grid:
    """Similarities of every layer in `rows` (layers_a) with every layer in `cols` (layers_b).

    `values` (len(rows), len(cols)) float64, also what `np.asarray(grid)` gives; `grid[row, col]` by name.
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
    measure: Measure = "svcca",
    *,
    reduce: Reduction = "flatten",
    progress: bool | None = None,
    **options,
) -> Grid:
    """Similarity of every layer in `layers_a` (rows) with every layer in `layers_b` (columns; default: a).

    Layers: a mapping name -> activations (n, d), or a sequence of them (named 0, 1, ...); numpy or torch
    (one device), all on the same n samples. Conv layers (n, c, h, w) are flattened to (n, c*h*w)
    (`reduce="flatten"`) or averaged over positions to (n, c) (`reduce="mean"`). `measure`: "cca", "svcca"
    (options `keep`, `by` as in `svcca`), "pwcca" (weights from the row layer) or "linear_cka". Precision
    follows the inputs as in `cca` (float32 only if every layer is float32). `progress`: a progress bar;
    None shows one only once the grid has taken more than two seconds.
    """
    check_measure(measure, options)
    check_reduction(reduce)
    same = layers_b is None or layers_b is layers_a
    rows, acts_a = _named(layers_a, "layers_a", reduce)
    cols, acts_b = (rows, []) if same else _named(layers_b, "layers_b", reduce)
    everything = unify(*acts_a, *acts_b)
    labels = [f"layers_a[{r!r}]" for r in rows] + ([] if same else [f"layers_b[{c!r}]" for c in cols])
    _same_samples(labels, everything)
    n = len(everything[0])
    prepare, pair = _measure(measure, options)
    symmetric = same and measure in _SYMMETRIC
    cells = [(i, j) for i in range(len(rows)) for j in range(len(cols)) if not symmetric or i <= j]
    values = np.empty((len(rows), len(cols)))
    with tqdm(total=len(everything) + len(cells), desc=f"{measure} grid", disable=progress is False,
              delay=0 if progress else 2.0) as bar:
        def prepared_one(x):
            out = prepare(x)
            bar.update()
            return out

        prepared = parallel_map(prepared_one, everything, threads=worth_splitting(*everything))
        a, b = prepared[: len(rows)], prepared if same else prepared[len(rows):]
        for i, j in cells:
            values[i, j] = pair(a[i], b[j], n)
            if symmetric:
                values[j, i] = values[i, j]
            bar.update()
    return Grid(values, tuple(rows), tuple(cols), measure)


def _measure(measure: str, options: dict) -> tuple[Callable, Callable]:
    """The per-layer preparation and the per-pair similarity of a measure."""
    if measure == "linear_cka":
        return cka_layer, lambda a, b, n: linear_cka_of(a, b)
    weighting = "projection" if measure == "pwcca" else "uniform"

    def similarity(a: Subspace, b: Subspace, n: int) -> float:
        return cca_of(a, b, n, weighting).mean

    if measure == "svcca":
        keep, by = options.get("keep", 0.99), options.get("by", "variance")
        return lambda x: svcca_subspace(x, keep, by), similarity
    return decompose, similarity


def _named(layers: Layers, what: str, reduce: str) -> tuple[list, list]:
    """Names and validated (n, d) activations of a mapping or sequence of layers, conv layers reduced."""
    if isinstance(layers, Mapping):
        items = list(layers.items())
    elif isinstance(layers, Sequence) and not isinstance(layers, (str, bytes)):
        items = list(enumerate(layers))
    else:
        raise ValueError(f"{what} must map layer names to activations, or be a sequence of activations")
    if not items:
        raise ValueError(f"{what} holds no layers")
    names, acts = [], []
    for name, x in items:
        x = x if is_torch(x) else np.asarray(x)
        if x.ndim == 4:
            x = reduce_conv(x, reduce)
        names.append(name)
        acts.append(as_array(x, f"{what}[{name!r}]", native=True))
    return names, acts


def _same_samples(labels: list[str], acts: list) -> None:
    n = len(acts[0])
    for label, x in zip(labels, acts):
        if len(x) != n:
            raise ValueError(f"every layer must hold the same samples: {labels[0]} has {n}, {label} has {len(x)}")
