"""Convergent learning: one-to-one matching, shuffled controls, sparse prediction and losses in closed form."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from analysis.networks.samples import Samples
from analysis.studies import matching, neurons


def _layer(n: int, d: int, seed: int) -> np.ndarray:
    """Correlated ReLU units, like a layer's: a random mixing of a few sources, rectified."""
    rng = np.random.default_rng(seed)
    return np.maximum(rng.standard_normal((n, 4)) @ rng.standard_normal((4, d)) + rng.standard_normal((n, d)), 0)


@settings(max_examples=20, deadline=None)
@given(st.integers(2, 12), st.integers(0, 2**16))
def test_a_permuted_copy_matches_one_to_one_and_recovers_the_permutation(d, seed):
    x = _layer(200, d, seed)
    perm = np.random.default_rng(seed).permutation(d)
    partners, r = matching.one_to_one(neurons.unit_correlations(x, 3 * x[:, perm] + 1))
    np.testing.assert_array_equal(perm[partners], np.arange(d))  # each unit found where the permutation put it
    np.testing.assert_allclose(r, 1.0, atol=1e-12)


def test_one_to_one_maximises_the_total_not_each_row_greedily():
    corr = np.array([[0.9, 0.8], [0.85, 0.1]])  # greedy (row 0 -> 0) totals 1.0; the matching 0->1, 1->0 totals 1.65
    partners, r = matching.one_to_one(corr)
    assert partners.tolist() == [1, 0] and r.tolist() == [0.8, 0.85]
    semi, _ = neurons.best_matches(corr)
    assert semi.tolist() == [0, 0]  # semi-matching may pick one column twice


def test_one_to_one_uses_absolute_correlation_and_reports_its_sign():
    partners, r = matching.one_to_one(np.array([[0.2, -0.9], [0.5, 0.3]]))
    assert partners.tolist() == [1, 0] and r.tolist() == [-0.9, 0.5]


def test_one_to_one_of_a_wide_matrix_and_bad_shapes():
    partners, _ = matching.one_to_one(np.array([[0.1, 0.2, 0.9]]))
    assert partners.tolist() == [2]
    with pytest.raises(ValueError, match="no more rows than columns"):
        matching.one_to_one(np.ones((3, 2)))
    with pytest.raises(ValueError, match="2-D"):
        matching.one_to_one(np.ones(3))


def test_shuffled_images_move_whole_images_and_break_the_matches():
    x = _layer(2000 * 4, 8, 0)
    shuffled = matching.shuffled_images(x, per_image=4, seed=1)
    by_image, shuffled_by_image = x.reshape(2000, 4, 8), shuffled.reshape(2000, 4, 8)
    order = [next(i for i in range(2000) if np.array_equal(by_image[i], img)) for img in shuffled_by_image[:20]]
    assert sorted(set(order)) == sorted(order) and order != list(range(20))  # images kept whole, moved
    assert sorted(map(bytes, shuffled_by_image)) == sorted(map(bytes, by_image))
    _, r = matching.one_to_one(neurons.unit_correlations(x, shuffled))
    assert np.abs(r).max() < 0.1  # near zero, where the unshuffled copy matches at 1
    with pytest.raises(ValueError, match="whole images"):
        matching.shuffled_images(x[:-1], per_image=4)


def test_shuffled_samples_shuffle_every_layer_alike():
    x = _layer(60, 3, 0)
    s = Samples({"conv": np.repeat(x, 2, axis=0), "fc": x}, {"conv": x, "fc": x}, {"conv": 2, "fc": 1})
    t = matching.shuffled_samples(s, seed=3)
    np.testing.assert_array_equal(t.positions["conv"][::2], t.positions["fc"])
    np.testing.assert_array_equal(t.channel_means["conv"], t.positions["fc"])
    assert not np.array_equal(t.positions["fc"], x)


def test_standardized_uses_the_training_statistics_and_zeroes_constant_units():
    train = np.array([[0.0, 5.0], [2.0, 5.0], [4.0, 5.0]])
    test = np.array([[2.0, 7.0], [6.0, 5.0]])
    s_train, s_test = matching.standardized(train, test)
    sd = np.std([0.0, 2.0, 4.0])
    np.testing.assert_allclose(s_train[:, 0], [-2 / sd, 0, 2 / sd])
    np.testing.assert_allclose(s_test, [[0.0, 0.0], [4 / sd, 0.0]])


def test_sparse_prediction_recovers_a_sparse_linear_map():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((6000, 10))
    true = np.zeros((10, 3))
    true[2, 0], true[7, 1], true[[0, 4], 2] = 1.0, -1.0, (0.6, 0.8)  # each unit of y from one or two of x
    y = x @ true
    fit = matching.sparse_prediction(x[:4000], y[:4000], x[4000:], y[4000:], decays=(0.0, 1e-4, 1e-2, 10.0))
    # on standardised units the weights are the map itself (up to the units' sample deviations)
    np.testing.assert_allclose(fit.weights[0], true, atol=0.02)
    np.testing.assert_allclose(fit.weights[1], true, atol=0.02)
    assert ((np.abs(fit.weights[2]) > 1e-3) == (true != 0)).all()  # the support, exactly
    np.testing.assert_allclose(fit.loss[:2], 0.0, atol=1e-6)
    np.testing.assert_allclose(fit.nonzero[2], 4 / 3)
    assert fit.loss[3] == pytest.approx(0.5, abs=0.02)  # every weight 0: the mean, half the unit variance
    assert fit.nonzero[3] == 0
    assert np.all(np.diff(fit.loss) >= -1e-9)  # more decay never predicts better here


