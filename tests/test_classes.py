"""Class-logit curves (notebook 05): similarity to one logit, class choice, crossing depths, curve distances, and
the pretrained path on a randomly initialised ResNet-50 (no weights are downloaded)."""
import math
import warnings

import numpy as np
import pytest
import torch

import analysis
from analysis.measures.grid import Grid
from analysis.networks.sources import PAPER_CLASSES, Pretrained
from analysis.studies.classes import (
    PAPER_CHOICE,
    ClassChoice,
    CurveStats,
    choose_classes,
    class_columns,
    class_similarity,
    confusion_matrix,
    crossing_depth,
    curve_distance,
    curve_stats,
    curves,
    easy_class_earlier,
    group_distances,
    imagenet_sample,
    pairs_track,
    pretrained_activations,
    pretrained_curves,
    run_curves,
)


def conv_network(n: int = 600, seed: int = 0):
    """A conv layer (n, 6, 5, 5) and logits (n, 3): logit 0 is a linear function of the channel means, logit 1 of
    one channel's value at one position (not of any mean), logit 2 independent noise."""
    rng = np.random.default_rng(seed)
    layer = rng.standard_normal((n, 6, 5, 5))
    means = layer.mean((2, 3))
    logits = np.stack([means @ rng.standard_normal(6), layer[:, 2, 1, 3], rng.standard_normal(n)], axis=1)
    return layer, logits


def test_dft_is_the_multiple_correlation_with_channel_means():
    layer, logits = conv_network()
    dense = layer.mean((2, 3)) @ np.random.default_rng(1).standard_normal((6, 4))
    grid = class_similarity({"conv": layer, "fc": dense}, logits, {"a": 0, "b": 1, "noise": 2})
    assert grid.rows == ("conv", "fc") and grid.cols == ("a", "b", "noise") and grid.measure == "dft_cca"
    for j in range(3):
        assert grid.values[0, j] == pytest.approx(analysis.dft_cca(layer, logits[:, [j]]).mean, abs=1e-9)
        expected = analysis.cca(layer.mean((2, 3)), logits[:, [j]]).mean
        assert grid.values[0, j] == pytest.approx(expected, abs=1e-9)
        assert grid.values[1, j] == pytest.approx(analysis.cca(dense, logits[:, [j]]).mean, abs=1e-9)
    assert grid.values[0, 0] == pytest.approx(1.0, abs=1e-9)  # a linear function of the means
    assert grid.values[0, 1] < 0.3 and grid.values[0, 2] < 0.3  # a single position; noise
    pooled = class_similarity({"conv": layer.mean((2, 3), keepdims=True)}, logits, {"a": 0, "b": 1})
    np.testing.assert_allclose(pooled.values, grid.values[:1, :2], atol=1e-9)  # channel means suffice


def test_positions_treat_each_image_position_as_a_sample():
    layer, logits = conv_network()
    grid = class_similarity({"conv": layer, "fc": logits[:, :2]}, logits, {"b": 1, "noise": 2}, conv="positions",
                            per_image=4, seed=3)
    samples = analysis.positions_as_samples(layer, 4, 3)
    expected = analysis.cca(samples, np.repeat(logits[:, [1]], 4, axis=0)).mean
    assert grid.values[0, 0] == pytest.approx(expected, abs=1e-9)
    assert grid.values[1, 0] == pytest.approx(1.0, abs=1e-9)  # dense layers as they are
    everywhere = class_similarity({"conv": layer}, logits, {"b": 1}, conv="positions", per_image=None)
    assert everywhere.values[0, 0] == pytest.approx(
        analysis.cca(analysis.positions_as_samples(layer), np.repeat(logits[:, [1]], 25, axis=0)).mean, abs=1e-9)
    with pytest.raises(ValueError, match="conv must be"):
        class_similarity({"conv": layer}, logits, {"b": 1}, conv="flatten")


def test_shuffled_logits_lose_the_relation_with_one_permutation_for_all_classes():
    layer, logits = conv_network()
    twin = np.concatenate([logits, logits[:, :1]], axis=1)
    grid = class_similarity({"conv": layer}, twin, {"a": 0, "twin": 3}, shuffle=7)
    assert grid.values[0, 0] < 0.3
    assert grid.values[0, 0] == pytest.approx(grid.values[0, 1], abs=1e-12)
    again = class_similarity({"conv": layer}, twin, {"a": 0}, shuffle=7)
    assert again.values[0, 0] == grid.values[0, 0]
    with pytest.raises(ValueError, match="logits must be"):
        class_similarity({"conv": layer}, logits[:, 0], {"a": 0})


