"""Learning dynamics: grids against the final checkpoint, diagonals, conv layers as samples of positions,
convergence against controls and its order, on closed-form cases."""
import math

import numpy as np
import pytest

from analysis.measures.cca import svcca
from analysis.measures.conv import positions_as_samples
from analysis.measures.grid import similarity_grid
from analysis.studies.dynamics import (
    SeedCurves,
    bottom_up,
    convergence_order,
    depth_correlation,
    every_seed,
    layer_views,
    learning_grids,
    lower_minus_upper,
    order_chance,
    pool_to,
    progress,
    record_views,
    resized_grid,
    seed_curves,
    self_similarity,
    similarity_to,
    view,
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
    with pytest.raises(ValueError, match="layer names"):
        convergence_order(np.ones((2, 2)), (0.0, 1.0), 0.9, layers=["a"])


def test_convergence_order_a_layer_with_an_undefined_curve_leaves_the_order_undefined():
    c = convergence_order(np.array([[np.nan, 0.2, 0.1], [1.0, 1.0, 1.0]]), (0.0, 1.0), 0.9)
    assert math.isnan(c.first[0]) and c.first[1] == 1.0 and math.isnan(c.spearman)


def test_depth_correlation_and_lower_minus_upper():
    assert depth_correlation([3, 2, 1]) == pytest.approx(-1.0)
    assert depth_correlation([1, 5, 2, 9]) == pytest.approx(0.8)
    assert math.isnan(depth_correlation([2, 2])) and math.isnan(depth_correlation([1, np.nan, 3]))
    assert lower_minus_upper([0.9, 0.8, 0.0, 0.5, 0.3]) == pytest.approx(0.85 - 0.4)
    assert lower_minus_upper([0.2, 0.6]) == pytest.approx(-0.4)
    with pytest.raises(ValueError):
        lower_minus_upper([1.0])


# --- conv layers in the paper's convention, controls, convergence against controls ------------------------------

def conv_net_views(seed: int = 0, n: int = 300, per_image: int = 3, noise: float = 0.0):
    """Views of three layers: conv (n, 5, 4, 4), conv (n, 6, 2, 2) and dense (n, 7), resized to every size."""
    rng = np.random.default_rng(seed)
    layers = {"c1": rng.standard_normal((n, 5, 4, 4)), "c2": rng.standard_normal((n, 6, 2, 2)),
              "d": rng.standard_normal((n, 7))}
    layers = {k: v + noise * rng.standard_normal(v.shape) for k, v in layers.items()}
    return layers, {k: layer_views(v, (4, 2, 1), per_image) for k, v in layers.items()}


def test_pool_to_averages_equal_windows():
    a = np.arange(2 * 1 * 4 * 4, dtype=float).reshape(2, 1, 4, 4)
    pooled = pool_to(a, 2)
    assert pooled.shape == (2, 1, 2, 2)
    assert pooled[0, 0, 0, 0] == pytest.approx(np.mean([0, 1, 4, 5]))
    np.testing.assert_allclose(pool_to(a, 1)[:, :, 0, 0], a.mean(axis=(2, 3)))
    with pytest.raises(ValueError, match="equal windows"):
        pool_to(a, 3)


def test_layer_views_positions_pooled_sizes_and_channel_means():
    layers, views = conv_net_views()
    c1 = layers["c1"]
    assert sorted(views["c1"]) == [1, 2, 4] and sorted(views["c2"]) == [1, 2] and list(views["d"]) == [1]
    np.testing.assert_array_equal(views["c1"][4], positions_as_samples(c1, 3, 0))
    np.testing.assert_array_equal(views["c1"][2], positions_as_samples(pool_to(c1, 2), 3, 0))
    np.testing.assert_allclose(views["c1"][1], c1.mean(axis=(2, 3)))
    assert views["c1"][4].shape == (300 * 3, 5) and views["c2"][2].shape == (300 * 3, 6)
    np.testing.assert_array_equal(views["d"][1], layers["d"])
    # the same (image, position) samples for every layer of one shape: a layer and twice it stay paired
    np.testing.assert_allclose(layer_views(2 * c1, (), 3)[4], 2 * views["c1"][4])
    assert sorted(layer_views(c1)) == [1, 4]  # by default its own size and the channel means only
    with pytest.raises(ValueError, match="square conv"):
        layer_views(np.zeros((3, 2, 4, 2)))


def test_view_picks_positions_or_channel_means():
    _, views = conv_net_views()
    np.testing.assert_array_equal(view(views["c1"]), views["c1"][4])
    np.testing.assert_array_equal(view(views["c1"], "means"), views["c1"][1])
    np.testing.assert_array_equal(view(views["d"], "positions"), view(views["d"], "means"))
    with pytest.raises(ValueError, match="reduction"):
        view(views["c1"], "flatten")


def test_similarity_to_compares_each_layer_with_the_same_layer_of_the_target():
    _, target = conv_net_views(0)
    _, other = conv_net_views(1)
    _, near = conv_net_views(0, noise=0.3)
    names = ["c1", "c2", "d"]
    values = similarity_to(target, [target, near, other], names)
    assert values.shape == (3, 3)
    np.testing.assert_allclose(values[0], 1.0, atol=1e-6)
    for j, name in enumerate(names):
        assert values[1, j] == pytest.approx(svcca(view(near[name]), view(target[name])).mean, abs=1e-6)
    assert np.all(values[1] > values[2])  # a noisy copy is closer than independent layers
    means = similarity_to(target, [near], names, "means", keep=3)
    assert means[0, 0] == pytest.approx(svcca(near["c1"][1], target["c1"][1], keep=3).mean, abs=1e-6)
    short = {k: {s: a[:-1] for s, a in v.items()} for k, v in near.items()}
    with pytest.raises(ValueError, match="different samples"):
        similarity_to(target, [short], names)


def test_resized_grid_compares_each_cell_at_the_smaller_size():
    _, a = conv_net_views(0)
    _, b = conv_net_views(0, noise=0.5)
    grid = resized_grid(a, b)
    assert grid.rows == grid.cols == ("c1", "c2", "d")
    np.testing.assert_allclose(np.diag(grid.values), similarity_to(b, [a], list(a))[0], atol=1e-9)
    assert grid["c1", "c2"] == pytest.approx(svcca(a["c1"][2], b["c2"][2]).mean, abs=1e-6)
    assert grid["d", "c1"] == pytest.approx(svcca(a["d"][1], b["c1"][1]).mean, abs=1e-6)  # channel means
    with pytest.raises(ValueError, match="resized_at"):
        resized_grid({"c1": {4: a["c1"][4], 1: a["c1"][1]}}, {"c2": b["c2"]})


def test_record_views_records_each_checkpoint_once_and_keeps_only_views():
    import torch

    from analysis.networks.hooks import record
    from analysis.networks.models import build_model

    class FakeRun:
        class config:
            checkpoints = (0.0, 0.5, 1.0)

        class _Split:
            inputs = torch.randn(40, 1, 8, 8, generator=torch.Generator().manual_seed(0))

        def data(self, split):
            return self._Split

        def model(self, fraction):
            torch.manual_seed(int(10 * fraction))
            return build_model("convnet", (1, 8, 8), 3, width=0.1).eval()

    run, names = FakeRun(), ["conv1", "conv3", "fc1"]
    views = record_views(run, names, images=30, per_image=5, resized_at=(1.0,))
    assert list(views) == [0.0, 0.5, 1.0]
    assert sorted(views[0.5]["conv1"]) == [1, 8] and sorted(views[1.0]["conv1"]) == [1, 4, 8]
    acts = record(run.model(0.5), [run._Split.inputs[:30]], names)
    # the same activations up to float32 rounding (recording runs the convolutions channels-last)
    np.testing.assert_allclose(views[0.5]["conv3"][4], positions_as_samples(acts["conv3"], 5, 0), atol=1e-6)
    np.testing.assert_allclose(views[0.5]["fc1"][1], acts["fc1"], atol=1e-6)
    with pytest.raises(ValueError, match="no layers"):
        record_views(run, [])


def test_progress_measures_the_way_from_the_control_to_one():
    np.testing.assert_allclose(progress([0.5, 1.0, 0.2], [0.5, 0.5, 0.6]), [0.0, 1.0, -1.0])
    curves = np.array([[0.8, 0.95], [0.9, 1.0]])  # (fractions, layers), control per layer broadcast
    np.testing.assert_allclose(progress(curves, [0.6, 0.9]), [[0.5, 0.5], [0.75, 1.0]])
    assert math.isnan(progress([0.9], [1.0])[0])


def test_every_seed_holds_fails_or_is_undetermined():
    assert every_seed([0.6, 0.9, 0.5], 0.5) is True
    assert every_seed([0.6, 0.4, np.nan], 0.5) is False
    assert every_seed([0.6, np.nan, 0.9], 0.5) is None


def test_order_chance_is_the_permutation_probability():
    assert order_chance([0.1, 0.2, 0.3, 0.4]) == pytest.approx(1 / 24)
    assert order_chance([0.4, 0.3, 0.2, 0.1]) == pytest.approx(1.0)
    # tied values: 3 of the 6 orders of (0, 1, 1) give a correlation of at least that of the order as given
    assert order_chance([0.2, 0.5, 0.5]) == pytest.approx(2 / 6)
    assert math.isnan(order_chance([0.5, 0.5, 0.5])) and math.isnan(order_chance([0.1, np.nan]))
    # beyond 8 layers, estimated from random orders: a strict order of 10 layers is 1 in 10! by chance
    assert order_chance(np.arange(10.0), draws=2000) <= 0.002
    assert order_chance(np.arange(10.0)[::-1], draws=2000) == 1.0
    mixed = [0.3, 0.1, 0.2, 0.5, 0.4, 0.7, 0.6, 0.9, 0.8, 0.0]
    assert order_chance(mixed, draws=500) == order_chance(mixed, draws=500)  # seeded: the same estimate


def bottom_up_curves() -> SeedCurves:
    """Two seeds, three layers, fractions (0, .5, 1): layer k's similarity to its final self rises later the
    deeper it is; controls (one other seed each): untrained 0.5, trained 0.8."""
    seed = np.array([[0.96, 0.6, 0.5], [0.99, 0.97, 0.7], [1.0, 1.0, 1.0]])
    return SeedCurves(("a", "b", "c"), (0.0, 0.5, 1.0), "positions", 0.99, np.stack([seed, seed]),
                      np.full((2, 1, 3), 0.5), np.full((2, 1, 3), 0.8))


def test_seed_curves_compare_every_checkpoint_and_the_other_seeds_with_each_final_network():
    views = [{f: conv_net_views(10 * s, noise=1 - f)[1] for f in (0.0, 0.5, 1.0)} for s in range(3)]
    c = seed_curves(views, ["c1", "d"])
    assert c.curves.shape == (3, 3, 2) and c.untrained.shape == c.trained.shape == (3, 2, 2)
    np.testing.assert_allclose(c.curves[:, -1], 1.0, atol=1e-6)
    assert c.curves[1, 1, 0] == pytest.approx(similarity_to(views[1][1.0], [views[1][0.5]], ["c1"])[0, 0])
    # seed 2's controls: seeds 0 and 1, untrained (checkpoint 0) and trained (checkpoint 1)
    assert c.untrained[2, 1, 1] == pytest.approx(similarity_to(views[2][1.0], [views[1][0.0]], ["d"])[0, 0])
    assert c.trained[2, 0, 0] == pytest.approx(similarity_to(views[2][1.0], [views[0][1.0]], ["c1"])[0, 0])
    np.testing.assert_allclose(c.untrained_level, c.untrained.mean(axis=1))
    sub = c.select(["d"])
    np.testing.assert_array_equal(sub.curves[..., 0], c.curves[..., 1])
    assert sub.layers == ("d",) and sub.untrained.shape == (3, 2, 1)
    with pytest.raises(ValueError, match="two seeds"):
        seed_curves(views[:1], ["d"])
    with pytest.raises(ValueError, match="untrained must be"):
        SeedCurves(c.layers, c.fractions, "positions", 0.99, c.curves, c.untrained[:, :1], c.trained)


def test_bottom_up_orders_layers_by_progress_from_the_untrained_control():
    curves = bottom_up_curves()
    b = bottom_up(curves, threshold=0.9, at=0.5)
    np.testing.assert_allclose(b.progress[0, 1], [0.98, 0.94, 0.4])
    np.testing.assert_array_equal(b.first, [[0.0, 0.5, 1.0]] * 2)
    np.testing.assert_allclose(b.spearman, 1.0)
    np.testing.assert_allclose(b.chance, 1 / 6)
    np.testing.assert_allclose(b.gap, 0.98 - 0.4)  # lower half (a) minus upper half (c) at 50%
    # from the trained-other-seed level (0.8) layer b at 50% has covered 0.85 of the way: not yet at 0.9
    t = bottom_up(curves, rule="trained", threshold=0.9, at=0.5)
    np.testing.assert_allclose(t.progress[0, 1], [0.95, 0.85, -0.5])
    np.testing.assert_array_equal(t.first[0], [0.5, 1.0, 1.0])  # a: 0.8 of the way at 0%, 0.95 at 50%


def test_bottom_up_is_undefined_when_a_control_leaves_no_way_to_cover():
    c = bottom_up_curves()
    c.untrained[1, 0, 0] = 1.0
    b = bottom_up(c, at=0.5)
    assert b.spearman[0] == pytest.approx(1.0) and math.isnan(b.spearman[1]) and math.isnan(b.first[1, 0])
    assert every_seed(b.spearman, 0.5) is None and math.isnan(b.chance[1])
    with pytest.raises(ValueError, match="no checkpoint"):
        bottom_up(c, at=0.35)
    with pytest.raises(ValueError, match="rule"):
        bottom_up(c, rule="random", at=0.5)
