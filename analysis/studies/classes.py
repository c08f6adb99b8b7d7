"""When are classes learned (SVCCA paper, Sec. 5, and its figure of an ImageNet ResNet): each layer's CCA
similarity to the logit of a single class, over depth, and the numbers that turn those curves into claims.

A class logit is one number per image. Against it, DFT-CCA (`conv="dft"`) sees the logit as (n, 1, 1, 1): a
spatially constant signal has only the DFT's frequency 0, so only the conv layer's frequency 0, its channel
means, enters, and the similarity is the multiple correlation of the logit with the channel means (the
authors' `dft_ccas.fourier_ccas` docstring says the same of a vector reshaped to (n, 1, 1, 1)). The variant
`conv="positions"` treats each (image, position) as a sample and the logit as the same at every position of its
image. Classes are chosen from a confusion matrix (`choose_classes`), never from the curves.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from itertools import combinations
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

from ..measures.conv import positions_as_samples
from ..measures.grid import Grid, similarity_grid
from ..networks.hooks import record
from ..networks.paths import data_dir
from ..networks.sources import Pretrained, imagenet_images

Conv = Literal["dft", "positions"]


def class_similarity(
    layers: Mapping[str, Any],
    logits: np.ndarray,
    classes: Mapping[str, int],
    *,
    conv: Conv = "dft",
    per_image: int | None = 16,
    shuffle: int | None = None,
    seed: int = 0,
) -> Grid:
    """CCA similarity (layers x classes) of each layer with each class's logit, a single column of `logits`.

    `layers`: name -> activations (n, d) or conv (n, c, h, w), input first; `logits` (n, n_classes) on the same
    images; `classes`: column name -> class index. `conv="dft"`: DFT-CCA with the logit as (n, 1, 1, 1), i.e. the
    multiple correlation of the logit with a conv layer's channel means (a dense layer: CCA). `conv="positions"`:
    CCA of a conv layer's (image, position) samples (`positions_as_samples`, `per_image` positions drawn per
    image with `seed`) with the logit repeated at each position. Each layer is decomposed once for all classes
    (for "dft", as CCA of the channel means: the same numbers as `dft_cca`, which would redo the layer's FFT and
    decomposition for every class). `shuffle`: permute the logits over images with
    this seed first (the shuffled-logit control, the same permutation for every class).
    """
    if conv not in ("dft", "positions"):
        raise ValueError(f"conv must be 'dft' or 'positions', got {conv!r}")
    logits = np.asarray(logits)
    if logits.ndim != 2:
        raise ValueError(f"logits must be (n, n_classes), got shape {logits.shape}")
    if shuffle is not None:
        logits = logits[np.random.default_rng(shuffle).permutation(len(logits))]
    columns = {name: logits[:, [c]] for name, c in classes.items()}
    if conv == "dft":  # DFT-CCA against (n, 1, 1, 1) is CCA with the channel means: each layer decomposed once
        means = {name: np.asarray(a).mean((2, 3)) if np.ndim(a) == 4 else a for name, a in layers.items()}
        grid = similarity_grid(means, columns, "cca", progress=False)
        return Grid(grid.values, grid.rows, grid.cols, "dft_cca")
    values = []
    for name, a in layers.items():
        a = np.asarray(a)
        if a.ndim == 4:
            a = positions_as_samples(a, per_image, seed)
        repeat = len(a) // len(logits)
        targets = {c: np.repeat(y, repeat, axis=0) for c, y in columns.items()}
        values.append(similarity_grid({name: a}, targets, "cca", progress=False).values[0])
    return Grid(np.array(values), tuple(layers), tuple(columns), "cca (positions as samples)")


def confusion_matrix(logits: np.ndarray, labels: np.ndarray, n_classes: int | None = None) -> np.ndarray:
    """Counts (n_classes, n_classes): row = true class, column = the class of the largest logit."""
    labels = np.asarray(labels)
    predicted = np.asarray(logits).argmax(1)
    n = int(n_classes or max(labels.max(), predicted.max()) + 1)
    return np.bincount(labels * n + predicted, minlength=n * n).reshape(n, n)


@dataclass(frozen=True)
class ClassChoice:
    """The classes of the study, chosen from a confusion matrix: one easily separated class and two pairs of
    confusable classes from different confusion groups. `confusion` (k, k): the symmetric confusion rates
    used, (P[i, j] + P[j, i]) / 2 with P the row-normalised confusion matrix, 0 on the diagonal."""

    easy: int
    pairs: tuple[tuple[int, int], tuple[int, int]]
    confusion: np.ndarray | None = None

    @property
    def classes(self) -> tuple[int, ...]:
        """The easy class, then the two pairs."""
        return (self.easy, *self.pairs[0], *self.pairs[1])

    @property
    def confusable(self) -> tuple[int, ...]:
        """The four classes of the two pairs."""
        return (*self.pairs[0], *self.pairs[1])


#: The SVCCA paper's classes (ImageNet indices): fire engine; Norfolk and Norwich terriers; Eskimo dog and Siberian husky.
PAPER_CHOICE = ClassChoice(555, ((185, 186), (248, 250)))


def choose_classes(confusion: np.ndarray, groups: Sequence[Sequence[int]] | None = None) -> ClassChoice:
    """The classes of the study from confusion counts (true x predicted), by a criterion fixed in advance:

    the easy class confuses least (smallest sum of its symmetric confusion rates with every other class);
    pair 1 is the most confused pair of the other classes; pair 2 the most confused pair disjoint from both whose
    two classes are confused with each other more than either is with either class of pair 1 (a separate
    confusion group). `groups` (two groups of classes, e.g. named in advance): instead, each pair is the most
    confused pair within its group. Ties go to the lower class index. A ValueError when no second pair qualifies.
    """
    counts = np.asarray(confusion, dtype=float)
    if counts.ndim != 2 or counts.shape[0] != counts.shape[1] or counts.shape[0] < 5:
        raise ValueError(f"need a square confusion matrix of at least 5 classes, got shape {counts.shape}")
    totals = counts.sum(1, keepdims=True)
    if (totals == 0).any():
        raise ValueError(f"classes {np.flatnonzero(totals[:, 0] == 0).tolist()} have no samples")
    rates = counts / totals
    sym = (rates + rates.T) / 2
    np.fill_diagonal(sym, 0.0)
    easy = int(np.argmin(sym.sum(1)))
    others = [c for c in range(len(sym)) if c != easy]
    if groups is not None:
        if len(groups) != 2 or any(len(set(g) - {easy}) < 2 for g in groups) or set(groups[0]) & set(groups[1]):
            raise ValueError(f"groups must be two disjoint groups of at least two classes besides the easy one {easy}")
        best = [max(combinations(sorted(set(g) - {easy}), 2), key=lambda p: sym[p]) for g in groups]
        return ClassChoice(easy, (best[0], best[1]), sym)
    pairs = sorted(combinations(others, 2), key=lambda p: -sym[p])  # stable: ties keep index order
    first = pairs[0]
    for i, j in pairs[1:]:
        if {i, j} & set(first):
            continue
        if sym[i, j] > max(sym[k, m] for k in (i, j) for m in first):
            return ClassChoice(easy, (first, (i, j)), sym)
    raise ValueError(f"no pair of classes forms a confusion group apart from the most confused pair {first}")


def crossing_depth(curve: Sequence[float], threshold: float) -> float:
    """The depth at which `curve` (one value per layer, input first) first reaches `threshold`, in layers from the
    first (0), linearly interpolated between the layer below and the layer that reaches it; inf if it never
    does, nan if the curve holds nan."""
    values = np.asarray(curve, dtype=float)
    if values.ndim != 1 or not len(values):
        raise ValueError(f"a curve is one value per layer, got shape {values.shape}")
    if np.isnan(values).any():
        return float("nan")
    reached = np.flatnonzero(values >= threshold)
    if not len(reached):
        return float("inf")
    k = int(reached[0])
    if k == 0:
        return 0.0
    below, at = values[k - 1], values[k]
    return float(k - 1 + (threshold - below) / (at - below))


def curve_distance(a: Sequence[float], b: Sequence[float]) -> float:
    """Distance between two similarity curves over the same layers: the mean absolute difference."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if a.shape != b.shape or a.ndim != 1 or not len(a):
        raise ValueError(f"curves must be 1-D over the same layers, got shapes {a.shape} and {b.shape}")
    return float(np.abs(a - b).mean())