def test_confusion_matrix_counts_true_by_predicted():
    logits = np.eye(3)[[0, 1, 1, 2, 0]]
    counts = confusion_matrix(logits, np.array([0, 1, 2, 2, 1]))
    np.testing.assert_array_equal(counts, [[1, 0, 0], [1, 1, 0], [0, 1, 1]])
    assert confusion_matrix(logits, np.array([0, 1, 2, 2, 1]), n_classes=4).shape == (4, 4)


def confusion(rates: dict[tuple[int, int], float], k: int = 7, n: int = 1000) -> np.ndarray:
    """Counts with the given off-diagonal rates (true, predicted) and a small base rate elsewhere."""
    p = np.full((k, k), 0.002)
    for (i, j), r in rates.items():
        p[i, j] = r
    p[3, :] = 0.0005  # class 3 is rarely confused with anything, either way
    p[:, 3] = 0.0005
    np.fill_diagonal(p, 0.0)
    np.fill_diagonal(p, 1 - p.sum(1))
    return np.rint(p * n).astype(int)


def test_choose_classes_by_the_stated_criterion():
    # pair (0, 1) most confused; (1, 2) second but shares class 1; (4, 5) confused with each other but more with 0;
    # (5, 6) a separate group
    counts = confusion({(0, 1): 0.10, (1, 0): 0.08, (1, 2): 0.09, (4, 5): 0.05, (4, 0): 0.06, (5, 6): 0.04,
                        (6, 5): 0.03})
    choice = choose_classes(counts)
    assert choice.easy == 3 and choice.pairs == ((0, 1), (5, 6))
    assert choice.classes == (3, 0, 1, 5, 6) and choice.confusable == (0, 1, 5, 6)
    assert choice.confusion[0, 1] == pytest.approx(0.09) and np.all(np.diag(choice.confusion) == 0)
    within = choose_classes(counts, groups=[(1, 2, 4), (3, 5, 6)])  # the easy class 3 is left out of a group
    assert within.easy == 3 and within.pairs == ((1, 2), (5, 6))
    with pytest.raises(ValueError, match="two disjoint groups"):
        choose_classes(counts, groups=[(0, 1, 2), (2, 5, 6)])
    with pytest.raises(ValueError, match="two disjoint groups"):
        choose_classes(counts, groups=[(0, 3), (4, 5, 6)])
    with pytest.raises(ValueError, match="confusion group"):
        choose_classes(confusion({(0, 1): 0.10, (4, 5): 0.03, (4, 0): 0.06, (5, 6): 0.01, (6, 1): 0.05}))
    with pytest.raises(ValueError, match="square"):
        choose_classes(np.ones((4, 4)))
    with pytest.raises(ValueError, match="no samples"):
        choose_classes(np.zeros((5, 5)))


def test_crossing_depth_interpolates_between_layers():
    assert crossing_depth([0.2, 0.6, 1.0], 0.8) == pytest.approx(1.5)
    assert crossing_depth([0.2, 0.6, 1.0], 0.6) == pytest.approx(1.0)
    assert crossing_depth([0.9, 0.5, 1.0], 0.8) == 0.0
    assert crossing_depth([0.5, 0.9, 0.7, 1.0], 0.8) == pytest.approx(0.75)  # the first crossing counts
    assert crossing_depth([0.1, 0.2], 0.8) == math.inf
    assert math.isnan(crossing_depth([0.1, np.nan], 0.8))
    with pytest.raises(ValueError, match="one value per layer"):
        crossing_depth([], 0.5)


def test_curve_and_group_distances():
    assert curve_distance([0.1, 0.5], [0.3, 0.2]) == pytest.approx(0.25)
    with pytest.raises(ValueError, match="same layers"):
        curve_distance([0.1, 0.5], [0.3])
    curves = {"a": [0.0, 0.0], "b": [0.0, 0.2], "c": [1.0, 1.0], "d": [1.0, 0.8]}
    within, across = group_distances(curves, [("a", "b"), ("c", "d")])
    assert within == pytest.approx(0.1) and across == pytest.approx((1.0 + 0.9 + 0.9 + 0.8) / 4)
    with pytest.raises(ValueError, match="two groups"):
        group_distances(curves, [("a", "b", "c", "d")])


