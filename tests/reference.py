"""The reference implementation's algorithm (google/svcca, cca_core.get_cca_similarity), as a baseline.

Covariance of the stacked activations, pseudo-inverse, eigendecomposition square roots, then an SVD: the
way the authors compute CCA. Kept only to check `analysis` against it and to benchmark; it squares the
condition number, so use `analysis.cca` for real work. Layout here is ours, samples first.
"""
from __future__ import annotations

import numpy as np


def reference_cca(x: np.ndarray, y: np.ndarray, epsilon: float = 0.0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The reference algorithm on x (n, d_x), y (n, d_y): canonical correlations (min(d_x, d_y),) and, as
    `cca_core.compute_ccas` returns them, the directions in the whitened spaces: `coef_x` (d_x, d_x), `coef_y`."""
    dx = x.shape[1]
    cov = np.cov(x.T, y.T)
    sxx, sxy, syy = cov[:dx, :dx], cov[:dx, dx:], cov[dx:, dx:]
    xmax, ymax = np.abs(sxx).max(), np.abs(syy).max()  # rescaled as the reference does
    sxx, syy, sxy = sxx / xmax, syy / ymax, sxy / np.sqrt(xmax * ymax)
    keep_x, keep_y = np.abs(np.diag(sxx)) >= epsilon, np.abs(np.diag(syy)) >= epsilon
    sxx, syy, sxy = sxx[np.ix_(keep_x, keep_x)], syy[np.ix_(keep_y, keep_y)], sxy[np.ix_(keep_x, keep_y)]
    sxx = sxx + epsilon * np.eye(len(sxx))
    syy = syy + epsilon * np.eye(len(syy))
    wx, wy = _sqrtm_psd(np.linalg.pinv(sxx)), _sqrtm_psd(np.linalg.pinv(syy))
    u, s, vh = np.linalg.svd(wx @ sxy @ wy)
    return np.abs(s), u.T, vh


def reference_cca_rho(x: np.ndarray, y: np.ndarray, epsilon: float = 0.0) -> np.ndarray:
    """Canonical correlations of x (n, d_x), y (n, d_y) by the reference algorithm: min(d_x, d_y) values."""
    return reference_cca(x, y, epsilon)[0]


def reference_svcca_rho(x: np.ndarray, y: np.ndarray, keep: int) -> np.ndarray:
    """SVCCA as in the authors' tutorials: centre, SVD, keep the top `keep` of s * V, then reference CCA."""
    def reduce(a: np.ndarray) -> np.ndarray:
        centred = a - a.mean(axis=0)
        u, s, _ = np.linalg.svd(centred, full_matrices=False)
        return u[:, :keep] * s[:keep]

    return reference_cca_rho(reduce(x), reduce(y))


def reference_dft_cca_rho(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """DFT-CCA as one reference CCA per frequency in a Python loop (same spatial size), sorted descending."""
    fa, fb = np.fft.fft2(a, axes=(2, 3)), np.fft.fft2(b, axes=(2, 3))
    rho = [
        reference_cca_rho(fa[:, :, i, j], fb[:, :, i, j])
        for i in range(a.shape[2])
        for j in range(a.shape[3])
    ]
    return np.sort(np.concatenate(rho))[::-1]


def _sqrtm_psd(a: np.ndarray) -> np.ndarray:
    """Square root of a Hermitian positive semi-definite matrix by eigendecomposition."""
    w, v = np.linalg.eigh(a)
    return (v * np.sqrt(np.clip(w, 0, None))) @ v.conj().T
