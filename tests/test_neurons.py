"""Units and their correspondence: closed-form correlations, dead units, ranking by norm, best matches, signs."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from analysis.studies import neurons


def test_correlations_of_known_units():
    t = np.linspace(0, 1, 101)
    x = np.stack([t, t**2], axis=1)
    y = np.stack([-3 * t + 7, 2 * t**2, np.cos(40 * t)], axis=1)
    c = neurons.unit_correlations(x, y)
    assert c.shape == (2, 3)
    assert c[0, 0] == pytest.approx(-1.0, abs=1e-12)  # a negative affine map of the same unit
    assert c[1, 1] == pytest.approx(1.0, abs=1e-12)
    np.testing.assert_allclose(c[:, :2], np.corrcoef(x.T, y[:, :2].T)[:2, 2:], atol=1e-12)


def test_correlations_match_numpy_and_are_symmetric():
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((50, 4)), rng.standard_normal((50, 6))
    c = neurons.unit_correlations(x, y)
    np.testing.assert_allclose(c, np.corrcoef(x.T, y.T)[:4, 4:], atol=1e-12)
    np.testing.assert_allclose(neurons.unit_correlations(y, x), c.T, atol=1e-15)
    np.testing.assert_allclose(np.diag(neurons.unit_correlations(x, x)), 1.0, atol=1e-12)


def test_dead_units_correlate_zero_not_nan():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((40, 3))
    x[:, 1] = 0.0  # a dead ReLU unit
    y = np.concatenate([x[:, :1], np.full((40, 1), 0.7)], axis=1)  # a constant, non-zero unit
    c = neurons.unit_correlations(x, y)
    assert np.isfinite(c).all()
    assert c[1].tolist() == [0.0, 0.0] and c[:, 1].tolist() == [0.0, 0.0, 0.0]
    assert c[0, 0] == pytest.approx(1.0)


def test_bad_input_is_named():
    with pytest.raises(ValueError, match="same samples"):
        neurons.unit_correlations(np.ones((5, 2)) * np.arange(5)[:, None], np.arange(12.0).reshape(6, 2))
    with pytest.raises(ValueError, match="NaN"):
        neurons.unit_correlations(np.array([[0.0, 1], [np.nan, 2], [1, 0]]), np.eye(3))
    with pytest.raises(ValueError, match="k must lie"):
        neurons.top_units(np.eye(3), 4)
    with pytest.raises(ValueError, match="2-D"):
        neurons.best_matches(np.zeros(3))


def test_top_units_rank_by_raw_norm():
    x = np.zeros((4, 4))
    x[:, 0] = 5.0  # constant but strongly firing: highest raw activation, no variance
    x[:, 1] = [0, 1, 0, 1]
    x[:, 2] = [0, 3, 0, 3]
    x[:, 3] = [-4, 0, 0, 0]
    np.testing.assert_allclose(neurons.unit_norms(x), [10, np.sqrt(2), np.sqrt(18), 4])
    assert neurons.top_units(x, 2).tolist() == [0, 2]
    assert neurons.top_units(x, 4).tolist() == [0, 2, 3, 1]


def test_best_matches_by_absolute_correlation():
    corr = np.array([[0.1, -0.9, 0.5], [0.3, 0.2, 0.25], [0.8, 0.8, -0.1]])
    idx, r = neurons.best_matches(corr)
    assert idx.tolist() == [1, 0, 0]  # ties: the first column
    np.testing.assert_allclose(r, [-0.9, 0.3, 0.8])


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**32 - 1))
def test_permuted_copy_is_matched_back(seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((60, 7))
    perm = rng.permutation(7)
    scale = rng.uniform(0.5, 3, 7) * rng.choice([-1, 1], 7)
    idx, r = neurons.best_matches(neurons.unit_correlations(x, x[:, perm] * scale + rng.standard_normal(7)))
    assert idx.tolist() == np.argsort(perm).tolist()
    np.testing.assert_allclose(np.abs(r), 1.0, atol=1e-12)


def test_match_top_units_finds_a_scaled_copy_of_the_strongest_units():
    rng = np.random.default_rng(0)
    x = np.abs(rng.standard_normal((200, 5))) * [1, 5, 2, 4, 3]  # units 1 and 3 fire hardest
    y = np.concatenate([rng.standard_normal((200, 3)), 10 * x[:, [3]], 10 * x[:, [1]]], axis=1)
    m = neurons.match_top_units(x, y, 2)
    assert m.top_x.tolist() == [1, 3] and m.top_y.tolist() == [4, 3]
    np.testing.assert_allclose(np.abs(m.correlations), [[1, 0], [0, 1]], atol=0.2)
    assert m.best_pair == pytest.approx(1.0, abs=1e-12)
    assert m.partners.tolist() == [4, 3]
    np.testing.assert_allclose(m.partner_correlations, 1.0, atol=1e-12)


def test_align_signs():
    rng = np.random.default_rng(2)
    skewed = rng.exponential(size=(500, 2))
    flipped = skewed * [1, -1]
    np.testing.assert_array_equal(neurons.align_signs(flipped), skewed)
    ref = rng.standard_normal((500, 2))
    other = -ref + 0.1 * rng.standard_normal((500, 2))
    np.testing.assert_array_equal(neurons.align_signs(other, ref), -other)
    with pytest.raises(ValueError, match="shape"):
        neurons.align_signs(ref, ref[:, :1])


def test_class_variance_fraction():
    labels = np.array([0, 0, 1, 1, 2, 2])
    x = np.stack([
        [1.0, 1, 5, 5, -2, -2],  # constant within classes: all its variance is between classes
        [1.0, -1, 1, -1, 1, -1],  # same mean in every class: none is
        [0.0, 2, 2, 4, 0, 0],  # class means 1, 3, 0 around 4/3: between 2·(1/9 + 25/9 + 16/9) = 28/3, total 40/3
        np.zeros(6),  # dead
    ], axis=1)
    eta = neurons.class_variance_fraction(x, labels)
    np.testing.assert_allclose(eta, [1.0, 0.0, 0.7, 0.0], atol=1e-12)
    with pytest.raises(ValueError, match="labels"):
        neurons.class_variance_fraction(x, labels[:5])