def test_curve_stats_of_a_grid():
    layers = ("l0", "l1", "l2", "top")
    # columns: easy class 3, pairs (0, 1) and (5, 6)
    values = np.array([
        [0.85, 0.30, 0.35, 0.50, 0.55],
        [0.95, 0.50, 0.55, 0.70, 0.70],
        [0.99, 0.70, 0.75, 0.90, 0.95],
        [1.00, 1.00, 1.00, 1.00, 1.00],
    ])
    grid = Grid(values, layers, ("easy", "p", "q", "r", "s"), "dft_cca")
    choice = ClassChoice(3, ((0, 1), (5, 6)), np.zeros((7, 7)))
    stats = curve_stats(grid, choice, 0.8, layers[:3], names={3: "easy", 0: "p", 1: "q", 5: "r", 6: "s"})
    assert stats.crossing[3] == 0.0 and stats.crossing[0] == pytest.approx(2 + 0.1 / 0.3)
    assert stats.crossing[5] == pytest.approx(1 + 0.1 / 0.2) and stats.earliest
    expected = np.mean([stats.crossing[c] for c in (0, 1, 5, 6)])
    assert stats.depth_margin == pytest.approx(expected)
    assert stats.within == pytest.approx((0.05 + 0.1 / 3) / 2)
    assert stats.separation == pytest.approx(stats.across - stats.within) and stats.separation > 0.15
    np.testing.assert_array_equal(class_columns(grid, (5, 3), {3: "easy", 5: "r"}), values[:, [3, 0]])
    never = Grid(np.full((4, 5), 0.2), layers, grid.cols, "dft_cca")
    flat = curve_stats(never, choice, 0.8, layers[:3], names={3: "easy", 0: "p", 1: "q", 5: "r", 6: "s"})
    assert math.isnan(flat.depth_margin) and flat.earliest is None and flat.separation == 0.0
    late = Grid(values[:, [1, 0, 2, 3, 4]], layers, grid.cols, "dft_cca")  # the easy class swapped with p
    assert curve_stats(late, choice, 0.8, layers[:3], names={3: "easy", 0: "p", 1: "q", 5: "r", 6: "s"}).earliest is False
    tie = Grid(np.where(np.arange(5) == 1, 0.85, values), layers, grid.cols, "dft_cca")  # p at 0.85 from the first layer
    assert curve_stats(tie, choice, 0.8, layers[:3], names={3: "easy", 0: "p", 1: "q", 5: "r", 6: "s"}).earliest is None


def stats(lead: float, earliest: bool | None = True, within: float = 0.02, across: float = 0.2) -> CurveStats:
    return CurveStats({}, lead, earliest, within, across)


def test_easy_class_earlier_needs_every_network_and_the_margin_over_the_control():
    trained, untrained = [stats(1.0), stats(0.8), stats(1.2)], [stats(0.1), stats(-0.2), stats(0.4)]
    found = easy_class_earlier(trained, untrained, shuffled_max=0.2, threshold=0.8, margin=0.5)
    assert found.holds is True and found.ours == pytest.approx(1.0) and found.control == pytest.approx(0.1)
    assert found.margin == pytest.approx(0.9) and found.numbers["lead_trained"] == [1.0, 0.8, 1.2]
    assert easy_class_earlier(trained, untrained, 0.2, 0.8, margin=1.0).holds is False
    assert easy_class_earlier(trained, untrained, shuffled_max=0.85, threshold=0.8, margin=0.5).holds is False
    late = [stats(1.0), stats(0.8, earliest=False), stats(1.2)]
    assert easy_class_earlier(late, untrained, 0.2, 0.8, 0.5).holds is False
    undefined = easy_class_earlier([stats(math.nan), *trained[1:]], untrained, 0.2, 0.8, 0.5)
    assert undefined.holds is None and math.isnan(undefined.ours)
    tied = [stats(1.0), stats(0.8, earliest=None), stats(1.2)]
    found = easy_class_earlier(tied, untrained, 0.2, 0.8, 0.5)
    assert found.holds is None and found.numbers["easy_first"] == [True, "tie", True]
    assert easy_class_earlier(tied, untrained, 0.2, 0.8, margin=1.0).holds is False  # a defined failure decides


def test_pairs_track_beats_the_largest_control():
    trained = [stats(0, within=0.02, across=0.2), stats(0, within=0.03, across=0.15)]
    controls = {"untrained": [stats(0, within=0.05, across=0.06)] * 2, "shuffled": [stats(0, within=0.01, across=0.1)] * 2}
    found = pairs_track(trained, controls, margin=0.05)
    assert found.control == pytest.approx(0.09) and found.ours == pytest.approx(0.15) and found.holds is True
    assert found.numbers["separation_shuffled"] == pytest.approx([0.09, 0.09])
    assert pairs_track(trained, controls, margin=0.07).holds is False
    assert pairs_track([*trained, stats(0, within=0.2, across=0.1)], controls, 0.0).holds is False
    assert pairs_track([stats(0, within=math.nan)], controls, 0.0).holds is None