def group_distances(curves: Mapping[Any, Sequence[float]], groups: Sequence[Sequence[Any]]) -> tuple[float, float]:
    """Mean `curve_distance` between classes of the same group (within) and of different groups (across)."""
    if len(groups) < 2 or any(len(g) < 2 for g in groups):
        raise ValueError("need at least two groups of at least two classes each")
    group_of = {c: k for k, g in enumerate(groups) for c in g}
    within, across = [], []
    for a, b in combinations(group_of, 2):
        (within if group_of[a] == group_of[b] else across).append(curve_distance(curves[a], curves[b]))
    return float(np.mean(within)), float(np.mean(across))


@dataclass(frozen=True)
class CurveStats:
    """One network's curves as numbers: each class's `crossing` depth; `depth_margin`, the mean crossing depth of
    the confusable classes minus the easy class's (positive: the easy class is linear earlier); `earliest`,
    whether the easy class crosses before every confusable class (None: a tie, e.g. both already at the first
    layer, or a depth undefined); `within` and `across`, the mean curve distance within a pair and across the
    pairs (over `distance_layers`), and `separation = across - within`."""

    crossing: dict[int, float]
    depth_margin: float
    earliest: bool | None
    within: float
    across: float

    @property
    def separation(self) -> float:
        """Across-pair minus within-pair curve distance (positive: the pairs' curves track each other)."""
        return self.across - self.within


