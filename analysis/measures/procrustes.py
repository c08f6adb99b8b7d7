"""Orthogonal Procrustes distance between layers (a distance: 0 = same up to rotation and scale)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .checks import Array, cross_product, like, mean64, to_numpy, unit_scaled
from .protocol import Measure


@dataclass(frozen=True)
class UnitLayer:
    """A centred layer (n, d) scaled to unit Frobenius norm (None from moments), and that norm."""

    x: Array | None
    norm: float


def unit_layer(x: Array) -> UnitLayer:
    """Centre a validated layer (n, d) and scale it to unit Frobenius norm."""
    x = unit_scaled(x)[0]
    xc = x - like(mean64(x, 0), x)
    norm = float(np.linalg.norm(to_numpy(xc)))
    return UnitLayer(xc / norm, norm)


def _distance(cross: np.ndarray) -> float:
    """2 - 2 ||X'Y||_* for the cross product of two unit-norm layers."""
    return float(np.clip(2.0 - 2.0 * np.linalg.svd(cross, compute_uv=False).sum(), 0.0, 2.0))


PROCRUSTES = Measure(
    "procrustes", unit_layer, lambda a, b: _distance(to_numpy(cross_product(a.x, b.x, wide=True))),
    symmetric=True, similarity=False,
    from_moments=lambda gram, mean, n: UnitLayer(None, float(np.sqrt(np.trace(gram).real))),
    compare_moments=lambda a, b, cross: _distance(cross / (a.norm * b.norm)),
)


def procrustes_distance(x, y) -> float:
    """Orthogonal Procrustes distance (Ding et al. 2021) of x (n, d_x) and y (n, d_y), in [0, 2].

    Each layer is centred and scaled to unit Frobenius norm; the distance is min over orthogonal Q of
    ||X - Y Q||_F^2 = 2 - 2 ||X' Y||_* (nuclear norm), so layers of different widths compare directly.
    """
    return PROCRUSTES.pair(x, y)
