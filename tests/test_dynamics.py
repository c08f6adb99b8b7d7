"""Learning dynamics: grids against the final checkpoint, diagonals, convergence order, on closed-form cases."""
import math

import numpy as np
import pytest

from analysis.measures.grid import similarity_grid
from analysis.studies.dynamics import (
    convergence_order,
    depth_correlation,
    learning_grids,
    lower_minus_upper,
    self_similarity,
)

FRACTIONS = (0.0, 0.5, 1.0)


def mixing_network(n: int = 400, width: int = 6, seed: int = 0):
    """Activations at fraction f: layer k is its final self weighted f**k plus fixed noise weighted 1 - f**k,
    so layer 0 is final from the start and higher layers arrive later (bottom-up by construction)."""
    rng = np.random.default_rng(seed)
    final = {f"layer{k}": rng.standard_normal((n, width)) for k in range(3)}
    noise = {name: rng.standard_normal((n, width)) for name in final}

    def acts(f: float) -> dict[str, np.ndarray]:
        out = {}
        for k, name in enumerate(final):
            w = f**k
            out[name] = w * final[name] + (1 - w) * noise[name]
        return out

    return acts, final, noise


def test_learning_grids_compare_each_checkpoint_with_the_final_one():
    acts, final, noise = mixing_network()
    grids = learning_grids(acts, list(final), FRACTIONS, "cca")
    assert list(grids) == list(FRACTIONS)
    for f, grid in grids.items():
        assert grid.rows == grid.cols == tuple(final)
        np.testing.assert_allclose(np.asarray(grid), np.asarray(similarity_grid(acts(f), acts(1.0), "cca")), atol=1e-12)
    np.testing.assert_allclose(np.diag(np.asarray(grids[1.0])), 1.0, atol=1e-9)
    # layer0 never changes (weight 0**0 = 1); the others start as independent noise
    assert grids[0.0]["layer0", "layer0"] == pytest.approx(1.0, abs=1e-9)
    assert grids[0.0]["layer2", "layer2"] < 0.2


def test_learning_grids_take_a_run_and_pass_options_on():
    acts, final, _ = mixing_network()

    class FakeRun:
        class config:
            checkpoints = FRACTIONS

        def __init__(self):
            self.calls = []

        def activations(self, layers, split, fraction, pool, progress):
            self.calls.append((tuple(layers), split, fraction, pool))
            return acts(fraction)

    run = FakeRun()
    grids = learning_grids(run, ["layer2", "layer0"], measure="svcca", keep=2, pool=3, split="train")
    assert list(grids) == list(FRACTIONS) and grids[0.5].rows == ("layer2", "layer0")
    assert {c[1:] for c in run.calls} >= {("train", 0.0, 3), ("train", 1.0, 3)}
    expected = similarity_grid({k: acts(0.5)[k] for k in ("layer2", "layer0")},
                               {k: acts(1.0)[k] for k in ("layer2", "layer0")}, "svcca", keep=2)
    np.testing.assert_allclose(np.asarray(grids[0.5]), np.asarray(expected), atol=1e-12)


def test_self_similarity_is_the_diagonal_and_orders_bottom_up():
    acts, final, _ = mixing_network()
    curves = self_similarity(learning_grids(acts, list(final), FRACTIONS, "cca"))
    assert curves.shape == (3, 3)
    np.testing.assert_allclose(curves[:, 0], 1.0, atol=1e-9)  # layer0 is final from the start
    assert np.all(np.diff(curves[:, 1:], axis=0) > 0)  # the others approach their final selves
    assert curves[1, 0] > curves[1, 1] > curves[1, 2]  # at half training: lower layers closer to final


def test_learning_grids_reject_missing_input():
    acts, final, _ = mixing_network()
    with pytest.raises(ValueError, match="no layers"):
        learning_grids(acts, [], FRACTIONS)
    with pytest.raises(ValueError, match="fractions are needed"):
        learning_grids(acts, list(final))


