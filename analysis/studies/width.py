"""Networks of one architecture at several widths (PWCCA paper, Morcos et al. 2018, Sec. 3): the distance
between networks of the same width, layer by layer, and how it follows width.

Layers come from `analysis.networks.samples.sample_layers` (conv layers as the papers compare them);
`same_width_distances` gives 1 - similarity for every pair of seeds within each width;
`width_trend` states how a distance follows width as Spearman's rank correlation, with its spread over which
pair of seeds stands for each width.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import product
from typing import Any

import numpy as np
from scipy.stats import rankdata

from ..measures.group import compare_group


@dataclass(frozen=True)
class WidthDistances:
    """1 - similarity of every pair of networks within each width: `values` (widths, layers, pairs), float64;
    `pairs`: the two networks' positions in their width's list, per column."""

    widths: tuple[float, ...]
    layers: tuple
    pairs: tuple[tuple[int, int], ...]
    values: np.ndarray
    measure: str

    def __getitem__(self, layer) -> np.ndarray:
        """One layer's distances (widths, pairs)."""
        return self.values[:, self.layers.index(layer)]


def same_width_distances(
    networks: Mapping[float, Sequence[Mapping[str, Any]]], layers: Sequence | None = None, measure: str = "pwcca",
    **options,
) -> WidthDistances:
    """Distance (1 - `measure`, e.g. the PWCCA distance) between every pair of the networks of each width.

    `networks`: width -> the networks of that width (the same number for each width), each a mapping layer
    name -> activations (n, d) on the same samples as the others of its width. `layers`, `measure`,
    `options`: as in `compare_group` (an asymmetric measure such as PWCCA is averaged over both directions).
    """
    widths = tuple(sorted(networks))
    groups = [compare_group(list(networks[w]), measure=measure, layers=layers, progress=False, **options) for w in widths]
    if len({g.pairs for g in groups}) != 1:
        raise ValueError(f"every width needs the same number of networks, got {[len(networks[w]) for w in widths]}")
    return WidthDistances(widths, groups[0].layers, groups[0].pairs, 1.0 - np.stack([g.values for g in groups]), measure)


def rank_correlation(x: Sequence[float], y: Sequence[float]) -> float:
    """Spearman's rank correlation of x and y (ties get their mean rank); nan when either is constant."""
    rx, ry = rankdata(np.asarray(x, dtype=float)), rankdata(np.asarray(y, dtype=float))
    if len(rx) != len(ry):
        raise ValueError(f"x and y must have the same length, got {len(rx)} and {len(ry)}")
    if len(rx) < 2 or np.all(rx == rx[0]) or np.all(ry == ry[0]):
        return float("nan")
    return float(np.corrcoef(rx, ry)[0, 1])


@dataclass(frozen=True)
class WidthTrend:
    """How values (widths, pairs) follow width. `rho`: Spearman's rank correlation of width with the values
    over every (width, pair) point (-1: every pair of a wider width below every pair of a narrower one);
    `choices`: the same over the widths with one pair standing for each width, for every such choice (the
    spread over pairs); `fall`: mean at the narrowest width minus mean at the widest."""

    rho: float
    choices: np.ndarray
    fall: float

    @property
    def spread(self) -> tuple[float, float]:
        """The lowest and highest `rho` over the choices of one pair per width."""
        return float(np.nanmin(self.choices)), float(np.nanmax(self.choices))


def width_trend(widths: Sequence[float], values: np.ndarray, max_choices: int = 10_000, seed: int = 0) -> WidthTrend:
    """`WidthTrend` of `values` (len(widths), pairs). Every choice of one pair per width is enumerated, or
    `max_choices` of them drawn with `seed` when there are more."""
    values = np.asarray(values, dtype=float)
    w = np.asarray(widths, dtype=float)
    if values.ndim != 2 or values.shape[0] != len(w):
        raise ValueError(f"values must be (widths, pairs) = ({len(w)}, P), got shape {values.shape}")
    n_widths, n_pairs = values.shape
    if n_pairs**n_widths <= max_choices:
        picks = np.array(list(product(range(n_pairs), repeat=n_widths)))
    else:
        picks = np.random.default_rng(seed).integers(n_pairs, size=(max_choices, n_widths))
    choices = np.array([rank_correlation(w, values[np.arange(n_widths), p]) for p in picks])
    rho = rank_correlation(np.repeat(w, n_pairs), values.ravel())
    return WidthTrend(rho, choices, float(values[0].mean() - values[-1].mean()))


@dataclass(frozen=True)
class WidthEffect:
    """How a distance follows width in trained networks, against the same networks untrained (their
    checkpoint 0): `trained`, `untrained` and `excess` `WidthTrend`s, the excess being each pair's trained
    distance minus (or, `relative`, divided by) the same pair's untrained distance."""

    trained: WidthTrend
    untrained: WidthTrend
    excess: WidthTrend
    relative: bool = False

    def holds(self, min_rank: float) -> bool | None:
        """Whether the trained distance falls with width (Spearman <= -`min_rank`) beyond the untrained control:
        the excess falls with width too (Spearman <= -`min_rank`) and is lower at the widest width than at the
        narrowest. None when a rank correlation is undefined."""
        if np.isnan(self.trained.rho) or np.isnan(self.excess.rho):
            return None
        return bool(self.trained.rho <= -min_rank and self.excess.rho <= -min_rank and self.excess.fall > 0)

    def reading(self, min_rank: float) -> str:
        """What the numbers show, in words: the trained distance's trend with width, then how it compares with
        the untrained control's."""
        t, u = self.trained, self.untrained
        if np.isnan(t.rho):
            return "undetermined (the trained distances tie)"
        if t.rho >= min_rank:
            return f"the trained distance rises with width (rho {t.rho:+.2f}), while the untrained one's rho is {u.rho:+.2f}"
        if t.rho > -min_rank:
            return f"no clear trend of the trained distance with width (rho {t.rho:+.2f})"
        if self.holds(min_rank):
            return f"the trained distance falls with width (rho {t.rho:+.2f}), by {t.fall:.3f}, more than the untrained one ({u.fall:.3f})"
        return (f"the trained distance falls with width (rho {t.rho:+.2f}) by {t.fall:.3f}, but not beyond the untrained "
                f"control (which falls by {u.fall:.3f}; excess rho {self.excess.rho:+.2f})")


def width_effect(widths: Sequence[float], trained: np.ndarray, untrained: np.ndarray, relative: bool = False) -> WidthEffect:
    """`WidthEffect` of distances (len(widths), pairs) of trained networks and of the same pairs untrained."""
    trained, untrained = np.asarray(trained, dtype=float), np.asarray(untrained, dtype=float)
    if trained.shape != untrained.shape:
        raise ValueError(f"trained and untrained distances must pair up, got shapes {trained.shape} and {untrained.shape}")
    excess = trained / untrained if relative else trained - untrained
    return WidthEffect(width_trend(widths, trained), width_trend(widths, untrained), width_trend(widths, excess), relative)
