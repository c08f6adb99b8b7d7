"""Canonical correlation analysis of two layers: CCA, SVCCA and PWCCA (similarities, 1 = same)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from .checks import as_pair, warn_if_saturated

KeepRule = Literal["variance", "singular_values"]


@dataclass(frozen=True)
class CCAResult:
    """Canonical correlations of two layers and the directions that reach them.

    `rho` (k,) descending in [0, 1]; `weights` (k,) non-negative summing to 1 (uniform for CCA and SVCCA,
    projection weights for PWCCA); `(x - x_mean) @ x_coef` are x's k canonical variates, each of unit
    variance, and likewise for y; the i-th variates of x and y correlate with coefficient `rho[i]`.
    """

    rho: np.ndarray
    weights: np.ndarray
    x_coef: np.ndarray
    y_coef: np.ndarray
    x_mean: np.ndarray
    y_mean: np.ndarray

    @property
    def mean(self) -> float:
        """Weighted mean of the canonical correlations: the similarity, in [0, 1]."""
        return float(self.weights @ self.rho)

    def x_variates(self, x) -> np.ndarray:
        """x's canonical variates (n, k) for activations `x` (n, d_x): the aligned features of x."""
        return (np.asarray(x, dtype=np.float64) - self.x_mean) @ self.x_coef

    def y_variates(self, y) -> np.ndarray:
        """y's canonical variates (n, k) for activations `y` (n, d_y)."""
        return (np.asarray(y, dtype=np.float64) - self.y_mean) @ self.y_coef


@dataclass(frozen=True)
class Subspace:
    """A centred layer as its thin SVD `x - mean = u @ diag(s) @ vt`, numerically null directions dropped."""

    u: np.ndarray  # (n, r) orthonormal
    s: np.ndarray  # (r,) descending, positive
    vt: np.ndarray  # (r, d)
    mean: np.ndarray  # (d,)

    def top(self, k: int) -> "Subspace":
        """The k leading singular directions (SVCCA's reduction)."""
        return Subspace(self.u[:, :k], self.s[:k], self.vt[:k], self.mean)


def subspace(x: np.ndarray) -> Subspace:
    """Centre `x` (n, d) and decompose it; directions below numpy's rank tolerance (dead units) are dropped."""
    mean = x.mean(axis=0)
    u, s, vt = np.linalg.svd(x - mean, full_matrices=False)
    tol = s[0] * max(x.shape) * np.finfo(s.dtype).eps
    r = int(np.count_nonzero(s > tol))
    return Subspace(u[:, :r], s[:r], vt[:r], mean)


def n_kept(s: np.ndarray, keep: int | float, by: KeepRule = "variance") -> int:
    """How many leading singular directions SVCCA keeps.

    `keep` int: that many (at most the rank). `keep` float in (0, 1]: the fewest directions holding that
    fraction of the variance (`by="variance"`, sum of squared singular values) or of the sum of singular
    values (`by="singular_values"`, the rule of the authors' tutorials).
    """
    if isinstance(keep, (bool, np.bool_)) or not isinstance(keep, (int, np.integer, float, np.floating)):
        raise ValueError(f"keep must be an int (directions) or a float in (0, 1] (fraction), got {keep!r}")
    if isinstance(keep, (int, np.integer)):
        if keep < 1:
            raise ValueError(f"keep must be at least 1 direction, got {keep}")
        return min(int(keep), len(s))
    if not 0 < keep <= 1:
        raise ValueError(f"keep as a fraction must lie in (0, 1], got {keep}")
    if by == "variance":
        mass = s**2
    elif by == "singular_values":
        mass = s
    else:
        raise ValueError(f"by must be 'variance' or 'singular_values', got {by!r}")
    share = np.cumsum(mass) / mass.sum()
    # rounding can leave the full sum a hair under 1: never ask for more than the rank
    return min(int(np.searchsorted(share, keep - 1e-12) + 1), len(s))


def cca_of(bx: Subspace, by: Subspace, n: int, weighting: Literal["uniform", "projection"] = "uniform") -> CCAResult:
    """CCA of two decomposed layers: SVD of the product of their orthonormal bases (Björck & Golub)."""
    warn_if_saturated(n, len(bx.s), len(by.s))
    a, rho, bt = np.linalg.svd(bx.u.T @ by.u, full_matrices=False)
    k = min(len(bx.s), len(by.s))
    a, rho, b = a[:, :k], np.clip(rho[:k], 0.0, 1.0), bt[:k].T
    scale = np.sqrt(n - 1)  # unit-variance variates
    x_coef = bx.vt.T @ (a / bx.s[:, None]) * scale
    y_coef = by.vt.T @ (b / by.s[:, None]) * scale
    if weighting == "uniform":
        weights = np.full(k, 1.0 / k)
    else:
        # PWCCA (Morcos et al. 2018, eq. 3): alpha_i ∝ sum_j |<h_i, x_j>|, h_i the unit-norm canonical variate,
        # x_j the j-th centred neuron; here h_i^T X = a_i^T diag(s) vt without forming h_i.
        alpha = np.abs(a.T @ (bx.s[:, None] * bx.vt)).sum(axis=1)
        weights = alpha / alpha.sum()
    return CCAResult(rho, weights, x_coef, y_coef, bx.mean, by.mean)


def cca(x, y) -> CCAResult:
    """Canonical correlation analysis (similarity) of x (n, d_x) and y (n, d_y), numpy or torch, in float64.

    Computed from orthonormal bases of the centred layers (SVD), never from an inverted covariance, so dead
    units and collinear features are dropped rather than amplified. Returns min(rank x, rank y) correlations.
    """
    x, y = as_pair(x, y)
    return cca_of(subspace(x), subspace(y), len(x))


def svcca(x, y, keep: int | float = 0.99, by: KeepRule = "variance") -> CCAResult:
    """SVCCA (Raghu et al. 2017; similarity): keep each layer's leading singular directions, then CCA.

    `keep`: int, number of directions kept per side; float in (0, 1], fraction of each side's variance kept
    (`by="variance"`) or of its summed singular values (`by="singular_values"`, as in the authors' tutorials).
    """
    x, y = as_pair(x, y)
    bx, by_ = subspace(x), subspace(y)
    bx, by_ = bx.top(n_kept(bx.s, keep, by)), by_.top(n_kept(by_.s, keep, by))
    return cca_of(bx, by_, len(x))


def pwcca(x, y) -> CCAResult:
    """Projection-weighted CCA (Morcos et al. 2018; similarity), weights from x's side.

    Follows the paper's formula: weight of pair i ∝ sum over x's neurons j of |<h_i, x_j>|, h_i x's i-th
    canonical variate. Unlike the authors' pwcca.py (which adds neuron means to unwhitened directions), the
    result does not depend on the signs an SVD happens to return. Not symmetric: pwcca(x, y) != pwcca(y, x).
    """
    x, y = as_pair(x, y)
    return cca_of(subspace(x), subspace(y), len(x), weighting="projection")
