"""Groups of networks compared layer by layer (PWCCA paper, Sec. 3.1: generalizing vs memorizing networks):
when one set of pair distances (`compare_group` of a group, layers recorded by
`analysis.networks.samples.sample_layers`) differs from another by more than their spread over pairs.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Separation:
    """How one set of pair values differs from another, layer by layer (arrays (layers,)): `gap` = mean of a
    minus mean of b over their pairs; `spread` = std of a plus std of b over their pairs (population std), so
    that the gap exceeds the spread exactly when the two mean +- std bands do not overlap."""

    gap: np.ndarray
    spread: np.ndarray

    @property
    def margin(self) -> np.ndarray:
        """gap - spread: positive where a lies above b by more than the spread."""
        return self.gap - self.spread

    @property
    def above(self) -> np.ndarray:
        """Where a's band lies entirely above b's (gap > spread)."""
        return self.gap > self.spread

    @property
    def within(self) -> np.ndarray:
        """Where the two bands overlap (|gap| <= spread): no difference beyond the spread over pairs."""
        return np.abs(self.gap) <= self.spread


def separation(a, b) -> Separation:
    """`Separation` of pair values a (layers, pairs_a) from b (layers, pairs_b), e.g. `1 - compare_group(...).values`;
    1-D inputs count as one layer."""
    a, b = np.atleast_2d(np.asarray(a, float)), np.atleast_2d(np.asarray(b, float))
    if len(a) != len(b):
        raise ValueError(f"a and b must have the same number of layers (rows), got {len(a)} and {len(b)}")
    if a.shape[1] == 0 or b.shape[1] == 0:
        raise ValueError("each set needs at least one pair")
    return Separation(a.mean(axis=1) - b.mean(axis=1), a.std(axis=1) + b.std(axis=1))
