"""Separation of one group's pair distances from another's, beyond their spread over pairs."""
import numpy as np
import pytest

from analysis.studies.groups import separation


def test_separation_of_known_values():
    a = np.array([[1.0, 3.0], [0.0, 0.0], [5.0, 5.0]])  # means 2, 0, 5; stds 1, 0, 0
    b = np.array([[0.0, 0.0, 0.0], [1.0, 1.0, 1.0], [4.0, 6.0, 5.0]])  # means 0, 1, 5; stds 0, 0, sqrt(2/3)
    s = separation(a, b)
    np.testing.assert_allclose(s.gap, [2.0, -1.0, 0.0])
    np.testing.assert_allclose(s.spread, [1.0, 0.0, np.sqrt(2 / 3)])
    np.testing.assert_allclose(s.margin, s.gap - s.spread)
    assert s.above.tolist() == [True, False, False]
    assert s.within.tolist() == [False, False, True]  # layer 1: b above a by 1 with no spread at all
    assert separation(b, a).above.tolist() == [False, True, False]


def test_separation_is_the_band_overlap():
    rng = np.random.default_rng(0)
    for _ in range(50):
        a, b = rng.normal(rng.normal(), 1, (1, 3)), rng.normal(0, rng.uniform(0.1, 2), (1, 6))
        s = separation(a, b)
        low_a, high_b = a.mean() - a.std(), b.mean() + b.std()
        assert bool(s.above[0]) == (low_a > high_b)


def test_separation_takes_one_layer_and_checks_shapes():
    assert separation([0.5, 0.7], [0.1]).gap.shape == (1,)
    with pytest.raises(ValueError, match="same number of layers"):
        separation(np.zeros((2, 3)), np.zeros((3, 3)))
    with pytest.raises(ValueError, match="at least one pair"):
        separation(np.zeros((2, 0)), np.zeros((2, 3)))