def class_columns(grid: Grid, classes: Sequence[int], names: Mapping[int, Any] | None = None) -> np.ndarray:
    """The curves (layers, len(classes)) of `classes` in a layers x classes grid; `names`: class index -> the
    grid's column name (default: the index itself)."""
    return np.asarray(grid)[:, [grid.cols.index(names[c] if names else c) for c in classes]]


def curve_stats(grid: Grid, choice: ClassChoice, threshold: float, distance_layers: Sequence[str],
                names: Mapping[int, Any] | None = None) -> CurveStats:
    """`CurveStats` of a class-similarity grid (layers x classes, e.g. `class_similarity`) for the classes of
    `choice`; `names`: class index -> the grid's column name (default: the index itself)."""
    names = names or {c: c for c in choice.classes}
    curve = dict(zip(choice.classes, class_columns(grid, choice.classes, names).T))
    crossing = {c: crossing_depth(curve[c], threshold) for c in choice.classes}
    confusable = [crossing[c] for c in choice.confusable]
    with np.errstate(invalid="ignore"):
        margin = float(np.mean(confusable) - crossing[choice.easy])
    rows = [grid.rows.index(layer) for layer in distance_layers]
    within, across = group_distances({c: curve[c][rows] for c in choice.confusable}, choice.pairs)
    first, rest = crossing[choice.easy], min(confusable)
    earliest = None if first == rest or np.isnan([first, rest]).any() else bool(first < rest)
    return CurveStats(crossing, margin, earliest, within, across)


def imagenet_sample(
    root: Path | None = None, per_class: int = 10, transform=None
) -> tuple[torch.Tensor, torch.Tensor]:
    """`per_class` ImageNet validation images of every one of the 1000 classes (`sources.imagenet_images`) from
    `root/imagenet/val/<wnid>/*.JPEG` (root: `data_dir()`); a FileNotFoundError saying how to lay them out unless
    all 1000 class folders are there."""
    val = Path(root if root is not None else data_dir()) / "imagenet" / "val"
    found = sum(p.is_dir() for p in val.iterdir()) if val.is_dir() else 0
    if found != 1000:
        raise FileNotFoundError(
            f"ImageNet validation images not found: {val} holds {found} class folders, expected 1000 in "
            f"torchvision's ImageFolder layout {val}/<wnid>/*.JPEG (e.g. {val}/n03345487/*.JPEG, fire engine). To "
            f"make it, put ILSVRC2012_img_val.tar and ILSVRC2012_devkit_t12.tar.gz (image-net.org) in {val.parent} "
            f"and run once `torchvision.datasets.ImageNet({str(val.parent)!r}, split='val')`, which sorts the "
            "50,000 images into val/<wnid>/ by their labels"
        )
    return imagenet_images(root, classes=range(1000), per_class=per_class, transform=transform)


def pretrained_activations(
    source: Pretrained, layers: Sequence[str], images: torch.Tensor | Iterable, pool: int | None = 1,
    batch_size: int = 64, progress: bool | None = None,
) -> dict[str, np.ndarray]:
    """Activations of `layers` of a `Pretrained` network on preprocessed `images` (n, 3, H, W), conv outputs
    average-pooled to `pool` x `pool` positions (pool=1: channel means (n, c, 1, 1), which give DFT-CCA against a
    single logit exactly, in 1 / (h * w) of the memory of the full maps; None: the full maps)."""
    batches = images.split(batch_size) if isinstance(images, torch.Tensor) else images
    return record(source.model(), batches, list(layers), device=source.device, pool=pool, progress=progress)


