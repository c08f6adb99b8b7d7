"""Validation shared by every measure: arrays in, clear errors out."""
from __future__ import annotations

import warnings

import numpy as np


def as_array(x, name: str = "x", ndim: int = 2) -> np.ndarray:
    """`x` (numpy array or torch tensor, any device) as a finite float64 array with `ndim` axes, samples first."""
    if hasattr(x, "detach"):  # torch.Tensor, without importing torch
        x = x.detach().cpu().numpy()
    x = np.asarray(x)
    if not (np.issubdtype(x.dtype, np.number) or x.dtype == bool):
        raise ValueError(f"{name} must hold numbers, got dtype {x.dtype}")
    if x.ndim != ndim:
        layout = "(n_samples, n_features)" if ndim == 2 else "(n_samples, channels, height, width)"
        raise ValueError(f"{name} must be a {ndim}-D array {layout}, got shape {x.shape}")
    x = x.astype(np.complex128 if np.iscomplexobj(x) else np.float64, copy=False)
    bad = ~np.isfinite(x)
    if bad.any():
        raise ValueError(f"{name} contains NaN or Inf ({int(bad.sum())} of {x.size} entries)")
    if x.shape[0] < 2:
        raise ValueError(f"{name} has {x.shape[0]} sample(s); at least 2 are needed")
    if x.size and not np.any(x != x[:1]):
        raise ValueError(f"{name} has no variance: every feature is constant over the samples")
    return x


def as_pair(x, y, ndim: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """Both layers validated, with the same number of samples."""
    x, y = as_array(x, "x", ndim), as_array(y, "y", ndim)
    if x.shape[0] != y.shape[0]:
        raise ValueError(
            f"x and y must hold the same samples: x has {x.shape[0]} samples, y has {y.shape[0]}"
        )
    return x, y


def warn_if_saturated(n: int, rank_x: int, rank_y: int) -> None:
    """Warn when the two layers span more dimensions than the centred samples have, forcing correlations of 1."""
    if rank_x + rank_y > n - 1:
        warnings.warn(
            f"{n} samples for layers of rank {rank_x} and {rank_y}: with fewer samples than features, "
            f"{rank_x + rank_y - (n - 1)} canonical correlations are 1 whatever the data; "
            "use more samples or reduce the layers first (svcca)",
            RuntimeWarning,
            stacklevel=3,
        )