def test_curves_and_run_curves():
    layer, logits = conv_network()
    grids = curves({"conv": layer}, logits, {"a": 0, "b": 1}, per_image=4, seed=2)
    assert set(grids) == {"dft", "dft shuffled", "positions", "positions shuffled"}
    np.testing.assert_allclose(grids["dft"].values, class_similarity({"conv": layer}, logits, {"a": 0, "b": 1}).values)
    assert grids["dft shuffled"].values[0, 0] < 0.3 and grids["dft"].values[0, 0] > 0.99
    np.testing.assert_allclose(grids["positions shuffled"].values, class_similarity(
        {"conv": layer}, logits, {"a": 0, "b": 1}, conv="positions", per_image=4, seed=2, shuffle=2).values)
    pooled = curves({"conv": layer}, logits, {"a": 0}, positions={"conv": layer[:, :, :2, :2]}, per_image=None)
    expected = class_similarity({"conv": layer[:, :, :2, :2]}, logits, {"a": 0}, conv="positions", per_image=None)
    np.testing.assert_allclose(pooled["positions"].values, expected.values)

    class FakeRun:
        def activations(self, layers, fraction):
            self.asked = (tuple(layers), fraction)
            return {"conv": layer, "logits": logits}

    run = FakeRun()
    found = run_curves(run, 0.0, ["conv"], {"a": 0, "b": 1}, per_image=4, seed=2)
    assert run.asked == (("conv", "logits"), 0.0)
    for key in grids:
        np.testing.assert_allclose(found[key].values, grids[key].values)


def test_paper_choice_is_the_papers_five_classes():
    assert set(PAPER_CHOICE.classes) == set(PAPER_CLASSES.values()) and PAPER_CHOICE.easy == PAPER_CLASSES["fire engine"]


def test_imagenet_sample_needs_every_class_folder(tmp_path):
    (tmp_path / "imagenet" / "val" / "n03345487").mkdir(parents=True)
    with pytest.raises(FileNotFoundError) as caught:
        imagenet_sample(tmp_path)
    message = str(caught.value)
    assert "holds 1 class folders, expected 1000" in message
    assert f"{tmp_path}/imagenet/val/<wnid>/*.JPEG" in message and "ILSVRC2012_img_val.tar" in message
    with pytest.raises(FileNotFoundError, match="holds 0 class folders"):
        imagenet_sample(tmp_path / "elsewhere")


def test_pretrained_path_on_a_random_resnet50():
    source = Pretrained("resnet50", weights=None, device="cpu", seed=0)
    layers = [name for name in source.layers if name != "avgpool"]
    images = torch.randn(72, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    pooled = pretrained_activations(source, layers, images, pool=1, batch_size=72, progress=False)
    assert list(pooled) == layers and pooled["maxpool"].shape == (72, 64, 1, 1)
    assert pooled["layer4.2"].shape == (72, 2048, 1, 1) and pooled["fc"].shape == (72, 1000)
    full = pretrained_activations(source, ["maxpool", "fc"], images, pool=None, progress=False)
    assert full["maxpool"].shape == (72, 64, 8, 8)
    np.testing.assert_allclose(full["fc"], pooled["fc"], rtol=1e-5, atol=1e-5)
    some = ["maxpool", "layer1.0", "layer4.2", "fc"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # 72 images against 256 or 2048 channels saturate
        grids = pretrained_curves(source, images, some[:-1], PAPER_CLASSES, positions_pool=4, per_image=None)
        grid = grids["dft"]
        for c, index in PAPER_CLASSES.items():  # DFT-CCA of the full maps against the logit: the same numbers
            assert analysis.dft_cca(full["maxpool"], full["fc"][:, [index]]).mean == pytest.approx(
                grid["maxpool", c], abs=1e-4)
    assert grid.rows == tuple(some[:-1]) and grid.cols == tuple(PAPER_CLASSES) and grid.values.shape == (3, 5)
    assert all(g.values.shape == (3, 5) and np.all((g.values >= 0) & (g.values <= 1 + 1e-9)) for g in grids.values())
    assert grid.values[0].max() < 0.99  # 64 channel means of 72 images: not saturated
    np.testing.assert_allclose(grid.values[-1], 1.0, atol=1e-6)  # the last block's means give the logits
    maps = torch.nn.functional.adaptive_avg_pool2d(torch.from_numpy(full["maxpool"]), 4).numpy()
    positions = class_similarity({"maxpool": maps}, pooled["fc"], PAPER_CLASSES, conv="positions", per_image=None)
    np.testing.assert_allclose(grids["positions"].values[0], positions.values[0], atol=1e-6)
