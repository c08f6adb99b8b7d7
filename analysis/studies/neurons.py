"""Single units of a layer and how they correspond across networks (Li et al. 2016; SVCCA Fig. 1).

A unit is one column of a layer's activations (n_samples, n_units): a neuron of a dense layer, a channel of
an average-pooled conv layer, or a (channel, position) of a flattened one. Correlations here are Pearson
correlations between units over the samples (similarities in [-1, 1]); a dead unit (no variance) correlates
0 with everything rather than NaN.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import combinations

import numpy as np
from threadpoolctl import threadpool_limits

from ..measures.cca import svcca
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


@dataclass(frozen=True)
class UnitComparison:
    """How one layer's units correspond across two networks x and y on the same samples, with its controls.

    Top neurons (`top_units`, k per network): `top_pair`, the largest |r| among the k x k pairs of x's and y's
    top neurons; `top_pair_shuffled`, the same with y's images shuffled (unrelated units: the chance level);
    `random_pair`, the same for k units drawn at random among each network's live units, averaged over draws;
    `partners` (k,), the |r| of each of x's top neurons with its best partner among all of y's units. SVCCA:
    `rho` (k,), the top k canonical correlations, `rho_shuffled` (k,) the same with y's images shuffled,
    `held_out` (k,) the correlation of the top k direction pairs on the odd images when fitted on the even
    ones (NaN where SVCCA keeps fewer than k directions). `class_share_neurons`, `class_share_directions`: the
    fraction of variance the class explains (`class_variance_fraction`), averaged over the k top neurons, or
    the k top SVCCA directions, of both networks.
    """

    top_pair: float
    top_pair_shuffled: float
    random_pair: float
    partners: np.ndarray
    rho: np.ndarray
    rho_shuffled: np.ndarray
    held_out: np.ndarray
    class_share_neurons: float
    class_share_directions: float

    @property
    def midpoint(self) -> float:
        """Halfway between unrelated units (`top_pair_shuffled`) and aligned features (`rho[0]`: the same
        statistic for the top k SVCCA directions, since canonical variates of different rank are uncorrelated)."""
        return (self.top_pair_shuffled + float(self.rho[0])) / 2


def compare_units(
    x, y, labels, k: int = 2, keep: int | float = 0.99, per_image: int = 1, seed: int = 0, draws: int = 100,
) -> UnitComparison:
    """`UnitComparison` of x (n * per_image, d_x) and y (n * per_image, d_y), recorded on the same n images.

    Rows are image-major, `per_image` consecutive rows per image (as `positions_as_samples` lays out a conv
    layer; 1 for a dense layer); `labels` (n,) the images' classes. Shuffling and the held-out split move whole
    images, so the positions of one image never fall on both sides. `keep`: SVCCA's kept variance (or number
    of directions); `seed` fixes the shuffle and the random units.
    """
    x, y = as_pair(x, y)
    labels = np.asarray(labels)
    if per_image < 1 or labels.shape != (len(x) // per_image,) or len(x) % per_image:
        raise ValueError(f"expected {len(labels)} images x per_image={per_image} rows, got {len(x)} rows")
    if len(labels) < 4:
        raise ValueError(f"at least 4 images are needed (two per half), got {len(labels)}")
    rng = np.random.default_rng(seed)
    image = np.repeat(np.arange(len(labels)), per_image)
    sample_labels = labels[image]
    shuffled = y.reshape(len(labels), per_image, -1)[rng.permutation(len(labels))].reshape(y.shape)

    corr = np.abs(unit_correlations(x, y))
    top_x, top_y = top_units(x, k), top_units(y, k)
    live_x, live_y = np.flatnonzero(x.std(axis=0) > 0), np.flatnonzero(y.std(axis=0) > 0)
    random_pair = np.mean([
        corr[np.ix_(rng.choice(live_x, min(k, len(live_x)), replace=False),
                    rng.choice(live_y, min(k, len(live_y)), replace=False))].max()
        for _ in range(draws)
    ])

    fit, fit_shuffled = svcca(x, y, keep=keep), svcca(x, shuffled, keep=keep)
    even = image % 2 == 0
    half = svcca(x[even], y[even], keep=keep)
    u, v = half.x_variates(x[~even])[:, :k], half.y_variates(y[~even])[:, :k]
    directions = [fit.x_variates(x)[:, :k], fit.y_variates(y)[:, :k]]
    return UnitComparison(
        top_pair=float(corr[np.ix_(top_x, top_y)].max()),
        top_pair_shuffled=float(np.abs(unit_correlations(x[:, top_x], shuffled[:, top_y])).max()),
        random_pair=float(random_pair),
        partners=corr[top_x].max(axis=1),
        rho=_padded(fit.rho[:k], k),
        rho_shuffled=_padded(fit_shuffled.rho[:k], k),
        held_out=_padded(np.diag(unit_correlations(u, v)), k),
        class_share_neurons=float(np.mean([class_variance_fraction(x[:, top_x], sample_labels),
                                           class_variance_fraction(y[:, top_y], sample_labels)])),
        class_share_directions=float(np.mean([class_variance_fraction(d, sample_labels) for d in directions])),
    )


@dataclass(frozen=True)
class PairwiseUnits:
    """`UnitComparison`s of every layer (`layers`) for every pair of networks (`pairs`, indices into the
    networks compared): `comparisons[layer][p]` for pair `pairs[p]`."""

    layers: tuple[str, ...]
    pairs: tuple[tuple[int, int], ...]
    comparisons: dict[str, tuple[UnitComparison, ...]]

    def values(self, name: str) -> np.ndarray:
        """A field or property of every comparison, (layers, pairs) or (layers, pairs, k) for per-rank values."""
        return np.array([[getattr(c, name) for c in self.comparisons[layer]] for layer in self.layers], dtype=float)


def compare_networks(
    networks: Sequence[Mapping[str, np.ndarray]], labels, layers: Sequence[str] | None = None,
    per_image: Mapping[str, int] | None = None, **options,
) -> PairwiseUnits:
    """`compare_units` of each of `layers` (default: the first network's) for every pair of `networks`
    (each {layer: samples (n * per_image[layer], units)}, recorded on the same n images with classes `labels`).
    `per_image`: rows per image of each layer (default 1); `options`: k, keep, seed, draws."""
    layers = tuple(layers or networks[0])
    pairs = tuple(combinations(range(len(networks)), 2))
    if not pairs:
        raise ValueError(f"at least two networks are needed, got {len(networks)}")
    per_image = per_image or {}
    # BLAS on one thread: these products are too thin (units << samples) to gain from more, and on a busy
    # machine a multi-threaded BLAS waits for its descheduled threads (measured: one 32 x 32,000 x 32 product
    # took 2.7 s with two threads at load 12 on 2 cores, 5 ms with one)
    with threadpool_limits(limits=1, user_api="blas"):
        comparisons = {
            layer: tuple(compare_units(networks[i][layer], networks[j][layer], labels,
                                       per_image=per_image.get(layer, 1), **options) for i, j in pairs)
            for layer in layers
        }
    return PairwiseUnits(layers, pairs, comparisons)


def all_positive(margins) -> bool | None:
    """Verdict of a finding that must hold everywhere, from its margins (any shape): False if any is <= 0, else
    None (undetermined) if any is NaN, else True."""
    m = np.asarray(margins, dtype=float)
    if (m[~np.isnan(m)] <= 0).any():
        return False
    return None if np.isnan(m).any() else True


def _padded(values: np.ndarray, k: int) -> np.ndarray:
    """`values` as float (k,), NaN where there are fewer than k (SVCCA kept fewer directions)."""
    return np.concatenate([np.asarray(values, dtype=float), np.full(k - len(values), np.nan)])


def _standardized(x: np.ndarray) -> np.ndarray:
    """Centred columns of unit norm (so that xsᵀ ys holds correlations); zero columns stay zero."""
    xc = x - x.mean(axis=0)
    norm = np.linalg.norm(xc, axis=0)
    dead = x.max(axis=0) == x.min(axis=0)  # exactly constant: its centred values are rounding only
    return np.divide(xc, norm, out=np.zeros_like(xc), where=~dead & (norm > 0))