def test_self_similarity_needs_matching_rows_and_columns():
    acts, final, _ = mixing_network()
    grid = similarity_grid(acts(0.5), {"layer0": acts(1.0)["layer0"]}, "cca")
    with pytest.raises(ValueError, match="no diagonal"):
        self_similarity({0.5: grid})


def test_convergence_order_first_crossing_and_spearman():
    curves = np.array([
        [0.95, 0.5, 0.2, 0.1],
        [0.99, 0.92, 0.6, 0.3],
        [1.0, 0.97, 0.91, 0.4],
        [1.0, 1.0, 1.0, 1.0],
    ])
    c = convergence_order(curves, (0.0, 0.35, 0.75, 1.0), threshold=0.9, layers=["a", "b", "c", "d"])
    np.testing.assert_array_equal(c.first, [0.0, 0.35, 0.75, 1.0])
    assert c.spearman == pytest.approx(1.0)
    assert c.layers == ("a", "b", "c", "d") and c.threshold == 0.9
    # the same curves read top-down
    c = convergence_order(curves[:, ::-1], (0.0, 0.35, 0.75, 1.0), threshold=0.9)
    assert c.spearman == pytest.approx(-1.0)


def test_convergence_order_a_layer_that_dips_has_not_converged():
    curves = np.array([[0.96, 0.5], [0.90, 0.96], [0.97, 0.97], [1.0, 1.0]])
    fractions = (0.0, 0.35, 0.75, 1.0)
    np.testing.assert_array_equal(convergence_order(curves, fractions, 0.95).first, [0.75, 0.35])
    assert convergence_order(curves, fractions, 0.95).spearman == pytest.approx(-1.0)
    crossing = convergence_order(curves, fractions, 0.95, stay=False)
    np.testing.assert_array_equal(crossing.first, [0.0, 0.35])
    assert crossing.spearman == pytest.approx(1.0) and not crossing.stay


def test_convergence_order_ties_and_never_reached():
    curves = np.array([[0.9, 0.2, 0.1], [1.0, 0.8, 0.3]])
    c = convergence_order(curves, (0.5, 1.0), threshold=0.85)
    np.testing.assert_array_equal(c.first, [0.5, math.inf, math.inf])
    # ranks 1, 2.5, 2.5 against depth 0, 1, 2: Pearson of ranks = sqrt(3)/2
    assert c.spearman == pytest.approx(np.sqrt(3) / 2)
    same = convergence_order(np.ones((2, 3)), (0.5, 1.0), threshold=0.9)
    assert math.isnan(same.spearman)


def test_convergence_order_rejects_bad_input():
    with pytest.raises(ValueError, match="fractions, layers"):
        convergence_order(np.ones((3, 2)), (0.0, 1.0), 0.9)
    with pytest.raises(ValueError, match="training order"):
        convergence_order(np.ones((2, 2)), (1.0, 0.0), 0.9)
    with pytest.raises(ValueError, match="NaN"):
        convergence_order(np.array([[np.nan, 1.0], [1.0, 1.0]]), (0.0, 1.0), 0.9)
    with pytest.raises(ValueError, match="layer names"):
        convergence_order(np.ones((2, 2)), (0.0, 1.0), 0.9, layers=["a"])


def test_depth_correlation_and_lower_minus_upper():
    assert depth_correlation([3, 2, 1]) == pytest.approx(-1.0)
    assert depth_correlation([1, 5, 2, 9]) == pytest.approx(0.8)
    assert math.isnan(depth_correlation([2, 2]))
    assert lower_minus_upper([0.9, 0.8, 0.0, 0.5, 0.3]) == pytest.approx(0.85 - 0.4)
    assert lower_minus_upper([0.2, 0.6]) == pytest.approx(-0.4)
    with pytest.raises(ValueError):
        lower_minus_upper([1.0])
