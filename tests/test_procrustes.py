"""Orthogonal Procrustes distance: zero for rotations and rescalings, symmetric, bounded."""
import numpy as np
import pytest
from layers import correlated_layers
from scipy.stats import ortho_group

import analysis


def test_zero_for_rotated_rescaled_copies():
    x, _ = correlated_layers(0, dx=7)
    y = 4.0 * x @ ortho_group.rvs(7, random_state=1) + 2.0
    assert analysis.procrustes_distance(x, y) == pytest.approx(0.0, abs=1e-10)


def test_matches_the_orthogonal_procrustes_problem():
    x, y = correlated_layers(2, dx=5, dy=5)
    xc, yc = x - x.mean(0), y - y.mean(0)
    xc, yc = xc / np.linalg.norm(xc), yc / np.linalg.norm(yc)
    u, _, vt = np.linalg.svd(yc.T @ xc)
    best = np.linalg.norm(xc - yc @ (u @ vt)) ** 2  # the optimal rotation, applied explicitly
    assert analysis.procrustes_distance(x, y) == pytest.approx(best, abs=1e-12)


def test_symmetric_bounded_and_larger_for_unrelated_layers():
    rng = np.random.default_rng(3)
    x, y = correlated_layers(3, noise=0.1)
    unrelated = rng.standard_normal(y.shape)
    d, far = analysis.procrustes_distance(x, y), analysis.procrustes_distance(x, unrelated)
    assert d == pytest.approx(analysis.procrustes_distance(y, x), abs=1e-12)
    assert 0.0 < d < far <= 2.0


def test_bad_input_is_a_clear_error():
    with pytest.raises(ValueError, match="no variance"):
        analysis.procrustes_distance(np.ones((10, 2)), np.eye(10, 2))