def test_sparse_prediction_with_noise_matches_the_lasso_closed_form():
    # one standardised regressor: the Lasso weight is the soft-thresholded correlation
    rng = np.random.default_rng(2)
    x = rng.standard_normal((5000, 1))
    y = 0.5 * x + rng.standard_normal((5000, 1))
    decay = 0.1
    fit = matching.sparse_prediction(x, y, x, y, decays=(decay,))
    xs, ys = matching.standardized(x, x)[0], matching.standardized(y, y)[0]
    r = float((xs * ys).mean())
    assert fit.weights[0, 0, 0] == pytest.approx(r - decay, abs=1e-6)
    assert fit.loss[0] == pytest.approx(0.5 * np.mean((ys - (r - decay) * xs) ** 2), abs=1e-6)


def test_sparse_prediction_leaves_constant_units_out_and_names_bad_decays():
    x = _layer(300, 4, 1)
    y = np.concatenate([x[:, :1], np.ones((300, 1))], axis=1)
    fit = matching.sparse_prediction(x[:200], y[:200], x[200:], y[200:], decays=(0.0, 0.01))
    assert np.isnan(fit.losses[:, 1]).all() and np.isfinite(fit.loss).all()
    assert fit.loss[0] == pytest.approx(0.0, abs=1e-12)
    with pytest.raises(ValueError, match="decays"):
        matching.sparse_prediction(x, y, x, y, decays=(-1.0,))


def test_partner_losses_in_closed_form():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((4000, 2))
    y = np.stack([x[:, 1], 0.6 * x[:, 0] + 0.8 * rng.standard_normal(4000)], axis=1)
    losses = matching.partner_losses(x, y, x, y, partners=[1, 0])
    r = np.corrcoef(x[:, 0], y[:, 1])[0, 1]
    np.testing.assert_allclose(losses, [0.0, 0.5 * (1 - r**2)], atol=1e-9)  # in-sample: half of 1 - r²
    with pytest.raises(ValueError, match="partners"):
        matching.partner_losses(x, y, x, y, partners=[0])


def test_match_layer_of_a_copy_and_of_shuffled_images():
    x = _layer(3000, 6, 4)
    perm = np.random.default_rng(0).permutation(6)
    same = matching.match_layer(x[:2000], x[:2000, perm], x[2000:], x[2000:, perm])
    np.testing.assert_array_equal(perm[same.one_to_one], np.arange(6))
    assert same.mean_one_to_one == pytest.approx(1.0) and same.matched_loss == pytest.approx(0.0, abs=1e-12)
    y = matching.shuffled_images(x, seed=0)
    apart = matching.match_layer(x[:2000], y[:2000], x[2000:], y[2000:])
    assert apart.mean_one_to_one < 0.1 and apart.mean_semi < 0.1
    # about half the test variance, which on 1,000 test samples differs from the training variance by a few %
    assert apart.matched_loss == pytest.approx(0.5, abs=0.05)
    assert apart.prediction.loss.min() == pytest.approx(0.5, abs=0.05)
    assert apart.top_one_to_one(0.25) >= apart.mean_one_to_one


def test_match_networks_collects_layers_and_pairs():
    def net(seed):
        acts = {"a": _layer(200, 3, seed), "b": _layer(200, 4, seed + 10)}
        return Samples(acts, acts, {"a": 1, "b": 1})
    nets = [(net(s), net(s + 1)) for s in (0, 0, 5)]
    result = matching.match_networks(nets, nets, [(0, 1), (0, 2)], ["a", "b"], decays=(0.0, 0.1))
    assert result.values("mean_one_to_one").shape == (2, 2)
    assert result.values("prediction.loss").shape == (2, 2, 2)
    np.testing.assert_allclose(result.values("top_one_to_one", share=0.5)[1, 1], result.matches["b"][1].top_one_to_one(0.5))
    np.testing.assert_allclose(result.values("mean_one_to_one")[:, 0], 1.0)  # networks 0 and 1 are the same
    assert (result.values("mean_one_to_one")[:, 1] < 0.9).all()
    scaled = matching.match_networks(nets, nets, [(0, 1)], ["a", "b"], decays=(0.0, 0.1), decays_per_layer=True)
    np.testing.assert_allclose([m[0].prediction.decays for m in scaled.matches.values()], [[0.0, 0.3], [0.0, 0.4]])
    with pytest.raises(ValueError, match="conv"):
        matching.match_networks(nets, nets, [(0, 1)], ["a"], conv="mean")


def test_top_images_rank_most_active_first():
    acts = np.array([[0.0, 3.0], [2.0, 1.0], [2.0, 5.0], [1.0, 0.0]])
    assert matching.top_images(acts, [0, 1], 2).tolist() == [[1, 2], [2, 0]]
    with pytest.raises(ValueError, match="k must lie"):
        matching.top_images(acts, [0], 5)
