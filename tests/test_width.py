"""Width study helpers: distances within widths, trends with width, and the untrained control."""
import numpy as np
import pytest
from scipy.stats import spearmanr

from analysis.measures import compare_group
from analysis.studies.width import rank_correlation, same_width_distances, width_effect, width_trend


def test_same_width_distances_are_one_minus_the_group_similarity():
    rng = np.random.default_rng(0)
    base = rng.standard_normal((300, 6))
    nets = {w: [{"a": base @ rng.standard_normal((6, 6)) + w * rng.standard_normal((300, 6)),
                 "b": rng.standard_normal((300, 3))} for _ in range(3)] for w in (2.0, 0.5, 1.0)}
    d = same_width_distances(nets)
    assert d.widths == (0.5, 1.0, 2.0) and d.layers == ("a", "b") and d.pairs == ((0, 1), (0, 2), (1, 2))
    assert d.values.shape == (3, 2, 3)
    np.testing.assert_allclose(d.values[1], 1 - compare_group(nets[1.0]).values, atol=1e-12)
    np.testing.assert_allclose(d["a"], d.values[:, 0])
    # more independent noise, larger distance: the layer built from a shared signal orders by its noise
    assert (d["a"][0] < d["a"][1]).all() and (d["a"][1] < d["a"][2]).all()
    same = same_width_distances({1.0: [{"a": base}, {"a": base * 3 + 1}]})
    np.testing.assert_allclose(same.values, 0.0, atol=1e-9)
    with pytest.raises(ValueError, match="same number of networks"):
        same_width_distances({1.0: nets[1.0], 2.0: nets[2.0][:2]})


def test_rank_correlation_is_spearman_and_undefined_for_constants():
    assert rank_correlation([1, 2, 3, 4], [10, 20, 25, 100]) == pytest.approx(1.0)
    assert rank_correlation([1, 2, 3], [3, 2, 1]) == pytest.approx(-1.0)
    assert rank_correlation([1, 1, 2, 2], [1, 2, 3, 4]) == pytest.approx(np.corrcoef([1.5, 1.5, 3.5, 3.5], [1, 2, 3, 4])[0, 1])
    assert np.isnan(rank_correlation([1, 2, 3], [5, 5, 5]))
    with pytest.raises(ValueError, match="same length"):
        rank_correlation([1, 2], [1, 2, 3])


def test_width_trend_of_a_strict_fall_and_of_overlapping_pairs():
    widths = [0.25, 0.5, 1.0]
    strict = np.array([[0.9, 0.8, 0.85], [0.6, 0.5, 0.55], [0.3, 0.2, 0.25]])
    t = width_trend(widths, strict)
    assert t.rho == pytest.approx(spearmanr(np.repeat(widths, 3), strict.ravel()).statistic)
    assert t.rho < -0.9
    assert len(t.choices) == 3**3 and np.all(t.choices == pytest.approx(-1.0))
    assert t.spread == (pytest.approx(-1.0), pytest.approx(-1.0))
    assert t.fall == pytest.approx(0.6)
    # pairs that overlap across widths: some choices of one pair per width rise
    mixed = np.array([[0.5, 0.9], [0.6, 0.4], [0.3, 0.7]])
    m = width_trend(widths, mixed)
    assert m.spread[0] == pytest.approx(-1.0) and m.spread[1] == pytest.approx(1.0)
    assert m.fall == pytest.approx(0.7 - 0.5)
    drawn = width_trend(widths, mixed, max_choices=5)
    assert len(drawn.choices) == 5
    assert np.isnan(width_trend(widths, np.ones((3, 2))).rho)
    with pytest.raises(ValueError, match="widths, pairs"):
        width_trend(widths, np.ones((2, 3)))


def test_width_effect_beyond_the_control_or_explained_by_it():
    widths = [0.25, 0.5, 1.0, 2.0]
    jitter = np.array([[0.0, 0.01, -0.01]] * 4)
    untrained = np.array([[0.6], [0.55], [0.5], [0.45]]) + jitter
    steep = np.array([[0.5], [0.35], [0.2], [0.05]]) + jitter[:, ::-1]
    e = width_effect(widths, steep, untrained)
    assert e.trained.rho < -0.8 and e.excess.rho < -0.8
    assert e.excess.fall == pytest.approx(e.trained.fall - e.untrained.fall)
    assert e.holds(0.5) is True
    # the same fall as the control's: it falls with width, but not beyond what untrained networks show
    noise = np.array([[0.002, -0.002, 0.0], [-0.002, 0.002, 0.001], [0.001, 0.0, -0.001], [0.0, -0.001, 0.002]])
    p = width_effect(widths, untrained - 0.2 + noise, untrained)
    assert p.trained.rho < -0.8 and abs(p.excess.rho) < 0.5
    assert p.holds(0.5) is False
    assert width_effect(widths, untrained - 0.25, untrained).holds(0.5) is None  # a constant excess: undefined
    # a proportional fall passes in absolute terms only when it is steeper; relative=True compares ratios
    half = untrained * 0.5
    assert width_effect(widths, half, untrained).holds(0.5) is False  # falls less than the control in absolute terms
    assert np.isnan(width_effect(widths, half, untrained, relative=True).excess.rho)  # every ratio is 0.5: undefined
    assert width_effect(widths, half, untrained, relative=True).holds(0.5) is None
    with pytest.raises(ValueError, match="pair up"):
        width_effect(widths, steep, untrained[:, :2])


def test_width_effect_reads_out_each_case():
    widths = [0.25, 0.5, 1.0, 2.0]
    untrained = np.array([[0.6, 0.61, 0.59], [0.55, 0.56, 0.54], [0.5, 0.51, 0.49], [0.45, 0.46, 0.44]])
    steep = untrained - np.array([[0.0], [0.1], [0.2], [0.3]])
    assert "more than the untrained" in width_effect(widths, steep, untrained).reading(0.5)
    assert "not beyond the untrained" in width_effect(widths, 0.5 * untrained, untrained).reading(0.5)  # falls half as much
    assert "rises with width" in width_effect(widths, untrained[::-1], untrained).reading(0.5)
    flat = np.array([[0.3, 0.5, 0.4], [0.5, 0.3, 0.4], [0.4, 0.4, 0.31], [0.35, 0.45, 0.4]])
    assert "no clear trend" in width_effect(widths, flat, untrained).reading(0.5)
    assert "undetermined" in width_effect(widths, np.ones((4, 3)), untrained).reading(0.5)
