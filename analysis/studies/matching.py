"""Convergent learning (Li, Yosinski, Clune, Lipson & Hopcroft, ICLR 2016): do two networks share single units?

Units are columns of a layer's samples (n, d) (`neurons`' convention: a conv layer's channel with its (image,
position) samples, or a dense layer's neuron). Partners are chosen by |r| on training samples and judged on test
samples: one-to-one (a bipartite matching maximising the total |r|), semi-matching (each unit's best partner,
`neurons.best_matches`), and sparse prediction, an L1-penalised linear map from all units of one layer to each
unit of the other (scikit-learn's coordinate descent on the Gram matrix). Prediction losses are on units
standardised with the training samples' mean and deviation, as half the mean squared error per unit (the
paper's scale: predicting the mean scores about 0.5, a perfect prediction 0).
"""
from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Literal

import numpy as np
from scipy.optimize import linear_sum_assignment
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import lasso_path
from threadpoolctl import threadpool_limits

from ..measures.checks import as_array, as_pair
from ..networks.samples import Samples
from .neurons import best_matches, unit_correlations

#: the talk's L1 decays (Li et al. 2016, Table 2)
DECAYS = (0.0, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1)


def one_to_one(corr: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """One-to-one matching of the rows of a correlation matrix (d_x, d_y), d_x <= d_y, to distinct columns that
    maximises the total |r| (`scipy.optimize.linear_sum_assignment`): (partners (d_x,), their r (d_x,), signed)."""
    corr = np.asarray(corr, dtype=np.float64)
    if corr.ndim != 2 or 0 in corr.shape:
        raise ValueError(f"corr must be a non-empty 2-D matrix (d_x, d_y), got shape {corr.shape}")
    if corr.shape[0] > corr.shape[1]:
        raise ValueError(f"one-to-one needs no more rows than columns, got {corr.shape}; match the transpose")
    rows, cols = linear_sum_assignment(np.abs(corr), maximize=True)  # rows come back sorted
    return cols, corr[rows, cols]


def shuffled_images(x, per_image: int = 1, seed: int = 0) -> np.ndarray:
    """Samples x (n * per_image, d), image-major, with whole images permuted (positions stay with their image)."""
    x = as_array(x)
    if per_image < 1 or len(x) % per_image:
        raise ValueError(f"{len(x)} rows are not whole images of per_image={per_image} rows")
    n = len(x) // per_image
    order = np.random.default_rng(seed).permutation(n)
    return x.reshape(n, per_image, -1)[order].reshape(x.shape)


def shuffled_samples(samples: Samples, seed: int = 0) -> Samples:
    """`samples` with the images of every layer permuted the same way (`shuffled_images`): no image's row of
    one network is paired with the same image in another any more (the shuffled-order control)."""
    return replace(
        samples,
        positions={k: shuffled_images(v, samples.per_image[k], seed) for k, v in samples.positions.items()},
        channel_means={k: shuffled_images(v, 1, seed) for k, v in samples.channel_means.items()},
    )


def standardized(train, test) -> tuple[np.ndarray, np.ndarray]:
    """train (n, d) and test (m, d) centred and scaled by train's mean and deviation (float64); a unit constant
    on train becomes 0 in both."""
    train, test = as_array(train, "train"), as_array(test, "test")
    if train.shape[1] != test.shape[1]:
        raise ValueError(f"train and test must have the same units, got {train.shape[1]} and {test.shape[1]}")
    mean, sd = train.mean(axis=0), train.std(axis=0)
    live = train.max(axis=0) > train.min(axis=0)  # exactly constant: its deviation is rounding only
    scale = np.divide(1.0, sd, out=np.zeros_like(sd), where=live & (sd > 0))
    return (train - mean) * scale, (test - mean) * scale


@dataclass(frozen=True)
class SparsePrediction:
    """Each unit of y predicted from all units of x at each L1 decay: `decays` (k,); `weights` (k, d_x, d_y);
    `losses` (k, d_y), half the squared test error per standardised unit of y (NaN for a unit constant on the
    training samples, which has nothing to predict)."""

    decays: np.ndarray
    weights: np.ndarray
    losses: np.ndarray

    @property
    def loss(self) -> np.ndarray:
        """Mean test loss over y's units (k,)."""
        return np.nanmean(self.losses, axis=1)

    @property
    def nonzero(self) -> np.ndarray:
        """Mean number of x's units with a non-zero weight, over y's predicted units (k,)."""
        live = ~np.isnan(self.losses[0])
        return (self.weights[:, :, live] != 0).sum(axis=1).mean(axis=1)


def sparse_prediction(x_train, y_train, x_test, y_test, decays: Sequence[float] = DECAYS) -> SparsePrediction:
    """`SparsePrediction` of each unit of y from all units of x: fitted on the training samples (x_train (n, d_x),
    y_train (n, d_y)), scored on the test samples (m, ...), both standardised with the training statistics.

    Each unit's weights w minimise (1/2n) |y - X w|² + decay |w|₁ (scikit-learn's Lasso objective; no intercept,
    the units are centred); decay 0 is least squares (the minimum-norm solution where x has redundant units).
    Positive decays are solved as one path from the largest down, each fit starting from the previous one.
    """
    x_train, y_train = as_pair(x_train, y_train)
    x_test, y_test = as_pair(x_test, y_test)
    decays = np.asarray(decays, dtype=np.float64)
    if decays.ndim != 1 or len(decays) == 0 or (decays < 0).any():
        raise ValueError(f"decays must be a non-empty list of numbers >= 0, got {decays.tolist()}")
    xs, xt = standardized(x_train, x_test)
    ys, yt = standardized(y_train, y_test)
    d_x, d_y = xs.shape[1], ys.shape[1]
    weights = np.zeros((len(decays), d_x, d_y))
    with threadpool_limits(limits=1, user_api="blas"):
        gram, xy = xs.T @ xs, xs.T @ ys
        weights[decays == 0] = np.linalg.lstsq(gram, xy, rcond=None)[0]
        positive = np.flatnonzero(decays > 0)
        if len(positive):
            path = positive[np.argsort(-decays[positive])]
            x_fortran = np.asfortranarray(xs)
            for j in range(d_y):
                with warnings.catch_warnings():
                    # a decay too small to make any weight 0 converges slowly; tol bounds the duality gap anyway
                    warnings.simplefilter("ignore", ConvergenceWarning)
                    _, coefs, _ = lasso_path(x_fortran, np.ascontiguousarray(ys[:, j]), alphas=decays[path],
                                             precompute=gram, Xy=np.ascontiguousarray(xy[:, j]), tol=1e-6,
                                             check_input=False)
                weights[path, :, j] = coefs.T
        losses = 0.5 * ((yt[None] - xt @ weights) ** 2).mean(axis=1)
    dead = ~(y_train.max(axis=0) > y_train.min(axis=0))
    losses[:, dead] = np.nan
    return SparsePrediction(decays, weights, losses)


def partner_losses(x_train, y_train, x_test, y_test, partners) -> np.ndarray:
    """Half the squared test error of predicting each standardised unit j of y (d_y,) from its partner
    x[:, partners[j]] alone, by least squares on the training samples; NaN for a unit of y constant on them."""
    x_train, y_train = as_pair(x_train, y_train)
    x_test, y_test = as_pair(x_test, y_test)
    partners = np.asarray(partners)
    if partners.shape != (y_train.shape[1],):
        raise ValueError(f"partners must name one unit of x for each of y's {y_train.shape[1]} units, got {partners.shape}")
    xs, xt = standardized(x_train[:, partners], x_test[:, partners])
    ys, yt = standardized(y_train, y_test)
    slope = (xs * ys).mean(axis=0)  # the training correlation: the least-squares slope of standardised units
    losses = 0.5 * ((yt - slope * xt) ** 2).mean(axis=0)
    losses[~(y_train.max(axis=0) > y_train.min(axis=0))] = np.nan
    return losses


@dataclass(frozen=True)
class LayerMatch:
    """How the units of one layer of two networks x and y correspond. Partners are chosen on the training samples
    and their |r| measured on the test samples: `one_to_one`, `one_to_one_r` (d_x,) the bipartite matching
    (`one_to_one`); `semi`, `semi_r` (d_x,) each of x's units' best partner (`neurons.best_matches`).
    `matched_loss`: the mean test loss of predicting each of y's units from its one-to-one partner alone
    (`partner_losses`); `prediction`: from all of x's units (`sparse_prediction`)."""

    one_to_one: np.ndarray
    one_to_one_r: np.ndarray
    semi: np.ndarray
    semi_r: np.ndarray
    matched_loss: float
    prediction: SparsePrediction

    @property
    def mean_one_to_one(self) -> float:
        """Mean |r| of the one-to-one matched pairs on the test samples."""
        return float(self.one_to_one_r.mean())

    @property
    def mean_semi(self) -> float:
        """Mean |r| of the semi-matched pairs on the test samples."""
        return float(self.semi_r.mean())

    def top_one_to_one(self, share: float) -> float:
        """Mean |r| of the best `share` (in (0, 1]) of the one-to-one matched pairs, at least one pair."""
        if not 0 < share <= 1:
            raise ValueError(f"share must lie in (0, 1], got {share}")
        r = np.sort(self.one_to_one_r)[::-1]
        return float(r[: max(1, round(share * len(r)))].mean())


def match_layer(x_train, y_train, x_test, y_test, decays: Sequence[float] = DECAYS) -> LayerMatch:
    """`LayerMatch` of x and y: training samples x_train (n, d_x), y_train (n, d_y), test samples (m, ...)."""
    x_train, y_train = as_pair(x_train, y_train)
    x_test, y_test = as_pair(x_test, y_test)
    # BLAS on one thread: these products are thin (units << samples); see `neurons.compare_networks`
    with threadpool_limits(limits=1, user_api="blas"):
        train_corr = unit_correlations(x_train, y_train)
        test_corr = np.abs(unit_correlations(x_test, y_test))
    rows = np.arange(len(train_corr))
    one, _ = one_to_one(train_corr)
    semi, _ = best_matches(train_corr)
    y_partners, _ = one_to_one(train_corr.T)
    return LayerMatch(
        one_to_one=one, one_to_one_r=test_corr[rows, one], semi=semi, semi_r=test_corr[rows, semi],
        matched_loss=float(np.nanmean(partner_losses(x_train, y_train, x_test, y_test, y_partners))),
        prediction=sparse_prediction(x_train, y_train, x_test, y_test, decays),
    )


@dataclass(frozen=True)
class Matches:
    """`LayerMatch`es of every layer (`layers`) for every pair (`pairs`: (i, j), network i of the first list
    against network j of the second): `matches[layer][p]` for pair `pairs[p]`."""

    layers: tuple[str, ...]
    pairs: tuple[tuple[int, int], ...]
    matches: dict[str, tuple[LayerMatch, ...]]

    def values(self, name: str, **arguments) -> np.ndarray:
        """A field or property of every match ("prediction.loss": of its prediction), or a method's result with
        `arguments`: (layers, pairs), or (layers, pairs, ...) for array values of one length in every layer."""
        return np.array([[_get(m, name, arguments) for m in self.matches[layer]] for layer in self.layers], dtype=float)


def match_networks(
    x_nets: Sequence[tuple[Samples, Samples]], y_nets: Sequence[tuple[Samples, Samples]],
    pairs: Sequence[tuple[int, int]], layers: Sequence[str], decays: Sequence[float] = DECAYS,
    conv: Literal["positions", "channel_means"] = "positions", decays_per_layer: bool = False,
) -> Matches:
    """`match_layer` of each of `layers` for each pair (i, j) of `pairs`: network i of `x_nets` against network
    j of `y_nets`, each network given as (training `Samples`, test `Samples`) recorded on the same images in
    every network. `conv`: a conv layer's samples, each (image, position) ("positions", the paper's convention)
    or each image's mean over positions ("channel_means"). `decays_per_layer`: each decay multiplied by y's
    number of units, i.e. one L1 penalty on the whole map weighed against the loss averaged over the units."""
    if not pairs:
        raise ValueError("no pairs of networks to match")
    if conv not in ("positions", "channel_means"):
        raise ValueError(f"conv must be 'positions' or 'channel_means', got {conv!r}")

    matches = {}
    for layer in layers:
        row = []
        for i, j in pairs:
            (x_train, x_test), (y_train, y_test) = ([getattr(s, conv)[layer] for s in net] for net in (x_nets[i], y_nets[j]))
            scale = y_train.shape[1] if decays_per_layer else 1
            row.append(match_layer(x_train, y_train, x_test, y_test, np.asarray(decays) * scale))
        matches[layer] = tuple(row)
    return Matches(tuple(layers), tuple(map(tuple, pairs)), matches)


def top_images(acts, units: Sequence[int], k: int) -> np.ndarray:
    """The k images (rows of acts (n_images, d)) on which each of `units` is most active, most active first:
    (len(units), k); ties keep the lower index first."""
    acts = as_array(acts)
    if not 1 <= k <= len(acts):
        raise ValueError(f"k must lie in [1, {len(acts)}] (the number of images), got {k}")
    return np.argsort(-acts[:, list(units)].T, axis=1, kind="stable")[:, :k]


def _get(match: LayerMatch, name: str, arguments: dict):
    """A field or property of a match, or of its `prediction` ("prediction.loss"); a method called with
    `arguments`."""
    obj = match
    for part in name.split("."):
        obj = getattr(obj, part)
    return obj(**arguments) if callable(obj) else obj
