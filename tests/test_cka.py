"""Linear and RBF CKA, biased and debiased: closed forms, invariances, bad input."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from layers import correlated_layers
from scipy.stats import ortho_group

import analysis

seeds = st.integers(0, 2**32 - 1)
KINDS = [dict(kernel="linear"), dict(kernel="rbf", bandwidth=0.5), dict(kernel="linear", debiased=True)]


def hsic_by_definition(k: np.ndarray, l: np.ndarray) -> float:
    """tr(K H L H) with H the centring matrix, written out."""
    n = len(k)
    h = np.eye(n) - np.ones((n, n)) / n
    return float(np.trace(k @ h @ l @ h))


def test_linear_cka_matches_its_definition():
    x, y = correlated_layers(0, n=80)
    k, l = x @ x.T, y @ y.T
    expected = hsic_by_definition(k, l) / np.sqrt(hsic_by_definition(k, k) * hsic_by_definition(l, l))
    assert analysis.linear_cka(x, y) == pytest.approx(expected, abs=1e-12)


def test_rbf_cka_matches_its_definition():
    x, y = correlated_layers(1, n=60)

    def gram(a):
        d2 = ((a[:, None, :] - a[None, :, :]) ** 2).sum(-1)
        return np.exp(-d2 / (2 * 0.8**2 * np.median(d2)))

    k, l = gram(x), gram(y)
    expected = hsic_by_definition(k, l) / np.sqrt(hsic_by_definition(k, k) * hsic_by_definition(l, l))
    assert analysis.cka(x, y, kernel="rbf", bandwidth=0.8) == pytest.approx(expected, abs=1e-12)


@pytest.mark.parametrize("kw", KINDS)
def test_self_similarity_is_one(kw):
    x, _ = correlated_layers(2)
    assert analysis.cka(x, x, **kw) == pytest.approx(1.0, abs=1e-12)


@settings(max_examples=20, deadline=None)
@given(seed=seeds, scale=st.floats(0.01, 100.0))
def test_invariant_to_orthogonal_maps_isotropic_scaling_and_sample_order(seed, scale):
    x, y = correlated_layers(seed % 1000, n=60, dx=6, dy=5)
    q = ortho_group.rvs(6, random_state=seed % 2**31)
    perm = np.random.default_rng(seed).permutation(60)
    for kw in KINDS:
        base = analysis.cka(x, y, **kw)
        assert analysis.cka(scale * x @ q + 3.0, y, **kw) == pytest.approx(base, abs=1e-9)
        assert analysis.cka(x[perm], y[perm], **kw) == pytest.approx(base, abs=1e-9)
        assert analysis.cka(y, x, **kw) == pytest.approx(base, abs=1e-9)


def test_not_invariant_to_general_invertible_maps():
    x, y = correlated_layers(3, dx=6)
    stretch = np.diag([50.0, 1, 1, 1, 1, 0.02])
    assert abs(analysis.linear_cka(x @ stretch, y) - analysis.linear_cka(x, y)) > 0.05
    # ... which CCA is: the difference between the two families
    np.testing.assert_allclose(analysis.cca(x @ stretch, y).rho, analysis.cca(x, y).rho, atol=1e-8)


def test_debiased_removes_the_small_sample_bias():
    rng = np.random.default_rng(4)
    x, y = rng.standard_normal((30, 100)), rng.standard_normal((30, 100))
    biased, debiased = analysis.cka(x, y), analysis.cka(x, y, debiased=True)
    assert biased > 0.5  # independent, yet high with few samples and many features
    assert debiased < 0.1


def test_values_lie_in_unit_interval_and_track_shared_signal():
    noisy, clean = correlated_layers(5, noise=3.0), correlated_layers(5, noise=0.1)
    for kw in KINDS:
        low, high = analysis.cka(*noisy, **kw), analysis.cka(*clean, **kw)
        assert 0.0 <= low < high <= 1.0


@pytest.mark.parametrize(
    "kw, message",
    [(dict(kernel="poly"), "kernel"), (dict(kernel="rbf", bandwidth=0.0), "bandwidth")],
)
def test_bad_options_are_clear_errors(kw, message):
    x, y = correlated_layers(6)
    with pytest.raises(ValueError, match=message):
        analysis.cka(x, y, **kw)


def test_bad_input_is_a_clear_error():
    x, y = correlated_layers(7)
    with pytest.raises(ValueError, match="same samples"):
        analysis.linear_cka(x, y[:-1])
    with pytest.raises(ValueError, match="NaN"):
        analysis.cka(np.where(x > 2, np.nan, x), y, kernel="rbf")
    with pytest.raises(ValueError, match="at least 4"):
        analysis.cka(x[:3], y[:3], debiased=True)
