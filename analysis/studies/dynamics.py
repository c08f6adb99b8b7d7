"""Learning dynamics (SVCCA Sec. 4, PWCCA Sec. 4): how each layer approaches its final representation.

`learning_grids` compares every layer at each checkpoint with every layer at the end of training (the
SVCCA paper's Fig. 4); the grids' diagonals are each layer's similarity to its final self
(`self_similarity`); `convergence_order` turns those curves into when each layer reaches a threshold for
good and how that order follows depth (Spearman's rank correlation: +1 = strictly bottom-up).

Conv layers as the paper compares them: `record_views` keeps each layer at every checkpoint with each channel a
neuron and each (image, position) a sample (a fixed subsample of positions, the same for every layer of one size
in every checkpoint and network), and as channel means (a labelled variant); `similarity_to` gives each layer's
SVCCA with the same layer of a final network, `resized_grid` the grid of every layer against every layer, cells
of two sizes compared at the smaller. `bottom_up` measures convergence against controls (`progress`: the share
of the way from a control network's similarity to 1) over seeds; undefined orders are nan, `every_seed` turns
them into an undetermined verdict.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from itertools import permutations
from typing import Any, Literal

import numpy as np
from scipy.stats import rankdata

from ..measures.checks import as_array
from ..measures.conv import positions_as_samples
from ..measures.grid import Grid, similarity_grid
from ..measures.registry import measure
from ..measures.threads import parallel_map

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
    """Spearman's rank correlation of layer depth (position in `values`) with `values`; nan if all tie or any
    value is nan (undefined)."""
    values = np.asarray(values, dtype=float)
    if np.isnan(values).any():
        return float("nan")
    ranks = rankdata(values)
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
    (`stay=True`), or at which it first is (`stay=False`); inf if never; nan if its curve is undefined (holds
    nan). `spearman`: rank correlation of depth with `first` (+1 strictly bottom-up, -1 top-down; nan, undefined,
    when every layer converges at once or a layer's point is undefined).
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
    below it has not converged yet (default); False counts its first crossing. A layer whose curve holds nan
    (e.g. `progress` against a control at 1) has no convergence point: nan, and the order is undefined."""
    curves = np.asarray(curves, dtype=float)
    fractions = tuple(float(f) for f in fractions)
    if curves.ndim != 2 or curves.shape[0] != len(fractions):
        raise ValueError(f"curves must be (fractions, layers) = ({len(fractions)}, L), got shape {curves.shape}")
    if list(fractions) != sorted(fractions):
        raise ValueError(f"fractions must be in training order, got {fractions}")
    undefined = np.isnan(curves).any(axis=0)
    reached = curves >= threshold
    if stay:  # reached at t only if also at every later checkpoint
        reached = np.logical_and.accumulate(reached[::-1], axis=0)[::-1]
    first = np.where(reached.any(0), np.asarray(fractions)[reached.argmax(0)], np.inf)
    first[undefined] = np.nan
    names = tuple(layers) if layers is not None else tuple(range(curves.shape[1]))
    if len(names) != curves.shape[1]:
        raise ValueError(f"{len(names)} layer names for {curves.shape[1]} layers")
    return Convergence(names, fractions, float(threshold), first, depth_correlation(first), stay)


# --- conv layers in the paper's convention, recorded at every checkpoint ---------------------------------------

Reduction = Literal["positions", "means"]
#: A layer as (samples, neurons) arrays keyed by spatial size: its own size (each (image, position) a sample),
#: smaller sizes it was average-pooled to, and 1 (channel means; a dense layer has only this one)
Views = Mapping[int, np.ndarray]


