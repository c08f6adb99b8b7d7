"""Centred kernel alignment (Kornblith et al. 2019): linear and RBF, biased and debiased (similarities)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from .checks import Array, as_pair, herm, like, mean64, to_numpy


def linear_cka(x, y) -> float:
    """Linear CKA (similarity in [0, 1]) of x (n, d_x) and y (n, d_y): ||Y'X||_F^2 / (||X'X||_F ||Y'Y||_F), centred.

    numpy or torch (any device); float32 input is multiplied in float32 and summed in float64.
    """
    x, y = as_pair(x, y, native=True)
    return linear_cka_of(cka_layer(x), cka_layer(y))


@dataclass(frozen=True)
class CKALayer:
    """A layer prepared for linear CKA: centred `xc` (n, d), its n x n Gram `k` if n < d, and ||X'X||_F."""

    xc: Array
    k: Array | None
    norm: float


def cka_layer(x: Array) -> CKALayer:
    """Centre a validated layer (n, d) and compute the norm linear CKA divides by, in the cheaper space."""
    xc = x - like(mean64(x, 0), x)
    n, d = xc.shape
    k = xc @ herm(xc) if n < d else None
    return CKALayer(xc, k, _frobenius(k if k is not None else herm(xc) @ xc))


def linear_cka_of(a: CKALayer, b: CKALayer) -> float:
    """Linear CKA of two prepared layers: HSIC = ||A'B||_F^2 = <K, L>, from whichever form is cheaper."""
    if a.k is not None and b.k is not None:
        hsic = float(to_numpy((a.k * b.k).sum()).real)
    else:
        hsic = _frobenius(herm(a.xc) @ b.xc) ** 2
    return float(np.clip(hsic / (a.norm * b.norm), 0.0, 1.0))


def _frobenius(m: Array) -> float:
    """Frobenius norm, summed in float64."""
    return float(np.linalg.norm(to_numpy(m)))


def cka(
    x,
    y,
    kernel: Literal["linear", "rbf"] = "linear",
    bandwidth: float = 0.5,
    debiased: bool = False,
) -> float:
    """Kernel CKA (similarity in [0, 1]) of x (n, d_x) and y (n, d_y).

    `kernel="rbf"`: k(a, b) = exp(-|a-b|^2 / (2 sigma^2)) with sigma = `bandwidth` times the median
    pairwise distance of that layer (Kornblith et al. 2019's convention: median over the full n x n
    distance matrix). `debiased=True` uses the unbiased HSIC estimator (Song et al. 2012), needing n > 3;
    it can dip slightly below 0 for unrelated layers, and is clipped to [0, 1] like the rest.
    """
    if kernel not in ("linear", "rbf"):
        raise ValueError(f"kernel must be 'linear' or 'rbf', got {kernel!r}")
    if kernel == "linear" and not debiased:
        return linear_cka(x, y)
    x, y = as_pair(x, y)
    if debiased and len(x) < 4:
        raise ValueError(f"debiased CKA needs at least 4 samples, got {len(x)}")
    x, y = x - x.mean(axis=0), y - y.mean(axis=0)
    k, l = (_gram(a, kernel, bandwidth) for a in (x, y))
    hsic = _hsic_unbiased if debiased else _hsic_biased
    return float(np.clip(hsic(k, l) / np.sqrt(hsic(k, k) * hsic(l, l)), 0.0, 1.0))


def _gram(x: np.ndarray, kernel: str, bandwidth: float) -> np.ndarray:
    """The n x n kernel matrix of a centred layer."""
    dot = x @ x.T
    if kernel == "linear":
        return dot
    if not bandwidth > 0:
        raise ValueError(f"bandwidth must be positive, got {bandwidth}")
    sq = np.diag(dot)
    dist2 = np.maximum(sq[:, None] + sq[None, :] - 2 * dot, 0.0)
    return np.exp(-dist2 / (2 * bandwidth**2 * np.median(dist2)))


def _hsic_biased(k: np.ndarray, l: np.ndarray) -> float:
    """HSIC up to a constant factor: tr(K H L H), H the centring matrix."""
    kc = k - k.mean(axis=0) - k.mean(axis=1)[:, None] + k.mean()
    return float(np.sum(kc * l))


def _hsic_unbiased(k: np.ndarray, l: np.ndarray) -> float:
    """Unbiased HSIC estimator (Song et al. 2012, eq. 5), up to the constant 1/(n(n-3))."""
    n = len(k)
    k, l = k - np.diag(np.diag(k)), l - np.diag(np.diag(l))
    k1, l1 = k.sum(axis=1), l.sum(axis=1)
    return float(np.sum(k * l) + k1.sum() * l1.sum() / ((n - 1) * (n - 2)) - 2 * (k1 @ l1) / (n - 2))
