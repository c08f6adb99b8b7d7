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


def _classed(n_images=400, d=6, seed=0):
    """Units driven by a class-dependent latent (n_images, d), labels (n_images,)."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 5, n_images)
    latent = rng.standard_normal((5, 2))[labels] + 0.3 * rng.standard_normal((n_images, 2))
    x = latent @ rng.standard_normal((2, d)) + 0.1 * rng.standard_normal((n_images, d))
    return x, labels, rng


def test_compare_units_of_a_permuted_copy():
    x, labels, rng = _classed()
    y = -1.7 * x[:, rng.permutation(6)] + 1.0  # SVCCA is invariant to scaled orthogonal maps only
    c = neurons.compare_units(x, y, labels, k=2)
    assert c.top_pair == pytest.approx(1.0, abs=1e-9)
    np.testing.assert_allclose(c.partners, 1.0, atol=1e-9)
    np.testing.assert_allclose(c.rho, 1.0, atol=1e-9)
    np.testing.assert_allclose(c.held_out, 1.0, atol=1e-9)
    assert c.top_pair_shuffled < 0.3 and c.rho_shuffled[0] < 0.4  # 400 images paired at random
    assert c.midpoint == pytest.approx((c.top_pair_shuffled + 1) / 2)
    assert c.random_pair > c.top_pair_shuffled  # units of one latent correlate whichever are drawn
    assert neurons.compare_units(x, y, labels, k=6).random_pair == pytest.approx(1.0)  # every unit drawn


def test_compare_units_of_mixed_units_sees_the_subspace_not_the_neurons():
    rng = np.random.default_rng(3)
    labels = rng.integers(0, 4, 1000)
    x = rng.standard_normal((1000, 4)) * [4, 3, 2, 1]
    q, _ = np.linalg.qr(rng.standard_normal((4, 4)))
    y = x @ q  # the same subspace, every unit a mixture of x's
    c = neurons.compare_units(x, y, labels, k=1)
    np.testing.assert_allclose(c.rho, 1.0, atol=1e-9)
    np.testing.assert_allclose(c.held_out, 1.0, atol=1e-9)
    assert c.top_pair < 0.99
    assert abs(c.class_share_directions) < 0.05  # the classes play no part in x


def test_compare_units_class_share_of_shared_directions_and_of_loud_private_units():
    rng = np.random.default_rng(6)
    labels = rng.integers(0, 4, 1000)
    x_shared = np.array([[2.0, 0], [0, 2], [-2, 0], [0, -2]])[labels] + 0.3 * rng.standard_normal((1000, 2))
    loud_x, loud_y = 10 + rng.standard_normal((2, 1000, 2))  # each net's own strongest units, blind to the class
    x, y = np.hstack([loud_x, x_shared]), np.hstack([x_shared @ rng.standard_normal((2, 2)), loud_y])
    c = neurons.compare_units(x, y, labels, k=2)
    assert c.rho[1] > 0.99 and c.rho_shuffled[0] < 0.2
    assert c.class_share_directions > 0.8 and c.class_share_neurons < 0.05
    assert c.top_pair < 0.2 and np.all(c.partners < 0.2)  # the top units are each net's private ones


def test_compare_units_of_independent_layers():
    x, labels, rng = _classed(seed=1)
    y, _, _ = _classed(seed=2)
    c = neurons.compare_units(x, y, labels, k=2)
    assert c.rho[0] < 0.4 and np.all(np.abs(c.held_out) < 0.3) and c.top_pair < 0.3


def test_compare_units_shuffles_whole_images():
    rng = np.random.default_rng(4)
    n, per_image = 200, 8
    position = 5 * rng.standard_normal((1, per_image, 3))  # the same position pattern in every image
    x = (position + rng.standard_normal((n, 1, 3)) + 0.1 * rng.standard_normal((n, per_image, 3))).reshape(-1, 3)
    c = neurons.compare_units(x, x, rng.integers(0, 3, n), k=1, per_image=per_image)
    assert c.top_pair == pytest.approx(1.0)
    assert c.top_pair_shuffled > 0.8  # other images, same positions: the position pattern still lines up
    with pytest.raises(ValueError, match="per_image"):
        neurons.compare_units(x, x, np.zeros(n + 1, int), per_image=per_image)


def test_compare_units_pads_missing_directions_with_nan():
    rng = np.random.default_rng(5)
    a = rng.standard_normal((300, 1))
    x = np.concatenate([a, 2 * a, -a], axis=1)  # rank 1: SVCCA keeps one direction
    c = neurons.compare_units(x, x + 0.01 * rng.standard_normal((300, 3)), rng.integers(0, 3, 300), k=2)
    assert c.rho[0] > 0.99 and np.isnan(c.rho[1]) and np.isnan(c.held_out[1])


def test_compare_networks_covers_every_layer_and_pair():
    x, labels, rng = _classed()
    nets = [{"a": x + 0.2 * rng.standard_normal(x.shape), "b": np.repeat(x, 2, axis=0) + rng.standard_normal((800, 6))}
            for _ in range(3)]
    result = neurons.compare_networks(nets, labels, per_image={"b": 2}, k=2)
    assert result.layers == ("a", "b") and result.pairs == ((0, 1), (0, 2), (1, 2))
    assert result.values("top_pair").shape == (2, 3) and result.values("rho").shape == (2, 3, 2)
    assert result.values("midpoint").shape == (2, 3)
    assert np.all(result.values("rho")[0] > result.values("rho")[1])  # more noise in b
    with pytest.raises(ValueError, match="two networks"):
        neurons.compare_networks(nets[:1], labels)


def test_all_positive():
    assert neurons.all_positive([0.1, 2.0]) is True
    assert neurons.all_positive([[0.1, 0.0]]) is False  # a margin of 0 does not beat the control
    assert neurons.all_positive([0.1, np.nan]) is None  # undetermined, never a pass
    assert neurons.all_positive([-0.1, np.nan]) is False  # a definite failure anywhere fails the finding
