"""Streaming statistics: equal to the in-memory measures batch by batch, flat memory, a model's layers, bad batches."""
import tracemalloc

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from layers import correlated_layers

import analysis
from analysis.measures.grid import similarity_grid
from analysis.measures.stream import CrossStats, GridStats
from analysis.networks.hooks import stream_stats


def fed(x, y, bounds) -> CrossStats:
    """CrossStats fed x, y in the batches between consecutive `bounds`."""
    stats = CrossStats()
    for start, stop in zip(bounds[:-1], bounds[1:]):
        stats.update(x[start:stop], y[start:stop])
    return stats


def test_equals_the_in_memory_measures():
    x, y = correlated_layers(0, n=1000)
    stats = fed(x, y, list(range(0, 1000, 128)) + [1000])
    assert stats.n == 1000
    np.testing.assert_allclose(stats.cca().rho, analysis.cca(x, y).rho, atol=1e-8)
    for keep in (3, 0.9):
        np.testing.assert_allclose(stats.svcca(keep).rho, analysis.svcca(x, y, keep).rho, atol=1e-8)
    streamed, in_memory = stats.pwcca(), analysis.pwcca(x, y)
    np.testing.assert_allclose(streamed.weights, in_memory.weights, atol=1e-8)
    assert streamed.mean == pytest.approx(in_memory.mean, abs=1e-8)
    assert stats.linear_cka() == pytest.approx(analysis.linear_cka(x, y), abs=1e-8)


def test_variates_are_the_aligned_features():
    x, y = correlated_layers(1, n=600)
    r = fed(x, y, [0, 250, 600]).cca()
    u, v = r.x_variates(x), r.y_variates(y)
    k = len(r.rho)
    expected = np.block([[np.eye(k), np.diag(r.rho)], [np.diag(r.rho), np.eye(k)]])
    np.testing.assert_allclose(np.cov(u.T, v.T), expected, atol=1e-8)


@settings(max_examples=20, deadline=None)
@given(cuts=st.lists(st.integers(1, 399), max_size=12, unique=True))
def test_any_split_into_batches_gives_the_same_result(cuts):
    x, y = correlated_layers(2, n=400)
    stats = fed(x, y, [0, *sorted(cuts), 400])  # batches of one sample included
    np.testing.assert_allclose(stats.cca().rho, fed(x, y, [0, 400]).cca().rho, atol=1e-10)


def test_large_means_do_not_cancel():
    x, y = correlated_layers(3, n=2000)
    x, y = x + 1e6, y - 3e5  # raw sums of squares would lose every digit of the variance
    stats = fed(x, y, list(range(0, 2001, 100)))
    np.testing.assert_allclose(stats.cca().rho, analysis.cca(x, y).rho, atol=1e-8)
    assert stats.linear_cka() == pytest.approx(analysis.linear_cka(x, y), abs=1e-8)


def test_dead_unit_is_dropped_as_in_memory():
    x, y = correlated_layers(4, n=500)
    dead = np.column_stack([x, np.full(500, 0.1)])
    stats = fed(dead, y, [0, 170, 340, 500])
    np.testing.assert_allclose(stats.cca().rho, analysis.cca(dead, y).rho, atol=1e-8)


def test_float32_and_torch_batches_accumulate_in_float64():
    x, y = correlated_layers(5, n=800)
    x32 = x.astype(np.float32)
    stats = CrossStats()
    for i in range(0, 800, 200):
        stats.update(torch.tensor(x32[i : i + 200]), y[i : i + 200])
    np.testing.assert_allclose(stats.cca().rho, analysis.cca(x32.astype(np.float64), y).rho, atol=1e-8)


