"""Layer grids: equal to the pairwise measures, one decomposition per layer, labels, conv layers, bad input."""
import dataclasses

import numpy as np
import pytest
import torch
from layers import correlated_layers

import analysis
import analysis.measures.checks
import analysis.measures.grid
from analysis.measures.conv import average_pool, flatten
from analysis.measures.grid import similarity_grid
from analysis.measures.registry import MEASURES

PAIRWISE = {
    "cca": lambda x, y: analysis.cca(x, y).mean,
    "svcca": lambda x, y: analysis.svcca(x, y, keep=5).mean,
    "pwcca": lambda x, y: analysis.pwcca(x, y).mean,
    "linear_cka": analysis.linear_cka,
}
OPTIONS = {"svcca": {"keep": 5}}


def network(seed: int, count: int, n: int = 300) -> dict[str, np.ndarray]:
    """`count` named layers of one network on the same n samples, of different widths."""
    rng = np.random.default_rng(seed)
    z = rng.standard_normal((n, 4))
    return {
        f"layer{i}": np.maximum(z @ rng.standard_normal((4, 6 + 3 * i)), 0) + rng.standard_normal((n, 6 + 3 * i))
        for i in range(count)
    }


@pytest.mark.parametrize("measure", list(PAIRWISE))
def test_equals_the_pairwise_measures(measure):
    a, b = network(0, 3), network(1, 4)
    grid = similarity_grid(a, b, measure, **OPTIONS.get(measure, {}))
    expected = [[PAIRWISE[measure](x, y) for y in b.values()] for x in a.values()]
    assert np.asarray(grid).shape == (3, 4)
    np.testing.assert_allclose(np.asarray(grid), expected, atol=1e-9)
    assert grid.rows == tuple(a) and grid.cols == tuple(b) and grid.measure == measure
    assert grid["layer2", "layer3"] == pytest.approx(expected[2][3], abs=1e-9)


@pytest.mark.parametrize("measure", list(PAIRWISE))
def test_one_network_against_itself(measure):
    a = network(2, 4)
    grid = np.asarray(similarity_grid(a, measure=measure, **OPTIONS.get(measure, {})))
    expected = [[PAIRWISE[measure](x, y) for y in a.values()] for x in a.values()]
    np.testing.assert_allclose(grid, expected, atol=1e-9)
    if measure != "svcca":  # every direction kept: a layer is itself
        np.testing.assert_allclose(np.diag(grid), 1.0, atol=1e-9)
    if measure != "pwcca":
        np.testing.assert_array_equal(grid, grid.T)


@pytest.mark.parametrize("measure", sorted(MEASURES))
def test_each_layer_is_prepared_once(measure, monkeypatch):
    calls = []
    m = MEASURES[measure]
    counting = dataclasses.replace(m, prepare=lambda x, **kw: calls.append(x.shape) or m.prepare(x, **kw))
    monkeypatch.setitem(MEASURES, measure, counting)
    similarity_grid(network(3, 3), network(4, 5), measure)
    assert len(calls) == 3 + 5


def test_badly_conditioned_layers_take_the_exact_route_and_still_agree():
    a, b = network(5, 2), network(6, 2)
    a["dead"] = np.column_stack([a["layer0"], np.full(300, 2.0)])  # a dead unit: the SVD route
    a["collinear"] = np.column_stack([a["layer1"], a["layer1"][:, 0] - a["layer1"][:, 1]])
    for measure in ("cca", "pwcca"):
        expected = [[PAIRWISE[measure](x, y) for y in b.values()] for x in a.values()]
        np.testing.assert_allclose(np.asarray(similarity_grid(a, b, measure)), expected, atol=1e-9)


def test_sequences_of_layers_are_named_by_position():
    a = list(network(7, 2).values())
    grid = similarity_grid(a, a[:1], "linear_cka")
    assert grid.rows == (0, 1) and grid.cols == (0,)


def test_conv_layers_are_flattened_or_averaged():
    rng = np.random.default_rng(8)
    conv = rng.standard_normal((120, 3, 4, 4))
    dense = {"fc": conv.mean(axis=(2, 3)) @ rng.standard_normal((3, 5)) + 0.1 * rng.standard_normal((120, 5))}
    flat = similarity_grid({"conv": conv}, dense, "cca", reduce="flatten")
    mean = similarity_grid({"conv": torch.tensor(conv)}, dense, "cca", reduce="mean")
    assert flat["conv", "fc"] == pytest.approx(analysis.cca(flatten(conv), dense["fc"]).mean, abs=1e-9)
    assert mean["conv", "fc"] == pytest.approx(analysis.cca(average_pool(conv), dense["fc"]).mean, abs=1e-9)


def test_float32_and_torch_layers():
    a, b = network(9, 2), network(10, 3)
    exact = np.asarray(similarity_grid(a, b, "svcca", keep=5))
    as32 = {k: v.astype(np.float32) for k, v in a.items()}
    as_torch = {k: torch.tensor(v) for k, v in b.items()}
    mixed = similarity_grid(as32, b, "svcca", keep=5)  # a float64 layer among them: all in float64
    np.testing.assert_allclose(np.asarray(mixed), exact, atol=1e-9)
    np.testing.assert_allclose(np.asarray(similarity_grid(a, as_torch, "svcca", keep=5)), exact, atol=1e-12)
    b32 = {k: v.astype(np.float32) for k, v in b.items()}
    np.testing.assert_allclose(np.asarray(similarity_grid(as32, b32, "svcca", keep=5)), exact, atol=1e-5)


def test_torch_path(monkeypatch):
    monkeypatch.setattr(analysis.measures.checks, "CPU_TENSORS_AS_NUMPY", False)  # torch's own code path, on the CPU
    a, b = network(15, 2), network(16, 2)
    for measure in PAIRWISE:
        exact = np.asarray(similarity_grid(a, b, measure, **OPTIONS.get(measure, {})))
        tensors = {k: torch.tensor(v) for k, v in a.items()}
        grid = similarity_grid(tensors, b, measure, **OPTIONS.get(measure, {}))
        np.testing.assert_allclose(np.asarray(grid), exact, atol=1e-12)


def test_progress_bar_on_request_only(capsys):
    a = network(11, 2)
    similarity_grid(a, measure="cca")
    assert "cca grid" not in capsys.readouterr().err  # small: done before the bar would show
    similarity_grid(a, measure="cca", progress=True)
    assert "cca grid" in capsys.readouterr().err


def test_bad_input_is_a_clear_error():
    a, b = network(12, 2), network(13, 2, n=200)
    with pytest.raises(ValueError, match=r"same samples: layers_a\['layer0'\] has 300, layers_b\['layer0'\] has 200"):
        similarity_grid(a, b, "cca")
    with pytest.raises(ValueError, match="measure must be one of"):
        similarity_grid(a, measure="rbf")
    with pytest.raises(TypeError, match="takes no option"):
        similarity_grid(a, measure="cca", keep=3)
    with pytest.raises(ValueError, match=r"layers_a\['bad'\] contains NaN"):
        similarity_grid({"bad": np.full((300, 2), np.nan)}, measure="cca")
    with pytest.raises(ValueError, match="no layers"):
        similarity_grid({}, measure="cca")
    with pytest.raises(TypeError, match="map layer names"):
        similarity_grid(np.ones((10, 3)), measure="cca")
    with pytest.raises(ValueError, match="keep"):
        similarity_grid(a, measure="svcca", keep=0)
    x, _ = correlated_layers(14)
    with pytest.raises(ValueError, match="no variance"):
        similarity_grid({"x": x}, {"flat": np.ones((200, 3))}, "linear_cka")