def curves(
    layers: Mapping[str, Any], logits: np.ndarray, classes: Mapping[str, int], *,
    positions: Mapping[str, Any] | None = None, per_image: int | None = 16, seed: int = 0,
) -> dict[str, Grid]:
    """One network's class-similarity grids (layers x classes): "dft" (`class_similarity`) and "positions" (the
    variant, on `positions` if given, e.g. maps pooled to fewer positions, else on `layers`), each also with the
    logits permuted over images by seed `seed` ("dft shuffled", "positions shuffled")."""
    positions = positions if positions is not None else layers
    grids = {}
    for shuffle in (None, seed):
        suffix = "" if shuffle is None else " shuffled"
        grids["dft" + suffix] = class_similarity(layers, logits, classes, shuffle=shuffle)
        grids["positions" + suffix] = class_similarity(positions, logits, classes, conv="positions",
                                                       per_image=per_image, seed=seed, shuffle=shuffle)
    return grids


def run_curves(run: Any, fraction: float, layers: Sequence[str], classes: Mapping[str, int], logit_layer: str = "logits",
               **options) -> dict[str, Grid]:
    """`curves` of a training run's `layers` at `fraction` of training (0: the untrained network of its seed),
    against its `logit_layer`, on its test images; `options` as in `curves`."""
    acts = run.activations(list(dict.fromkeys([*layers, logit_layer])), fraction=fraction)
    return curves({name: acts[name] for name in layers}, acts[logit_layer], classes, **options)


def pretrained_curves(source: Pretrained, images: torch.Tensor, layers: Sequence[str], classes: Mapping[str, int],
                      logit_layer: str = "fc", positions_pool: int = 4, **options) -> dict[str, Grid]:
    """`curves` of a `Pretrained` network's `layers` on preprocessed `images`: recorded as channel means for
    DFT-CCA, and average-pooled to `positions_pool` x `positions_pool` positions for the positions variant."""
    means = pretrained_activations(source, list(dict.fromkeys([*layers, logit_layer])), images, pool=1)
    pooled = pretrained_activations(source, layers, images, pool=positions_pool)
    return curves({name: means[name] for name in layers}, means[logit_layer], classes, positions=pooled, **options)


@dataclass(frozen=True)
class Comparison:
    """A finding over networks against its control: `ours` and `control` (means over networks), `holds` (None:
    undetermined), and `numbers` (per network)."""

    holds: bool | None
    ours: float
    control: float
    numbers: dict[str, Any]

    @property
    def margin(self) -> float:
        """`ours - control`."""
        return self.ours - self.control


def easy_class_earlier(trained: Sequence[CurveStats], untrained: Sequence[CurveStats], shuffled_max: float,
                       threshold: float, margin: float) -> Comparison:
    """Claim 1: in every trained network the easy class reaches `threshold` before every confusable class, its lead
    (`depth_margin`, mean over networks) beats the untrained networks' by at least `margin` layers, and the
    shuffled-logit curves stay below `threshold` (`shuffled_max`, their largest value), so reaching it means
    something. Fails if any of these is false; else undetermined if one is undefined (a lead that is not finite,
    a tie in `earliest`)."""
    ours = [s.depth_margin for s in trained]
    control = [s.depth_margin for s in untrained]
    earliest = [s.earliest for s in trained]
    numbers = {"lead_trained": ours, "lead_untrained": control, "shuffled_max": shuffled_max,
               "easy_first": ["tie" if e is None else e for e in earliest]}
    mine, theirs = float(np.mean(ours)), float(np.mean(control))
    lead = None if not np.all(np.isfinite([*ours, *control])) else mine - theirs >= margin
    tests = [*earliest, lead, shuffled_max < threshold]
    holds = False if False in tests else None if None in tests else True
    return Comparison(holds, mine, theirs, numbers)


def pairs_track(trained: Sequence[CurveStats], controls: Mapping[str, Sequence[CurveStats]], margin: float) -> Comparison:
    """Claim 2: in every trained network the curves of a pair are closer than curves across the pairs
    (`separation > 0`), and the mean separation beats every control's (the largest of their means) by at least
    `margin`. Undetermined when a separation is nan."""
    ours = [s.separation for s in trained]
    theirs = {name: [s.separation for s in stats] for name, stats in controls.items()}
    numbers = {"separation_trained": ours, **{f"separation_{name}": v for name, v in theirs.items()},
               "within_trained": [s.within for s in trained], "across_trained": [s.across for s in trained]}
    control = max(float(np.mean(v)) for v in theirs.values())
    if np.isnan([*ours, *(x for v in theirs.values() for x in v)]).any():
        return Comparison(None, float(np.mean(ours)), control, numbers)
    mine = float(np.mean(ours))
    return Comparison(bool(min(ours) > 0 and mine - control >= margin), mine, control, numbers)
