"""Orthogonal Procrustes distance between layers (a distance: 0 = same up to rotation and scale)."""
from __future__ import annotations

import numpy as np

from .checks import as_pair


def procrustes_distance(x, y) -> float:
    """Orthogonal Procrustes distance (Ding et al. 2021) of x (n, d_x) and y (n, d_y), in [0, 2].

    Each layer is centred and scaled to unit Frobenius norm; the distance is min over orthogonal Q of
    ||X - Y Q||_F^2 = 2 - 2 ||X' Y||_* (nuclear norm), so layers of different widths compare directly.
    """
    x, y = as_pair(x, y)
    x, y = x - x.mean(axis=0), y - y.mean(axis=0)
    x, y = x / np.linalg.norm(x), y / np.linalg.norm(y)
    nuclear = np.linalg.svd(x.T @ y, compute_uv=False).sum()
    return float(np.clip(2.0 - 2.0 * nuclear, 0.0, 2.0))
