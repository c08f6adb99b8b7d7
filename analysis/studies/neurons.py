"""Single units of a layer and how they correspond across networks (Li et al. 2016; SVCCA Fig. 1).

A unit is one column of a layer's activations (n_samples, n_units): a neuron of a dense layer, a channel of
an average-pooled conv layer, or a (channel, position) of a flattened one. Correlations here are Pearson
correlations between units over the samples (similarities in [-1, 1]); a dead unit (no variance) correlates
0 with everything rather than NaN.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..measures.checks import as_array, as_pair


def unit_norms(x) -> np.ndarray:
    """Each unit's raw activation norm sqrt(sum_n x_nj²) (d,) over samples x (n, d): how strongly it fires."""
    return np.linalg.norm(as_array(x), axis=0)


def top_units(x, k: int) -> np.ndarray:
    """Indices (k,) of the k units of x (n, d) with the largest raw activation norm, largest first.

    Raw, not centred: for post-ReLU units this ranks by how strongly they fire (the SVCCA paper's
    "highest activation" neurons), not by how much they vary. Ties keep the lower index first.
    """
    if not 1 <= k <= np.shape(x)[-1]:
        raise ValueError(f"k must lie in [1, {np.shape(x)[-1]}] (the number of units), got {k}")
    return np.argsort(-unit_norms(x), kind="stable")[:k]


def unit_correlations(x, y) -> np.ndarray:
    """Pearson correlation (similarity) of every unit of x (n, d_x) with every unit of y (n, d_y): (d_x, d_y).

    float64; units with no variance correlate 0 with everything (never NaN).
    """
    x, y = as_pair(x, y)
    xs, ys = _standardized(x), _standardized(y)
    return np.clip(xs.T @ ys, -1.0, 1.0)


def best_matches(corr: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each row unit of a correlation matrix (d_x, d_y): its best-matching column by |r| and that r.

    Returns (indices (d_x,), correlations (d_x,), signed); a semi-matching (several rows may pick one column).
    """
    corr = np.asarray(corr, dtype=np.float64)
    if corr.ndim != 2 or 0 in corr.shape:
        raise ValueError(f"corr must be a non-empty 2-D matrix (d_x, d_y), got shape {corr.shape}")
    idx = np.argmax(np.abs(corr), axis=1)
    return idx, corr[np.arange(len(corr)), idx]


@dataclass(frozen=True)
class TopUnitMatch:
    """How the k highest-activation units of two layers x and y correspond (SVCCA Fig. 1's left panels).

    `top_x`, `top_y` (k,): the units (`top_units`); `correlations` (k, k): between them, rows x's; `partners`,
    `partner_correlations` (k,): each of x's top units' best match among all of y's units (`best_matches`).
    """

    top_x: np.ndarray
    top_y: np.ndarray
    correlations: np.ndarray
    partners: np.ndarray
    partner_correlations: np.ndarray

    @property
    def best_pair(self) -> float:
        """The largest |r| between a top unit of x and a top unit of y."""
        return float(np.abs(self.correlations).max())


def match_top_units(x, y, k: int) -> TopUnitMatch:
    """`TopUnitMatch` of the k highest-activation units of x (n, d_x) and of y (n, d_y)."""
    x, y = as_pair(x, y)
    top_x, top_y = top_units(x, k), top_units(y, k)
    partners, partner_correlations = best_matches(unit_correlations(x[:, top_x], y))
    return TopUnitMatch(top_x, top_y, unit_correlations(x[:, top_x], y[:, top_y]), partners, partner_correlations)


def class_variance_fraction(x, labels) -> np.ndarray:
    """Fraction of each unit's variance explained by the class (correlation ratio η²) (d,) in [0, 1], for
    x (n, d) and integer labels (n,): variance of the class means over total variance; 0 for a dead unit."""
    x = as_array(x)
    labels = np.asarray(labels)
    if labels.shape != (len(x),):
        raise ValueError(f"labels must have shape ({len(x)},) (one per sample), got {labels.shape}")
    _, inverse, counts = np.unique(labels, return_inverse=True, return_counts=True)
    xc = x - x.mean(axis=0)
    class_means = np.zeros((len(counts), x.shape[1]))
    np.add.at(class_means, inverse, xc)
    class_means /= counts[:, None]
    between, total = counts @ class_means**2, (xc**2).sum(axis=0)
    return np.divide(between, total, out=np.zeros_like(total), where=total > 0).clip(0.0, 1.0)


def align_signs(x, reference=None) -> np.ndarray:
    """Columns of x (n, k) with signs flipped, for plotting: to correlate positively with the matching column
    of `reference` (n, k), or, without one, to have positive skewness (the long tail points up)."""
    x = as_array(x)
    if reference is None:
        xc = x - x.mean(axis=0)
        score = (xc**3).sum(axis=0)
    else:
        ref = as_array(reference, "reference")
        if ref.shape != x.shape:
            raise ValueError(f"reference must have x's shape {x.shape}, got {ref.shape}")
        score = ((x - x.mean(axis=0)) * (ref - ref.mean(axis=0))).sum(axis=0)
    return x * np.where(score < 0, -1.0, 1.0)


def _standardized(x: np.ndarray) -> np.ndarray:
    """Centred columns of unit norm (so that xsᵀ ys holds correlations); zero columns stay zero."""
    xc = x - x.mean(axis=0)
    norm = np.linalg.norm(xc, axis=0)
    dead = x.max(axis=0) == x.min(axis=0)  # exactly constant: its centred values are rounding only
    return np.divide(xc, norm, out=np.zeros_like(xc), where=~dead & (norm > 0))
