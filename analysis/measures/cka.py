"""Centred kernel alignment (Kornblith et al. 2019): linear and RBF, biased and debiased (similarities)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from .checks import Array, herm, is_complex, like, mean64, to_numpy, unit_scaled
from .protocol import Measure

Kernel = Literal["linear", "rbf"]


@dataclass(frozen=True)
class CKALayer:
    """A layer prepared for linear CKA: centred `xc` (n, d) (None from moments), its n x n Gram `k` if n < d,
    and ||X'X||_F."""

    xc: Array | None
    k: Array | None
    norm: float


def cka_layer(x: Array) -> CKALayer:
    """Centre a validated layer (n, d) and compute the norm linear CKA divides by, in the cheaper space."""
    x = unit_scaled(x)[0]
    xc = x - like(mean64(x, 0), x)
    n, d = xc.shape
    k = xc @ herm(xc) if n < d else None
    return CKALayer(xc, k, _frobenius(k if k is not None else herm(xc) @ xc))


def linear_cka_of(a: CKALayer, b: CKALayer) -> float:
    """Linear CKA of two prepared layers: HSIC = ||A'B||_F^2 = <K, L>, from whichever form is cheaper."""
    if a.k is not None and b.k is not None:
        hsic = float(to_numpy((a.k * b.k.conj()).sum()).real)  # <K, L> of Hermitian kernels
    else:
        hsic = _frobenius(herm(a.xc) @ b.xc) ** 2
    return float(np.clip(hsic / (a.norm * b.norm), 0.0, 1.0))


def _frobenius(m: Array) -> float:
    """Frobenius norm, summed in float64."""
    return float(np.linalg.norm(to_numpy(m)))


LINEAR_CKA = Measure(
    "linear_cka", cka_layer, linear_cka_of, symmetric=True,
    from_moments=lambda gram, mean, n: CKALayer(None, None, _frobenius(gram)),
    compare_moments=lambda a, b, cross: float(np.clip(_frobenius(cross) ** 2 / (a.norm * b.norm), 0.0, 1.0)),
)


def linear_cka(x, y) -> float:
    """Linear CKA (similarity in [0, 1]) of x (n, d_x) and y (n, d_y): ||Y'X||_F^2 / (||X'X||_F ||Y'Y||_F), centred.

    numpy or torch (any device); float32 input is multiplied in float32 and summed in float64.
    """
    return LINEAR_CKA.pair(x, y)


@dataclass(frozen=True)
class KernelLayer:
    """A layer prepared for kernel CKA: its n x n kernel matrix, centred (biased HSIC) or with a zero diagonal
    (unbiased HSIC), and its HSIC with itself."""

    k: np.ndarray
    debiased: bool
    self_hsic: float


def _check_cka(kernel: Kernel, bandwidth: float, debiased: bool) -> None:
    if kernel not in ("linear", "rbf"):
        raise ValueError(f"kernel must be 'linear' or 'rbf', got {kernel!r}")
    if isinstance(bandwidth, bool) or not isinstance(bandwidth, (int, float, np.integer, np.floating)):
        raise TypeError(f"bandwidth must be a number (a fraction of the median distance), got {bandwidth!r}")
    if not 0 < bandwidth < np.inf:
        raise ValueError(f"bandwidth must be positive and finite, got {bandwidth}")
    if not isinstance(debiased, (bool, np.bool_)):
        raise TypeError(f"debiased must be True or False, got {debiased!r}")


def kernel_layer(x: Array, kernel: Kernel = "linear", bandwidth: float = 0.5, debiased: bool = False):
    """A validated layer (n, d) prepared for `cka`: linear CKA's form when it is linear and biased."""
    if kernel == "linear" and not debiased:
        return cka_layer(x)
    if is_complex(x):
        raise ValueError(f"cka with kernel={kernel!r}, debiased={debiased} takes real activations; "
                         "linear, biased CKA (linear_cka) takes complex ones")
    x = to_numpy(unit_scaled(x)[0])
    if debiased and len(x) < 4:
        raise ValueError(f"debiased CKA needs at least 4 samples, got {len(x)}")
    x = x - x.mean(axis=0)
    k = _gram(x, kernel, bandwidth)
    if debiased:
        k = k - np.diag(np.diag(k))
    else:
        k = k - k.mean(axis=0) - k.mean(axis=1)[:, None] + k.mean()
    return KernelLayer(k, debiased, _hsic(k, k, debiased))