def test_grid_stats_equal_similarity_grid():
    rng = np.random.default_rng(6)
    z = rng.standard_normal((900, 4))
    a = {f"a{i}": z @ rng.standard_normal((4, 5 + i)) + rng.standard_normal((900, 5 + i)) for i in range(3)}
    b = {
        "conv": rng.standard_normal((900, 2, 3, 3)) + z[:, :2, None, None],
        "fc": np.tanh(z) + 0.3 * rng.standard_normal((900, 4)),
    }
    both, alone = GridStats(list(a), list(b), reduce="mean"), GridStats(list(a))
    for i in range(0, 900, 300):
        both.update({k: v[i : i + 300] for k, v in a.items()}, {k: v[i : i + 300] for k, v in b.items()})
        alone.update({k: v[i : i + 300] for k, v in a.items()})
    for measure, options in (("cca", {}), ("svcca", {"keep": 3}), ("pwcca", {}), ("linear_cka", {})):
        expected = similarity_grid(a, b, measure, reduce="mean", **options)
        np.testing.assert_allclose(np.asarray(both.grid(measure, **options)), np.asarray(expected), atol=1e-8)
        expected = similarity_grid(a, measure=measure, **options)
        np.testing.assert_allclose(np.asarray(alone.grid(measure, **options)), np.asarray(expected), atol=1e-8)
    assert both.grid("cca").cols == ("conv", "fc")


def test_memory_stays_flat_with_more_samples():
    x, y = correlated_layers(7, n=500, dx=50, dy=40)

    def peak(batches: int) -> int:
        tracemalloc.start()
        stats = CrossStats()
        for _ in range(batches):
            stats.update(x, y)
        stats.cca()
        size = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        return size

    assert peak(40) < 1.2 * peak(4)


def test_stream_stats_runs_a_model_through_a_dataloader():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(6, 12), torch.nn.ReLU(), torch.nn.Linear(12, 8), torch.nn.Tanh())
    model.train()
    inputs = torch.randn(500, 6, dtype=torch.float64)
    model = model.double()
    data = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(inputs, torch.zeros(500)), batch_size=64)
    stats = stream_stats(model, data, ["1", "3"])
    with torch.no_grad():
        hidden, out = model[1](model[0](inputs)), model(inputs)
    expected = similarity_grid({"1": hidden, "3": out}, measure="cca")
    np.testing.assert_allclose(np.asarray(stats.grid("cca")), np.asarray(expected), atol=1e-8)
    assert model.training and all(not m._forward_hooks for m in model.modules())  # left as found
    other = torch.nn.Sequential(torch.nn.Linear(6, 5)).double()
    versus = stream_stats(model, data, ["1"], ["0"], other=other)
    assert versus.cca("1", "0").mean == pytest.approx(analysis.cca(hidden, other(inputs).detach()).mean, abs=1e-8)
    with pytest.raises(ValueError, match="has no layer 'nope'"):
        stream_stats(model, data, ["nope"])


def test_bad_batches_are_clear_errors():
    x, y = correlated_layers(8, n=100)
    stats = CrossStats().update(x[:50], y[:50])
    with pytest.raises(ValueError, match="batch 1: layer 'x' contains NaN"):
        stats.update(np.where(x[50:] > 2, np.nan, x[50:]), y[50:])
    with pytest.raises(ValueError, match="different numbers of samples"):
        stats.update(x[50:], y[51:])
    with pytest.raises(ValueError, match="layer 'y' has 8 features, earlier batches 9"):
        stats.update(x[50:], y[50:, :8])
    with pytest.raises(ValueError, match="at least 2"):
        CrossStats().update(x[:1], y[:1]).cca()
    with pytest.raises(ValueError, match="no variance"):
        fed(np.ones((100, 3)), y, [0, 30, 100]).cca()
    grid = GridStats(["a"], ["b"])
    with pytest.raises(ValueError, match="no activations for layer"):
        grid.update({"a": x}, {"c": y})
    with pytest.raises(ValueError, match="unknown row layer 'z'"):
        grid.update({"a": x}, {"b": y}).cca("z", "b")
