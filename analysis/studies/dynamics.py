"""Learning dynamics (SVCCA Sec. 4, PWCCA Sec. 4): how each layer approaches its final representation.

`learning_grids` compares every layer at each checkpoint with every layer at the end of training (the
SVCCA paper's Fig. 4); the grids' diagonals are each layer's similarity to its final self
(`self_similarity`); `convergence_order` turns those curves into when each layer reaches a threshold for
good and how that order follows depth (Spearman's rank correlation: +1 = strictly bottom-up).
"""
from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.stats import rankdata

from ..measures.grid import Grid, similarity_grid

Activations = Callable[[float], Mapping[str, Any]]


def learning_grids(
    run: Any,
    layers: Sequence[str],
    fractions: Sequence[float] | None = None,
    measure: str = "svcca",
    *,
    final: float = 1.0,
    split: str = "test",
    pool: int | None = None,
    progress: bool | None = False,
    **options,
) -> dict[float, Grid]:
    """Similarity grids of `layers` at each checkpoint `fraction` (rows) against `layers` at `final` (columns).

    `run`: a `train.Run` (activations recorded on `split`, conv outputs average-pooled to `pool` x `pool` if
    given) or any callable fraction -> {layer: activations} on fixed samples. `fractions`: default the
    run's checkpoints. `measure`, `options` (`keep`, `reduce`, ...): as in `similarity_grid`.
    """
    if not layers:
        raise ValueError("no layers to compare")
    if callable(run):
        acts: Activations = run
        if fractions is None:
            raise ValueError("fractions are needed when activations come from a callable")
    else:
        def acts(f: float) -> Mapping[str, Any]:
            return run.activations(list(layers), split=split, fraction=f, pool=pool, progress=progress)

        fractions = run.config.checkpoints if fractions is None else fractions

    def pick(f: float) -> dict[str, Any]:
        found = acts(f)
        return {name: found[name] for name in layers}

    end = pick(final)
    return {float(f): similarity_grid(pick(f), end, measure, progress=progress, **options) for f in fractions}


def self_similarity(grids: Mapping[float, Grid]) -> np.ndarray:
    """Each layer's similarity to its own final self, (len(grids), layers): the grids' diagonals, in order."""
    out = []
    for f, grid in grids.items():
        if grid.rows != grid.cols:
            raise ValueError(f"grid at {f} compares different layers ({grid.rows} vs {grid.cols}): no diagonal")
        out.append(np.diag(np.asarray(grid)))
    return np.array(out)


def depth_correlation(values: Sequence[float]) -> float:
    """Spearman's rank correlation of layer depth (position in `values`) with `values`; nan if all tie."""
    ranks = rankdata(np.asarray(values, dtype=float))
    if len(ranks) < 2 or np.all(ranks == ranks[0]):
        return float("nan")
    return float(np.corrcoef(np.arange(len(ranks)), ranks)[0, 1])


def lower_minus_upper(values: Sequence[float]) -> float:
    """Mean of the lower half of the layers' `values` minus that of the upper half (a middle layer left out)."""
    values = np.asarray(values, dtype=float)
    if len(values) < 2:
        raise ValueError("need at least two layers to compare lower with upper ones")
    half = len(values) // 2
    return float(values[:half].mean() - values[len(values) - half:].mean())


@dataclass(frozen=True)
class Convergence:
    """When each layer reaches `threshold` similarity to its final self, and how that follows depth.

    `first` (layers,): the first fraction of training from which the layer's similarity stays >= threshold
    (`stay=True`), or at which it first is (`stay=False`); inf if never. `spearman`: rank correlation of
    depth with `first` (+1 strictly bottom-up, -1 top-down, nan when every layer converges at once).
    """

    layers: tuple
    fractions: tuple[float, ...]
    threshold: float
    first: np.ndarray
    spearman: float
    stay: bool = True


def convergence_order(
    curves: np.ndarray,
    fractions: Sequence[float],
    threshold: float,
    layers: Sequence[str] | None = None,
    stay: bool = True,
) -> Convergence:
    """`Convergence` of layers from `curves` (len(fractions), layers), layers in depth order (input first),
    e.g. `self_similarity(learning_grids(...))`. `stay`: a layer that passes the threshold and falls back
    below it has not converged yet (default); False counts its first crossing."""
    curves = np.asarray(curves, dtype=float)
    fractions = tuple(float(f) for f in fractions)
    if curves.ndim != 2 or curves.shape[0] != len(fractions):
        raise ValueError(f"curves must be (fractions, layers) = ({len(fractions)}, L), got shape {curves.shape}")
    if list(fractions) != sorted(fractions):
        raise ValueError(f"fractions must be in training order, got {fractions}")
    if np.isnan(curves).any():
        raise ValueError("curves hold NaN")
    reached = curves >= threshold
    if stay:  # reached at t only if also at every later checkpoint
        reached = np.logical_and.accumulate(reached[::-1], axis=0)[::-1]
    first = np.where(reached.any(0), np.asarray(fractions)[reached.argmax(0)], np.inf)
    names = tuple(layers) if layers is not None else tuple(range(curves.shape[1]))
    if len(names) != curves.shape[1]:
        raise ValueError(f"{len(names)} layer names for {curves.shape[1]} layers")
    return Convergence(names, fractions, float(threshold), first, depth_correlation(first), stay)
