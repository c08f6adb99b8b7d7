"""Canonical correlation analysis of two layers: CCA, SVCCA and PWCCA (similarities, 1 = same).

Each layer is decomposed once (`decompose`) into an orthonormal basis of its centred column space; CCA of
two layers is then the SVD of the product of their bases (Björck & Golub 1973). Two routes to the basis:

- Gram route, for well-conditioned layers with more samples than features: the Gram matrix `xcᴴ xc` (one
  symmetric BLAS product, n d² flops, the cheapest way to touch every sample) is factored by Cholesky after
  scaling it to unit diagonal (CCA ignores each unit's scale), or by an eigendecomposition when singular
  values are needed (SVCCA). It squares the condition number, so its error grows like eps·κ(x)²: it is taken
  only when the Gram matrix's condition number is at most 1e6 (error ≲ 2e-10; measured ~1e-13). For
  Cholesky a cheap upper bound is checked first and the exact eigenvalues only when the bound fails.
- SVD route, for everything else (fewer samples than features, dead units, collinear features): thin SVD
  of the centred layer, error ~eps·κ(x); directions below numpy's rank tolerance (s_max·max(n, d)·eps) are
  dropped, so dead units are ignored, never amplified. Never an inverse of an ill-conditioned covariance.

Precision and place follow the input (`checks`): numpy for numpy arrays and CPU tensors, torch on the
tensor's device otherwise; float64 by default, float32 for float32 input. Means, Gram and cross-Gram
matrices (which the Gram route inverts in effect) are accumulated in float64 whatever the input, a few rows
at a time; the SVD route and products of orthonormal bases run in the input's precision; all d x d work
is float64 numpy. Results are float64 numpy. The float32 path against float64 on the same values, measured
on the reference activations: CCA and PWCCA ~1e-8, SVCCA (float32 bases) ~1e-6.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from functools import cached_property, partial
from typing import Literal

import numpy as np

from .checks import (
    Array,
    cross_product,
    eps,
    herm,
    like,
    linalg,
    mean64,
    to_numpy,
    unit_scaled,
    warn_if_saturated,
)
from .protocol import Measure

KeepRule = Literal["variance", "singular_values"]

#: Largest condition number of a Gram matrix the Gram route accepts: its error is then ≲ eps·1e6 ~ 2e-10.
GRAM_CONDITION_LIMIT = 1e6
#: A layer known only by its Gram matrix (streaming) keeps the directions whose eigenvalue exceeds this
#: fraction of the largest, sqrt(eps): their whitening is accurate to about eps / GRAM_RANK_CUT = 1.5e-8.
GRAM_RANK_CUT = float(np.sqrt(np.finfo(np.float64).eps))


@dataclass(frozen=True)
class Directions:
    """Canonical directions (unit-variance variates) from the SVD of two whitened bases' product `product`."""

    product: np.ndarray
    wx: np.ndarray
    wy: np.ndarray
    k: int
    scale: float

    def __call__(self, a: np.ndarray | None = None, bh: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(x_coef (d_x, k), y_coef (d_y, k)), from the product's singular vectors `a`, `bh` if given."""
        if a is None:
            a, _, bh = np.linalg.svd(self.product, full_matrices=False)
        return self.wx @ a[:, : self.k] * self.scale, self.wy @ herm(bh[: self.k]) * self.scale


@dataclass(frozen=True)
class CCAResult:
    """Canonical correlations of two layers and the directions that reach them.

    `rho` (k,) descending in [0, 1]; `weights` (k,) non-negative summing to 1 (uniform for CCA and SVCCA,
    projection weights for PWCCA); `(x - x_mean) @ x_coef` are x's k canonical variates, each of unit
    variance, and likewise for y; the i-th variates of x and y correlate with coefficient `rho[i]`.
    The coefficients are computed on first use: most callers need only `rho` and `mean`.
    """

    rho: np.ndarray
    weights: np.ndarray
    x_mean: np.ndarray
    y_mean: np.ndarray
    directions: Directions = field(repr=False, compare=False)

    @cached_property
    def _coefficients(self) -> tuple[np.ndarray, np.ndarray]:
        return self.directions()

    @property
    def x_coef(self) -> np.ndarray:
        """x's canonical directions (d_x, k), float64."""
        return self._coefficients[0]

    @property
    def y_coef(self) -> np.ndarray:
        """y's canonical directions (d_y, k), float64."""
        return self._coefficients[1]

    @property
    def mean(self) -> float:
        """Weighted mean of the canonical correlations: the similarity, in [0, 1]."""
        return float(self.weights @ self.rho)

    def __float__(self) -> float:
        return self.mean

    def x_variates(self, x) -> np.ndarray:
        """x's canonical variates (n, k) for activations `x` (n, d_x): the aligned features of x."""
        return (to_numpy(x) - self.x_mean) @ self.x_coef

    def y_variates(self, y) -> np.ndarray:
        """y's canonical variates (n, k) for activations `y` (n, d_y)."""
        return (to_numpy(y) - self.y_mean) @ self.y_coef


@dataclass(frozen=True)
class Subspace:
    """A centred layer's column space: orthonormal basis `u = xc @ w` (..., n, r), and `xc = u @ t`.

    `xc` (..., n, d): the centred layer in the input's library, device and precision (None when known only
    by its Gram matrix, as in streaming). `mean` (..., d), `w` (..., d, r), `t` (..., r, d): float64 numpy.
    `s` (..., r): singular values, descending, from spectral decompositions (SVCCA needs them), else None.
    `n`: the number of samples. `scale`: the power of two the layer was multiplied by before decomposing
    (`checks.unit_scaled`; everything above describes the scaled layer).
    Leading axes batch several layers (DFT-CCA's frequencies); `rank` (...) counts each one's directions and
    the columns past it are zero. `basis`: the SVD route's u, orthonormal to machine precision, if taken.
    """

    xc: Array | None
    mean: np.ndarray
    w: np.ndarray
    t: np.ndarray
    s: np.ndarray | None
    rank: np.ndarray
    n: int
    basis: Array | None = None
    scale: float = 1.0

    @cached_property
    def u(self) -> Array:
        """The orthonormal basis (..., n, r): the SVD route's, or formed from the Gram route's whitening `w`."""
        return self.basis if self.basis is not None else self.xc @ like(self.w, self.xc)

    @property
    def formed(self) -> bool:
        """Whether `u` is at hand without an n x d x r product."""
        return self.basis is not None or "u" in self.__dict__

    def top(self, k: int) -> Subspace:
        """The k leading singular directions (SVCCA's reduction) of a spectral decomposition."""
        u = self.__dict__.get("u", self.basis)
        basis = None if self.basis is None else self.basis[..., :k]
        rank = np.minimum(self.rank, k)
        sub = Subspace(self.xc, self.mean, self.w[..., :k], self.t[..., :k, :], self.s[..., :k], rank, self.n, basis,
                       self.scale)
        if u is not None:
            sub.__dict__["u"] = u[..., :k]  # the cached basis, sliced
        return sub


def decompose(x: Array, spectral: bool = False, centred: bool = False) -> Subspace:
    """Centre `x` (..., n, d) over samples and find an orthonormal basis of its columns (module docstring).

    `spectral=True` guarantees singular values `s` (SVCCA); otherwise the Gram route factors by Cholesky.
    `centred=True`: `x` is centred already (its recorded mean is then 0).
    """
    n, d = x.shape[-2:]
    x, scale = unit_scaled(x)
    if centred:
        xc, mean = x, np.zeros(x.shape[:-2] + (d,))
    else:
        mean = mean64(x)
        xc = x - like(mean, x)[..., None, :]
        mean = to_numpy(mean)
    if n > d:  # only then can the centred Gram matrix have full rank
        gram = to_numpy(cross_product(xc, xc, wide=True))
        found = _eigh_route(gram) if spectral else _cholesky_route(gram)
        if found is not None:
            w, t, s = found
            return Subspace(xc, mean, w, t, s, np.full(gram.shape[:-2], d), n, scale=scale)
    return _svd_route(xc, mean, scale)


def decompose_gram(gram: np.ndarray, mean: np.ndarray, n: int) -> Subspace:
    """A layer of n samples known only by its centred Gram matrix (d, d) and mean (d,), float64 (streaming).

    Eigendecomposition; directions with eigenvalues below GRAM_RANK_CUT times the largest are dropped.
    """
    lam, v = np.linalg.eigh(gram)
    r = int(np.count_nonzero(lam > lam[-1] * GRAM_RANK_CUT))
    resolvable = int(np.count_nonzero(lam > lam[-1] * len(lam) * np.finfo(np.float64).eps))
    if resolvable > r:  # directions an SVD of the samples would keep, but moments cannot resolve
        warnings.warn(
            f"{resolvable - r} of the layer's {resolvable} directions have singular values below "
            f"{np.sqrt(GRAM_RANK_CUT):.1e} of its largest (condition number beyond ~1e4): streamed moments cannot "
            "resolve them and they are dropped, so the result differs from the in-memory measure on all samples",
            RuntimeWarning, stacklevel=2)
    w, t, s = _spectral_whitening(lam[len(lam) - r:], v[:, len(lam) - r:])
    return Subspace(None, mean, w, t, s, np.asarray(r), n)


def _spectral_whitening(lam: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """From a Gram matrix's eigenpairs (ascending, positive): whitening w = V/s, t = s Vᴴ and s, descending."""
    s, v = np.sqrt(lam[..., ::-1]), v[..., ::-1]
    return v / s[..., None, :], herm(v * s[..., None, :]), s


def _eigh_route(gram: np.ndarray):
    lam, v = np.linalg.eigh(gram)
    if not np.all(lam[..., 0] * GRAM_CONDITION_LIMIT >= lam[..., -1]) or not np.all(lam[..., -1] > 0):
        return None
    return _spectral_whitening(lam, v)


def _cholesky_route(gram: np.ndarray):
    # CCA ignores each unit's scale, so factor the unit-diagonal Gram matrix: its condition number is within
    # a factor d of the best any rescaling achieves (van der Sluis), and badly scaled units stay accepted
    scale = np.sqrt(np.diagonal(gram, axis1=-2, axis2=-1).real)
    if not np.all(scale > 0):
        return None
    scaled = gram / (scale[..., :, None] * scale[..., None, :])
    try:
        r = herm(np.linalg.cholesky(scaled))
    except np.linalg.LinAlgError:
        return None
    r_inv = _triangular_inverse(r)
    # κ = ||G||₂ ||G⁻¹||₂ <= ||G||_F ||R⁻¹||_F²: cheap, but up to d times too large; if it fails, settle it
    bound = np.linalg.norm(scaled, axis=(-2, -1)) * np.sum(np.abs(r_inv) ** 2, axis=(-2, -1))
    if not np.all(bound <= GRAM_CONDITION_LIMIT):
        lam = np.linalg.eigvalsh(scaled)
        if not np.all(lam[..., 0] * GRAM_CONDITION_LIMIT >= lam[..., -1]):
            return None
    return r_inv / scale[..., :, None], r * scale[..., None, :], None


def _triangular_inverse(r: np.ndarray) -> np.ndarray:
    """Inverse of upper-triangular r (..., d, d) by 2 x 2 blocks, so most of the work is matrix products."""
    d = r.shape[-1]
    if d <= 16:
        return np.linalg.inv(r)
    h = d // 2
    a, c = _triangular_inverse(r[..., :h, :h]), _triangular_inverse(r[..., h:, h:])
    out = np.zeros_like(r)
    out[..., :h, :h], out[..., h:, h:] = a, c
    out[..., :h, h:] = -(a @ r[..., :h, h:]) @ c
    return out


def _svd_route(xc: Array, mean: np.ndarray, scale: float) -> Subspace:
    n, d = xc.shape[-2:]
    u, s, vh = linalg(xc).svd(xc, full_matrices=False)
    s, vh = to_numpy(s), to_numpy(vh)
    keep = s > s[..., :1] * max(n, d) * eps(xc)
    rank = keep.sum(axis=-1)
    if s.ndim == 1:  # one layer: drop its null directions
        r = int(rank)
        u, s, vh = u[:, :r], s[:r], vh[:r]
    else:  # a batch: zero them, keeping one shape
        s, vh, u = np.where(keep, s, 0.0), vh * keep[..., None], u * like(keep, u)[..., None, :]
    s_inv = np.divide(1.0, s, out=np.zeros_like(s), where=s > 0)
    return Subspace(xc, mean, herm(vh) * s_inv[..., None, :], vh * s[..., :, None], s, rank, n, u, scale)


def cross(bx: Subspace, by: Subspace) -> np.ndarray:
    """The product of two layers' bases `bx.uᴴ @ by.u` (..., r_x, r_y), float64.

    Each side enters as its basis u (n, r), formed if need be, or as its centred data (n, d) whitened after
    the product by w, whichever makes the n-sized work smallest (a full-rank CCA pair: the cross-Gram
    matrix; SVCCA's few directions: the bases). An SVD route's side always enters as its exact basis.
    """
    n = bx.xc.shape[-2]

    def ways(b: Subspace) -> list[tuple[int, int, bool]]:  # (cost of forming it, columns, as basis?)
        d, r = b.w.shape[-2:]
        as_basis = (0 if b.formed else n * d * r, r, True)
        return [as_basis] if b.basis is not None else [as_basis, (0, d, False)]

    _, basis_x, basis_y = min((fx + fy + n * cx * cy, ux, uy) for fx, cx, ux in ways(bx) for fy, cy, uy in ways(by))
    # data are whitened after the product, which amplifies its rounding: accumulate it in double
    a, b = bx.u if basis_x else bx.xc, by.u if basis_y else by.xc
    m = to_numpy(cross_product(a, b, wide=not (basis_x and basis_y)))
    if not basis_x:
        m = herm(bx.w) @ m
    return m if basis_y else m @ by.w


def _check_svcca(keep: int | float, by: KeepRule) -> None:
    if isinstance(keep, (bool, np.bool_)) or not isinstance(keep, (int, np.integer, float, np.floating)):
        raise TypeError(f"keep must be an int (directions) or a float in (0, 1] (fraction), got {keep!r}")
    if isinstance(keep, (int, np.integer)) and keep < 1:
        raise ValueError(f"keep must be at least 1 direction, got {keep}")
    if isinstance(keep, (float, np.floating)) and not 0 < keep <= 1:
        raise ValueError(f"keep as a fraction must lie in (0, 1], got {keep}")
    if by not in ("variance", "singular_values"):
        raise ValueError(f"by must be 'variance' or 'singular_values', got {by!r}")


def n_kept(s: np.ndarray, keep: int | float, by: KeepRule = "variance") -> int:
    """How many leading singular directions SVCCA keeps.

    `keep` int: that many (at most the rank). `keep` float in (0, 1]: the fewest directions holding that
    fraction of the variance (`by="variance"`, sum of squared singular values) or of the sum of singular
    values (`by="singular_values"`, the rule of the authors' tutorials).
    """
    _check_svcca(keep, by)
    if isinstance(keep, (int, np.integer)):
        return min(int(keep), len(s))
    mass = s**2 if by == "variance" else s
    share = np.cumsum(mass) / mass.sum()
    # rounding can leave the full sum a hair under 1: never ask for more than the rank
    return min(int(np.searchsorted(share, keep - 1e-12) + 1), len(s))


def svcca_subspace(x: Array, keep: int | float, by: KeepRule = "variance") -> Subspace:
    """SVCCA's reduction of a validated layer (n, d): its `keep` leading singular directions."""
    sub = decompose(x, spectral=True)
    sub = sub.top(n_kept(sub.s, keep, by))
    sub.u  # noqa: B018 (forms the n x k basis now, n d k flops: every product with it then costs only n k k)
    return sub


def cca_of(
    bx: Subspace,
    by: Subspace,
    weighting: Literal["uniform", "projection"] = "uniform",
    product: np.ndarray | None = None,
) -> CCAResult:
    """CCA of two decomposed layers from the SVD of their bases' product (`cross`, unless given as `product`)."""
    n = bx.n
    k = min(int(bx.rank), int(by.rank))
    warn_if_saturated(n, int(bx.rank), int(by.rank))
    product = cross(bx, by) if product is None else product
    # the means and directions of the layers as given, undoing `decompose`'s rescaling
    directions = Directions(product, bx.w * bx.scale, by.w * by.scale, k, float(np.sqrt(n - 1)))
    means = bx.mean / bx.scale, by.mean / by.scale
    if weighting == "uniform":
        rho = np.linalg.svd(product, compute_uv=False)
        return CCAResult(np.clip(rho[:k], 0.0, 1.0), np.full(k, 1.0 / k), *means, directions)
    a, rho, bh = np.linalg.svd(product, full_matrices=False)
    # PWCCA (Morcos et al. 2018, eq. 3): alpha_i ∝ sum_j |<h_i, x_j>|, h_i the unit-norm canonical variate,
    # x_j the j-th centred neuron; here h_iᴴ X = a_iᴴ t without forming h_i.
    alpha = np.abs(herm(a[:, :k]) @ bx.t).sum(axis=1)
    result = CCAResult(np.clip(rho[:k], 0.0, 1.0), alpha / alpha.sum(), *means, directions)
    result.__dict__["_coefficients"] = directions(a, bh)  # the SVD's vectors are at hand: keep them
    return result


def _product_of_moments(bx: Subspace, by: Subspace, cross_gram: np.ndarray) -> np.ndarray:
    """The bases' product from the centred cross-Gram matrix (d_x, d_y) of two layers known by moments."""
    return herm(bx.w) @ cross_gram @ by.w


def _svcca_from_moments(gram: np.ndarray, mean: np.ndarray, n: int, keep: int | float, by: KeepRule) -> Subspace:
    sub = decompose_gram(gram, mean, n)
    return sub.top(n_kept(sub.s, keep, by))


CCA = Measure(
    "cca", decompose, cca_of, symmetric=True,
    from_moments=decompose_gram,
    compare_moments=lambda a, b, c: cca_of(a, b, product=_product_of_moments(a, b, c)),
)
SVCCA = Measure(
    "svcca", svcca_subspace, cca_of, symmetric=True,
    options={"keep": 0.99, "by": "variance"}, check=_check_svcca,
    from_moments=_svcca_from_moments,
    compare_moments=lambda a, b, c: cca_of(a, b, product=_product_of_moments(a, b, c)),
)
PWCCA = Measure(
    "pwcca", decompose, partial(cca_of, weighting="projection"), symmetric=False,
    from_moments=decompose_gram,
    compare_moments=lambda a, b, c: cca_of(a, b, "projection", _product_of_moments(a, b, c)),
)


def cca(x, y) -> CCAResult:
    """Canonical correlation analysis (similarity) of x (n, d_x) and y (n, d_y), numpy or torch (any device).

    From orthonormal bases of the centred layers (module docstring: Gram route when well conditioned, else
    SVD), never an inverted covariance, so dead units and collinear features are dropped rather than
    amplified. Returns min(rank x, rank y) correlations, float64 numpy, computed in float32 for float32 input.
    """
    return CCA.pair(x, y)


def svcca(x, y, keep: int | float = 0.99, by: KeepRule = "variance") -> CCAResult:
    """SVCCA (Raghu et al. 2017; similarity): keep each layer's leading singular directions, then CCA.

    `keep`: int, number of directions kept per side; float in (0, 1], fraction of each side's variance kept
    (`by="variance"`) or of its summed singular values (`by="singular_values"`, as in the authors' tutorials).
    """
    return SVCCA.pair(x, y, keep=keep, by=by)


def pwcca(x, y) -> CCAResult:
    """Projection-weighted CCA (Morcos et al. 2018; similarity), weights from x's side.

    Follows the paper's formula: weight of pair i ∝ sum over x's neurons j of |<h_i, x_j>|, h_i x's i-th
    canonical variate. Unlike the authors' pwcca.py (which adds neuron means to unwhitened directions), the
    result does not depend on the signs an SVD happens to return. Not symmetric: pwcca(x, y) != pwcca(y, x).
    """
    return PWCCA.pair(x, y)
