"""Convolutional layers: DFT-CCA (per spatial frequency) and reshaping to (n, features)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .cca import subspace
from .checks import as_pair, warn_if_saturated


@dataclass(frozen=True)
class DFTCCAResult:
    """Canonical correlations of two conv layers, frequency by frequency.

    `rho`: every frequency's coefficients together, descending (as many as CCA on the flattened layers
    gives, when the data are translation invariant); `per_frequency` (h, w, k): each frequency's
    coefficients, descending, 0 where that frequency has fewer than k directions.
    """

    rho: np.ndarray
    per_frequency: np.ndarray

    @property
    def mean(self) -> float:
        """Mean canonical correlation over all frequencies: the similarity, in [0, 1]."""
        return float(self.rho.mean())


def dft_cca(a, b) -> DFTCCAResult:
    """DFT-CCA (Raghu et al. 2017, sec. 3.1; similarity) of conv activations a, b (n, channels, height, width).

    A 2-D DFT over the spatial axes block-diagonalises the covariance of translation-invariant data, so CCA
    splits into one (complex) CCA per frequency; the coefficients then equal CCA on the flattened layers.
    Layers of different spatial size are compared on the low frequencies both have.
    """
    a, b = as_pair(a, b, ndim=4)
    h, w = min(a.shape[2], b.shape[2]), min(a.shape[3], b.shape[3])
    fa, fb = _low_frequencies(a, h, w), _low_frequencies(b, h, w)
    k = min(a.shape[1], b.shape[1])
    warn_if_saturated(len(a), a.shape[1], b.shape[1])
    per_frequency = np.zeros((h, w, k))
    found = []
    for i in range(h):
        for j in range(w):
            rho = _frequency_rho(fa[:, :, i, j], fb[:, :, i, j])
            per_frequency[i, j, : len(rho)] = rho
            found.append(rho)
    return DFTCCAResult(np.sort(np.concatenate(found))[::-1], per_frequency)


def _low_frequencies(x: np.ndarray, h: int, w: int) -> np.ndarray:
    """The DFT of x over its spatial axes, restricted to the h x w lowest frequencies (signed order)."""
    f = np.fft.fft2(x, axes=(2, 3))
    rows = np.fft.fftfreq(h, 1 / h).astype(int) % x.shape[2]
    cols = np.fft.fftfreq(w, 1 / w).astype(int) % x.shape[3]
    return f[:, :, rows][:, :, :, cols]


def _frequency_rho(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Canonical correlations of one frequency's complex channel vectors; none if a side has no variance."""
    if not (np.any(x != x[:1]) and np.any(y != y[:1])):
        return np.zeros(0)
    bx, by = subspace(x), subspace(y)
    return np.linalg.svd(bx.u.conj().T @ by.u, compute_uv=False)[: min(len(bx.s), len(by.s))].clip(0, 1)


def flatten(a) -> np.ndarray:
    """Conv activations (n, c, h, w) as (n, c*h*w): every (channel, position) a feature."""
    a = np.asarray(a.detach().cpu() if hasattr(a, "detach") else a)
    return a.reshape(len(a), -1)


def average_pool(a) -> np.ndarray:
    """Conv activations (n, c, h, w) averaged over positions: (n, c)."""
    a = np.asarray(a.detach().cpu() if hasattr(a, "detach") else a)
    return a.mean(axis=(2, 3))
