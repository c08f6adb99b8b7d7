"""Streaming statistics: every measure that can be computed from moments (CCA, SVCCA, PWCCA, linear CKA,
Procrustes) over more samples than fit in memory.

Batch by batch, each layer's mean and centred Gram matrix and each pair's centred cross-Gram matrix are
accumulated in float64, merging batches by Chan, Golub & LeVeque's pairwise update (each batch centred on
its own mean, so large means never cancel against small variances). Memory is O(sum of d_i d_j) whatever
the number of samples. The measures are then necessarily covariance-based: each layer is factored from its
Gram matrix by the measure's `from_moments` (for the CCA family an eigendecomposition, `cca.decompose_gram`), dropping directions whose eigenvalue is below
sqrt(eps) ~ 1.5e-8 of the largest (singular values below ~1.2e-4 of the largest), with errors ~eps·κ(x)²
for the rest. On layers with κ(x) up to ~1e3 results equal the in-memory functions to ~1e-10; beyond ~1e4
the in-memory SVD route keeps directions a Gram matrix cannot resolve.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from . import checks
from .cca import CCAResult, KeepRule
from .checks import Array, herm, is_torch, like, to_numpy
from .conv import Reduction, check_reduction, reduce_conv
from .grid import Grid
from .registry import measure as get_measure


class GridStats:
    """Running sums for every pair of a row layer and a column layer, fed batch by batch (`update`).

    `rows`, `cols`: layer names (cols None: the same layers, e.g. one network against itself). Conv
    activations (batch, c, h, w) are flattened (`reduce="flatten"`) or averaged over positions ("mean").
    Accumulators live in the first batch's library and device (numpy, or torch), in float64.
    """

    def __init__(
        self, rows: Sequence, cols: Sequence | None = None, reduce: Reduction = "flatten"
    ):
        check_reduction(reduce)
        self.rows, self.same = tuple(rows), cols is None
        self.cols = self.rows if cols is None else tuple(cols)
        if not self.rows or not self.cols:
            raise ValueError("GridStats needs at least one row layer and one column layer")
        self.reduce = reduce
        self.n = 0
        self.batches = 0
        self._pairs = [
            ((0, r), (0 if self.same else 1, c))
            for i, r in enumerate(self.rows)
            for j, c in enumerate(self.cols)
            if not self.same or i < j
        ]
        self._home = None  # an empty array where the accumulators live
        self._mean: dict = {}
        self._gram: dict = {}
        self._cross: dict = {}

    def update(self, batch_rows: Mapping, batch_cols: Mapping | None = None) -> GridStats:
        """Add a batch: mappings layer name -> activations (b, d) or (b, c, h, w), numpy or torch, same b."""
        if self.same != (batch_cols is None):
            raise ValueError("pass batch_cols exactly when the column layers differ from the row layers")
        acts, home = {}, self._home  # everything is checked before any state changes
        for side, batch in ((0, batch_rows), (1, batch_cols))[: 1 if self.same else 2]:
            names = self.rows if side == 0 else self.cols
            if not isinstance(batch, Mapping):
                raise TypeError(f"batch {self.batches}: expected a mapping layer name -> activations, got "
                                f"{type(batch).__name__}")
            missing = [name for name in names if name not in batch]
            if missing:
                raise ValueError(f"batch {self.batches}: no activations for layer(s) {missing}")
            for name in names:
                acts[side, name] = x = self._float64(batch[name], (side, name), home)
                home = x[:0] if home is None else home
        sizes = {f"{('row', 'column')[side]} {name!r}": len(x) for (side, name), x in acts.items()}
        if len(set(sizes.values())) > 1:
            raise ValueError(f"batch {self.batches}: the layers hold different numbers of samples: {sizes}")
        self._home = home
        b = next(iter(sizes.values()))
        if b == 0:
            return self
        # Chan et al.: merge the batch's own centred sums with a rank-one correction between the two means
        merged = self.n + b
        factor = self.n * b / merged
        centred, delta = {}, {}
        for key, x in acts.items():
            mean_b = x.mean(0)
            centred[key] = x - mean_b
            if self.n == 0:
                self._mean[key], self._gram[key] = mean_b, herm(centred[key]) @ centred[key]
            else:
                delta[key] = mean_b - self._mean[key]
                self._gram[key] += herm(centred[key]) @ centred[key] + factor * _outer(delta[key], delta[key])
                self._mean[key] += delta[key] * (b / merged)
        for p, q in self._pairs:
            product = herm(centred[p]) @ centred[q]
            if self.n == 0:
                self._cross[p, q] = product
            else:
                self._cross[p, q] += product + factor * _outer(delta[p], delta[q])
        self.n, self.batches = merged, self.batches + 1
        return self

    def cca(self, row, col) -> CCAResult:
        """CCA (as `analysis.cca`) of a row layer and a column layer over every sample so far."""
        return self.measure("cca", row, col)

    def svcca(self, row, col, keep: int | float = 0.99, by: KeepRule = "variance") -> CCAResult:
        """SVCCA (as `analysis.svcca`) of a row layer and a column layer over every sample so far."""
        return self.measure("svcca", row, col, keep=keep, by=by)

    def pwcca(self, row, col) -> CCAResult:
        """PWCCA (as `analysis.pwcca`, weights from the row layer) over every sample so far."""
        return self.measure("pwcca", row, col)

    def linear_cka(self, row, col) -> float:
        """Linear CKA (as `analysis.linear_cka`) of a row layer and a column layer over every sample so far."""
        return self.measure("linear_cka", row, col)

    def procrustes_distance(self, row, col) -> float:
        """Procrustes distance (as `analysis.procrustes_distance`) over every sample so far."""
        return self.measure("procrustes", row, col)

    def measure(self, measure: str, row, col, **options):
        """Any streamable measure (`registry.MEASURES`) of a row layer and a column layer, over every sample so far."""
        m, full = self._streaming(measure, options)
        a, b = self._prepare(m, 0, row, full), self._prepare(m, 1, col, full)
        return m.compare_moments(a, b, self._cross_gram(row, col))

    def grid(self, measure: str = "svcca", **options) -> Grid:
        """Every row layer against every column layer, as `analysis.similarity_grid`; each layer factored once."""
        m, full = self._streaming(measure, options)
        rows = [self._prepare(m, 0, name, full) for name in self.rows]
        cols = rows if self.same else [self._prepare(m, 1, name, full) for name in self.cols]
        values = np.array([
            [float(m.compare_moments(rows[i], cols[j], self._cross_gram(r, c))) for j, c in enumerate(self.cols)]
            for i, r in enumerate(self.rows)
        ])
        return Grid(values, self.rows, self.cols, measure)

    @staticmethod
    def _streaming(measure: str, options: dict):
        m = get_measure(measure)
        full = m.resolve(options)
        if not m.streams:
            raise ValueError(f"measure {measure!r} needs every sample at once; it cannot be computed from streamed moments")
        return m, full

    def _prepare(self, m, side: int, name, options: dict):
        """A layer prepared for measure `m` from its moments."""
        gram, mean = self._moments(side, name)
        return m.from_moments(gram, mean, self.n, **options)

    def _float64(self, x, key: tuple, home) -> Array:
        """A batch of one layer as a float64 (b, d) array where the accumulators live (`home`: an empty array
        there), checked. They live where the first batch's first layer does: numpy for numpy arrays and CPU
        tensors (as in `checks`), else that tensor's device."""
        where = f"batch {self.batches}: layer {key[1]!r}"
        if is_torch(x):
            import torch

            if x.is_complex():
                raise ValueError(f"{where} is complex; streaming takes real activations (use cca on all samples)")
            x = x.detach().to(torch.float64)
            if checks.CPU_TENSORS_AS_NUMPY and x.device.type == "cpu":
                x = x.numpy()
        else:
            given = x if isinstance(x, np.ndarray) else None
            x = np.asarray(x)
            if np.iscomplexobj(x):
                raise ValueError(f"{where} is complex; streaming takes real activations (use cca on all samples)")
            if not (np.issubdtype(x.dtype, np.number) or x.dtype == bool):
                got = f"an array of dtype {x.dtype}" if given is not None else repr(x.tolist())[:40]
                raise TypeError(f"{where} must be an array of numbers, got {got}")
            x = x.astype(np.float64, copy=False)
        home = x[:0] if home is None else home
        x = like(x, home) if is_torch(home) else to_numpy(x)
        if x.ndim == 4:
            x = reduce_conv(x, self.reduce)
        if x.ndim != 2:
            raise ValueError(f"{where} must be (batch, features) or conv, got shape {tuple(x.shape)}")
        if not bool(x.isfinite().all() if is_torch(x) else np.isfinite(x).all()):
            raise ValueError(f"{where} contains NaN or Inf")
        known = self._mean.get(key)
        if known is not None and x.shape[1] != known.shape[0]:
            raise ValueError(f"{where} has {x.shape[1]} features, earlier batches {known.shape[0]}")
        if x.shape[1] == 0:
            raise ValueError(f"{where} has no features")
        return x

    def _moments(self, side: int, name) -> tuple[np.ndarray, np.ndarray]:
        """A layer's centred Gram matrix and mean, float64 numpy, checked for samples and variance."""
        names = self.rows if side == 0 or self.same else self.cols
        if name not in names:
            raise ValueError(f"unknown {'row' if side == 0 else 'column'} layer {name!r}; known: {list(names)}")
        if self.n < 2:
            raise ValueError(f"{self.n} sample(s) accumulated; at least 2 are needed")
        key = (0 if self.same else side, name)
        gram, mean = to_numpy(self._gram[key]), to_numpy(self._mean[key])
        # centring a constant leaves only rounding: the Gram matrix is then at the level of eps * |mean|
        if np.trace(gram) <= self.n * gram.shape[0] * (16 * np.finfo(float).eps * np.abs(mean).max()) ** 2:
            raise ValueError(f"layer {name!r} has no variance: every feature is constant over the samples")
        return gram, mean

    def _cross_gram(self, row, col) -> np.ndarray:
        """The centred cross-Gram matrix (d_row, d_col) of a row and a column layer, float64 numpy."""
        if not self.same:
            return to_numpy(self._cross[(0, row), (1, col)])
        i, j = self.rows.index(row), self.cols.index(col)
        if i == j:
            return to_numpy(self._gram[0, row])
        return to_numpy(self._cross[(0, row), (0, col)] if i < j else herm(self._cross[(0, col), (0, row)]))