def kernel_cka_of(a, b) -> float:
    """Kernel CKA of two layers prepared by `kernel_layer` with the same options."""
    if isinstance(a, CKALayer):
        return linear_cka_of(a, b)
    return float(np.clip(_hsic(a.k, b.k, a.debiased) / np.sqrt(a.self_hsic * b.self_hsic), 0.0, 1.0))


def _kernel_from_moments(gram, mean, n, kernel: Kernel, bandwidth: float, debiased: bool) -> CKALayer:
    if kernel != "linear" or debiased:
        raise ValueError("only linear, biased CKA can be computed from streamed moments; "
                         f"kernel={kernel!r}, debiased={debiased} needs every sample at once")
    return LINEAR_CKA.from_moments(gram, mean, n)


CKA = Measure(
    "cka", kernel_layer, kernel_cka_of, symmetric=True,
    options={"kernel": "linear", "bandwidth": 0.5, "debiased": False}, check=_check_cka,
    from_moments=_kernel_from_moments, compare_moments=LINEAR_CKA.compare_moments,
)


def cka(x, y, kernel: Kernel = "linear", bandwidth: float = 0.5, debiased: bool = False) -> float:
    """Kernel CKA (similarity in [0, 1]) of x (n, d_x) and y (n, d_y).

    `kernel="rbf"`: k(a, b) = exp(-|a-b|^2 / (2 sigma^2)) with sigma = `bandwidth` times the median
    pairwise distance of that layer (Kornblith et al. 2019's convention: median over the full n x n
    distance matrix; where more than half of it is 0, as when most rows are equal, the median of its non-zero
    entries). `debiased=True` uses the unbiased HSIC estimator (Song et al. 2012), needing n > 3;
    it can dip slightly below 0 for unrelated layers, and is clipped to [0, 1] like the rest.
    """
    return CKA.pair(x, y, kernel=kernel, bandwidth=bandwidth, debiased=debiased)


def _gram(x: np.ndarray, kernel: str, bandwidth: float) -> np.ndarray:
    """The n x n kernel matrix of a centred layer."""
    dot = x @ x.T
    if kernel == "linear":
        return dot
    sq = np.diag(dot)
    dist2 = np.maximum(sq[:, None] + sq[None, :] - 2 * dot, 0.0)
    median = np.median(dist2)
    if median == 0:  # most rows identical (e.g. dead ReLU units): the median of the distances that are not 0
        median = np.median(dist2[dist2 > 0])
    with np.errstate(over="ignore"):  # a tiny bandwidth sends distances to inf, and the kernel to 0: checked next
        k = np.exp(-(dist2 / median) / (2 * bandwidth) / bandwidth)
    off = k[~np.eye(len(k), dtype=bool)]
    if off.max() < 1e-12 or off.min() > 1 - 1e-12:
        raise ValueError(f"bandwidth {bandwidth} makes the RBF kernel {'the identity' if off.max() < 1e-12 else 'constant'}"
                         " on this layer (CKA would say nothing); choose a bandwidth nearer 1")
    return k


def _hsic(k: np.ndarray, l: np.ndarray, debiased: bool) -> float:
    """HSIC up to a constant factor, of kernels prepared by `kernel_layer`: biased, tr(K H L H) = <HKH, L>
    (both centred already); unbiased, Song et al. 2012, eq. 5 (diagonals zeroed already)."""
    if not debiased:
        return float(np.sum(k * l))
    n = len(k)
    k1, l1 = k.sum(axis=1), l.sum(axis=1)
    return float(np.sum(k * l) + k1.sum() * l1.sum() / ((n - 1) * (n - 2)) - 2 * (k1 @ l1) / (n - 2))