def pool_to(a: np.ndarray, size: int) -> np.ndarray:
    """Conv activations (n, c, h, w) average-pooled over equal non-overlapping windows to (n, c, size, size)."""
    n, c, h, w = a.shape
    if size < 1 or h % size or w % size:
        raise ValueError(f"cannot pool a {h} x {w} layer to {size} x {size} over equal windows")
    return a.reshape(n, c, size, h // size, size, w // size).mean(axis=(3, 5))


def layer_views(a, sizes: Sequence[int] = (), per_image: int | None = None, seed: int = 0) -> dict[int, np.ndarray]:
    """A layer as (samples, neurons) arrays keyed by spatial size.

    A conv layer (n, c, h, h): at its own size h and at each size in `sizes` below h (average-pooled to it,
    `pool_to`), each channel a neuron and each (image, position) a sample (`positions_as_samples`: `per_image`
    positions drawn per image, the same ones for every layer, checkpoint and network of that size and `n`);
    always also at size 1, its channel means (n, c). A dense layer (n, d): {1: a}. Sizes above h are skipped.
    """
    a = np.asarray(a)
    if a.ndim == 2:
        return {1: a}
    if a.ndim != 4 or a.shape[2] != a.shape[3]:
        raise ValueError(f"expected a dense (n, d) or square conv (n, c, h, h) layer, got shape {a.shape}")
    own = a.shape[2]
    out = {own: positions_as_samples(a, per_image, seed)}
    for size in sorted({s for s in sizes if 1 < s < own}, reverse=True):
        out[size] = positions_as_samples(pool_to(a, size), per_image, seed)
    out[1] = a.mean(axis=(2, 3))
    return out


def record_views(
    run: Any,
    layers: Sequence[str],
    fractions: Sequence[float] | None = None,
    *,
    images: int | None = None,
    per_image: int | None = 4,
    seed: int = 0,
    resized_at: Sequence[float] = (),
    split: str = "test",
) -> dict[float, dict[str, dict[int, np.ndarray]]]:
    """`layers` of a `train.Run` at each checkpoint in `fractions` (default: all of the run's), as `layer_views`.

    Recorded on the first `images` images of `split` (default all) and kept only as views (at the layer's own
    size and as channel means), so nothing large is held or cached; at the fractions in `resized_at`, also at
    every smaller spatial size among `layers` (what `resized_grid` needs).
    """
    import torch

    from ..networks.hooks import record

    if not layers:
        raise ValueError("no layers to record")
    inputs = run.data(split).inputs[:images]
    batches = [inputs[i : i + 500] for i in range(0, len(inputs), 500)]
    fractions = run.config.checkpoints if fractions is None else fractions
    wanted = [float(f) for f in resized_at]
    out, sizes = {}, ()
    for f in fractions:
        # channels-last convolutions: about a third faster on the CPU for these few-channel layers
        net = run.model(f).to(memory_format=torch.channels_last)
        acts = record(net, [b.to(memory_format=torch.channels_last) for b in batches], list(layers), progress=False)
        if not sizes:
            sizes = tuple(sorted({a.shape[2] if a.ndim == 4 else 1 for a in acts.values()}))
        resize = any(np.isclose(f, w) for w in wanted)
        out[float(f)] = {name: layer_views(acts[name], sizes if resize else (), per_image, seed) for name in layers}
    return out


def own_size(views: Views) -> int:
    """A layer's own spatial size: the largest it is kept at (1 for a dense layer)."""
    return max(views)


def view(views: Views, reduction: Reduction = "positions") -> np.ndarray:
    """A layer's (samples, neurons) array: "positions", at its own size, each (image, position) a sample (the
    SVCCA paper's convention); "means", channel means (a labelled variant). A dense layer is the same for both."""
    if reduction not in ("positions", "means"):
        raise ValueError(f"reduction must be 'positions' or 'means', got {reduction!r}")
    return views[own_size(views) if reduction == "positions" else 1]


def pair_values(pairs: Sequence[tuple[Any, Any]], name: str = "svcca", **options) -> np.ndarray:
    """The registered measure `name` (with `options`) of each (x, y) pair of (samples, features) arrays, each
    distinct array prepared once: (len(pairs),)."""
    m = measure(name)
    arrays = list({id(a): a for pair in pairs for a in pair}.values())
    for x, y in pairs:
        if len(x) != len(y):
            raise ValueError(f"layers to compare hold different samples: {len(x)} and {len(y)}")
    options = m.resolve(options)
    prepared = dict(zip(map(id, arrays), parallel_map(lambda a: m.prepare(as_array(a, native=True), **options), arrays)))
    return np.array(parallel_map(lambda p: float(m.compare(prepared[id(p[0])], prepared[id(p[1])])), pairs))


def similarity_to(
    target: Mapping[str, Views],
    sources: Sequence[Mapping[str, Views]],
    layers: Sequence[str],
    reduction: Reduction = "positions",
    keep: int | float = 0.99,
) -> np.ndarray:
    """SVCCA of each layer of each source with the same layer of `target`, both reduced the same way (`view`),
    (len(sources), len(layers)): e.g. every checkpoint against the final network (each layer's similarity to its
    final self), or control networks against it."""
    pairs = [(view(s[name], reduction), view(target[name], reduction)) for s in sources for name in layers]
    return pair_values(pairs, keep=keep).reshape(len(sources), len(layers))


def resized_grid(rows: Mapping[str, Views], cols: Mapping[str, Views], keep: int | float = 0.99) -> Grid:
    """SVCCA of every layer of `rows` with every layer of `cols`, each cell at the smaller of the two layers'
    spatial sizes: the larger layer average-pooled down to it, then each (image, position) a sample. A dense layer
    counts as 1 x 1, so against it a conv layer enters as its channel means; two layers of one size (the diagonal
    of two recordings of the same network) are compared at their own size, as in `similarity_to`."""
    cells = []
    for r in rows:
        for c in cols:
            size = min(own_size(rows[r]), own_size(cols[c]))
            for name, views in ((r, rows[r]), (c, cols[c])):
                if size not in views:
                    raise ValueError(f"layer {name!r} is not kept at size {size}: record it with resized_at")
            cells.append((rows[r][size], cols[c][size]))
    values = pair_values(cells, keep=keep).reshape(len(rows), len(cols))
    return Grid(values, tuple(rows), tuple(cols), "svcca")


# --- convergence relative to controls ----------------------------------------------------------------------------

def progress(similarity, control) -> np.ndarray:
    """The share of the way from a control's similarity to 1 that `similarity` has covered, (s - c) / (1 - c),
    per layer (`control` broadcasts over `similarity`'s leading axes): 0 at the control's level, 1 at identity,
    negative below the control; nan where the control is at 1 (within 1e-6), leaving no way to cover."""
    s, c = np.asarray(similarity, dtype=float), np.asarray(control, dtype=float)
    room = 1.0 - c
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(room > 1e-6, (s - c) / np.where(room > 1e-6, room, 1.0), np.nan)


def every_seed(values: Sequence[float], at_least: float) -> bool | None:
    """A verdict over seeds: True if every value is >= `at_least`, False if a defined value is below it, None
    (undetermined) if none fails but some are undefined (nan)."""
    values = np.asarray(values, dtype=float)
    defined = values[~np.isnan(values)]
    if (defined < at_least).any():
        return False
    return None if len(defined) < len(values) else True


def order_chance(first: Sequence[float], draws: int = 20_000, seed: int = 0) -> float:
    """Probability that a random depth order (every permutation of the layers equally likely) gives a Spearman
    correlation of depth with `first` at least as large as the observed one: the control of a bottom-up order.
    nan when the correlation is undefined (ties everywhere, nan values). Exact up to 8 layers; beyond, estimated
    from `draws` random permutations (`seed`)."""
    values = np.asarray(first, dtype=float)
    observed = depth_correlation(values)
    if np.isnan(observed):
        return float("nan")
    if len(values) <= 8:
        orders = np.array(list(permutations(range(len(values)))))
    else:
        rng = np.random.default_rng(seed)
        orders = np.argsort(rng.random((draws, len(values))), axis=1)
    shuffled = np.array([depth_correlation(values[order]) for order in orders])
    return float(np.mean(shuffled >= observed - 1e-12))


@dataclass(frozen=True)
class SeedCurves:
    """Each layer's similarity to its final self over training, for networks of several seeds, with controls.

    `curves` (seeds, fractions, layers); `untrained`, `trained` (seeds, seeds - 1, layers): the same layer of every
    other seed's untrained and trained network compared with this seed's final network the same way (`reduction`,
    `keep`). `untrained_level`, `trained_level` (seeds, layers): their means over the other seeds.
    """

    layers: tuple[str, ...]
    fractions: tuple[float, ...]
    reduction: str
    keep: int | float
    curves: np.ndarray
    untrained: np.ndarray
    trained: np.ndarray

    def __post_init__(self):
        seeds, shape = len(self.curves), (len(self.fractions), len(self.layers))
        if self.curves.ndim != 3 or self.curves.shape[1:] != shape:
            raise ValueError(f"curves must be (seeds, fractions, layers) = (S, {shape[0]}, {shape[1]}), "
                             f"got shape {self.curves.shape}")
        for name in ("untrained", "trained"):
            if getattr(self, name).shape != (seeds, seeds - 1, shape[1]):
                raise ValueError(f"{name} must be (seeds, seeds - 1, layers) = {(seeds, seeds - 1, shape[1])}, "
                                 f"got shape {getattr(self, name).shape}")

    @property
    def untrained_level(self) -> np.ndarray:
        """(seeds, layers): the untrained control, mean over the other seeds."""
        return self.untrained.mean(axis=1)

    @property
    def trained_level(self) -> np.ndarray:
        """(seeds, layers): the trained-other-seed control, mean over the other seeds."""
        return self.trained.mean(axis=1)

    def select(self, layers: Sequence[str]) -> SeedCurves:
        """The same curves and controls for a subset of the layers, in the order given."""
        k = [self.layers.index(name) for name in layers]
        return SeedCurves(tuple(layers), self.fractions, self.reduction, self.keep, self.curves[..., k],
                          self.untrained[..., k], self.trained[..., k])


def seed_curves(
    views: Sequence[Mapping[float, Mapping[str, Views]]],
    layers: Sequence[str],
    reduction: Reduction = "positions",
    keep: int | float = 0.99,
    *,
    start: float = 0.0,
    final: float = 1.0,
) -> SeedCurves:
    """`SeedCurves` from `record_views` of networks of two or more seeds (one mapping fraction -> layers each,
    the same fractions): every checkpoint, and every other seed's checkpoints `start` (untrained) and `final`
    (trained), compared by SVCCA with the seed's checkpoint `final`, layer by layer (`similarity_to`)."""
    if len(views) < 2:
        raise ValueError("controls need networks of at least two seeds")
    fractions = tuple(views[0])
    if any(tuple(v) != fractions for v in views):
        raise ValueError("every seed must be recorded at the same fractions")
    curves, untrained, trained = [], [], []
    for s, own in enumerate(views):
        others = [v for o, v in enumerate(views) if o != s]
        sources = [own[f] for f in fractions] + [v[start] for v in others] + [v[final] for v in others]
        values = similarity_to(own[final], sources, layers, reduction, keep)
        curves.append(values[: len(fractions)])
        untrained.append(values[len(fractions) : len(fractions) + len(others)])
        trained.append(values[len(fractions) + len(others) :])
    return SeedCurves(tuple(layers), fractions, reduction, keep, np.array(curves), np.array(untrained), np.array(trained))


@dataclass(frozen=True)
class BottomUp:
    """Bottom-up convergence of one architecture over seeds, each layer measured against a control level.

    `progress` (seeds, fractions, layers): the share of the way from the control level (`rule`: the untrained or
    the trained-other-seed level) to 1 that each layer's similarity to its final self has covered (`progress`);
    `first` (seeds, layers): the checkpoint from which it stays >= `threshold` (`stay`; else its first
    crossing), nan if undefined; `spearman` (seeds,): rank correlation of depth with `first` (+1 strictly
    bottom-up; nan on ties everywhere or undefined layers); `chance` (seeds,): `order_chance` of it; `gap`
    (seeds,): mean progress of the lower half of the layers minus the upper half's at fraction `at`
    (`lower_minus_upper`).
    """

    layers: tuple[str, ...]
    fractions: tuple[float, ...]
    rule: str
    threshold: float
    stay: bool
    at: float
    progress: np.ndarray
    first: np.ndarray
    spearman: np.ndarray
    chance: np.ndarray
    gap: np.ndarray


def bottom_up(
    curves: SeedCurves,
    *,
    rule: Literal["untrained", "trained"] = "untrained",
    threshold: float = 0.9,
    stay: bool = True,
    at: float = 0.35,
) -> BottomUp:
    """`BottomUp` of `curves` (layers in depth order, input first; `SeedCurves.select` picks them): a layer has
    converged at t when its similarity to its final self has covered `threshold` of the way from the control
    level of `rule` ("untrained": the same layer of untrained networks of the other seeds; "trained": of trained
    ones) to 1, from t on (`stay`)."""
    if rule not in ("untrained", "trained"):
        raise ValueError(f"rule must be 'untrained' or 'trained', got {rule!r}")
    fractions = curves.fractions
    if not any(np.isclose(at, f) for f in fractions):
        raise ValueError(f"no checkpoint at {at}; the curves have {fractions}")
    control = curves.untrained_level if rule == "untrained" else curves.trained_level
    p = progress(curves.curves, control[:, None, :])
    orders = [convergence_order(seed, fractions, threshold, curves.layers, stay) for seed in p]
    first = np.array([o.first for o in orders])
    k = int(np.argmin(np.abs(np.asarray(fractions) - at)))
    return BottomUp(
        curves.layers, fractions, rule, float(threshold), stay, float(at), p, first,
        np.array([o.spearman for o in orders]), np.array([order_chance(f) for f in first]),
        np.array([lower_minus_upper(seed[k]) for seed in p]),
    )