class CrossStats:
    """Running sums of two layers x and y, fed batch by batch: `stats.update(x_batch, y_batch)`, then
    `stats.cca()`, `.svcca(keep)`, `.pwcca()`, `.linear_cka()` over every sample so far (module docstring)."""

    def __init__(self, reduce: Reduction = "flatten"):
        self._stats = GridStats(["x"], ["y"], reduce)

    @property
    def n(self) -> int:
        """Samples accumulated so far."""
        return self._stats.n

    def update(self, x, y) -> CrossStats:
        """Add a batch: x (b, d_x), y (b, d_y) (or conv (b, c, h, w)), numpy or torch, the same b samples."""
        self._stats.update({"x": x}, {"y": y})
        return self

    def cca(self) -> CCAResult:
        """CCA of x and y over every sample so far, as `analysis.cca`."""
        return self._stats.cca("x", "y")

    def svcca(self, keep: int | float = 0.99, by: KeepRule = "variance") -> CCAResult:
        """SVCCA of x and y over every sample so far, as `analysis.svcca`."""
        return self._stats.svcca("x", "y", keep, by)

    def pwcca(self) -> CCAResult:
        """PWCCA of x and y (weights from x) over every sample so far, as `analysis.pwcca`."""
        return self._stats.pwcca("x", "y")

    def linear_cka(self) -> float:
        """Linear CKA of x and y over every sample so far, as `analysis.linear_cka`."""
        return self._stats.linear_cka("x", "y")

    def procrustes_distance(self) -> float:
        """Procrustes distance of x and y over every sample so far, as `analysis.procrustes_distance`."""
        return self._stats.procrustes_distance("x", "y")

    def measure(self, measure: str, **options):
        """Any streamable measure of x and y over every sample so far."""
        return self._stats.measure(measure, "x", "y", **options)


def _outer(a: Array, b: Array) -> Array:
    return a[:, None] * b[None, :]
