"""Contract of every registered measure: one definition served by pair, grid, group and stream alike, the
self-similarity and invariances it promises, symmetry where promised, and named errors for bad input."""
import numpy as np
import pytest
from layers import correlated_layers

from analysis.measures import CrossStats, compare_group, similarity_grid
from analysis.measures.registry import MEASURES, measure

# every measure, with the options it is tested with (kernel CKA in each of its variants)
CASES = {
    "cca": {}, "svcca": {"keep": 5}, "pwcca": {}, "linear_cka": {}, "procrustes": {}, "dft_cca": {},
    "cka": {}, "cka-rbf": {"kernel": "rbf", "bandwidth": 0.8}, "cka-debiased": {"debiased": True},
}
# maps of (x, y)'s features each measure is invariant to, beyond sample order, translation and isotropic
# scaling; PWCCA weighs x's canonical variates by x's own neurons, so only its y side is map-invariant
INVARIANT_TO = {"cca": ("invertible",) * 2, "pwcca": (None, "invertible"), "svcca": ("orthogonal",) * 2,
                "linear_cka": ("orthogonal",) * 2, "procrustes": ("orthogonal",) * 2,
                "dft_cca": ("invertible",) * 2, "cka": ("orthogonal",) * 2}


def case(name):
    return MEASURES[name.split("-")[0]], CASES[name]


def layers(m, seed=0):
    x, y = correlated_layers(seed, n=240, dx=6, dy=5, noise=0.7)
    if m.ndim == 4:  # conv layers: channels x 2 x 2 positions
        rng = np.random.default_rng(seed)
        x, y = x.reshape(60, 6, 2, 2), y.reshape(60, 5, 2, 2)
        x, y = x + 0.1 * rng.standard_normal(x.shape), y + 0.1 * rng.standard_normal(y.shape)
    return x, y


def mapped(x, kind, rng):
    """x times a random invertible or orthogonal map of its features (of its channels, for conv layers)."""
    d = x.shape[1]
    a = rng.standard_normal((d, d))
    m = np.linalg.qr(a)[0] if kind == "orthogonal" else a + 3 * np.eye(d)
    return np.einsum("nc...,cd->nd...", x, m)


def at_self(m):
    return 1.0 if m.similarity else 0.0


@pytest.mark.parametrize("name", CASES)
def test_a_layer_against_itself(name):
    m, options = case(name)
    x, _ = layers(m)
    assert float(m.pair(x, x, **options)) == pytest.approx(at_self(m), abs=1e-9)


@pytest.mark.parametrize("name", CASES)
def test_invariances(name):
    m, options = case(name)
    x, y = layers(m, 1)
    rng = np.random.default_rng(2)
    base = float(m.pair(x, y, **options))
    perm = rng.permutation(len(x))
    assert float(m.pair(x[perm], y[perm], **options)) == pytest.approx(base, abs=1e-9)
    assert float(m.pair(7.5 * x + 3.0, y, **options)) == pytest.approx(base, abs=1e-9)
    on_x, on_y = INVARIANT_TO[m.name]
    if on_x:
        assert float(m.pair(mapped(x, on_x, rng), y, **options)) == pytest.approx(base, abs=1e-8)
    assert float(m.pair(x, mapped(y, on_y, rng), **options)) == pytest.approx(base, abs=1e-8)


@pytest.mark.parametrize("name", CASES)
def test_symmetry_where_promised(name):
    m, options = case(name)
    x, y = layers(m, 3)
    forward, backward = float(m.pair(x, y, **options)), float(m.pair(y, x, **options))
    if m.symmetric:
        assert forward == pytest.approx(backward, abs=1e-10)
    else:
        assert abs(forward - backward) > 1e-6  # PWCCA weights from its first argument


@pytest.mark.parametrize("name", CASES)
def test_grid_group_and_stream_serve_the_same_definition(name):
    m, options = case(name)
    x, y = layers(m, 4)
    z = layers(m, 5)[1]
    pair = float(m.pair(x, y, **options))
    grid = similarity_grid({"x": x}, {"y": y, "z": z}, m.name, **options)
    assert grid["x", "y"] == pytest.approx(pair, abs=1e-9)
    group = compare_group({"a": {"l": x}, "b": {"l": y}, "c": {"l": z}}, measure=m.name, **options)
    both = (pair + float(m.pair(y, x, **options))) / 2
    assert group.pairs == (("a", "b"), ("a", "c"), ("b", "c"))
    assert group["l"][0] == pytest.approx(both, abs=1e-9)
    assert group.values.shape == (1, 3) and group.mean[0] == pytest.approx(group.values.mean())
    stats = CrossStats()
    if not m.streams or (m.name == "cka" and options):
        with pytest.raises(ValueError, match="streamed moments|every sample"):
            stats.update(x, y).measure(m.name, **options)
        return
    for part in np.array_split(np.arange(len(x)), 4):
        stats.update(x[part], y[part])
    assert float(stats.measure(m.name, **options)) == pytest.approx(pair, abs=1e-8)


@pytest.mark.parametrize("name", CASES)
def test_bad_input_gets_a_named_error(name):
    m, options = case(name)
    x, y = layers(m, 6)
    bad = x.copy()
    bad.flat[3] = np.nan
    with pytest.raises(ValueError, match="NaN or Inf"):
        m.pair(bad, y, **options)
    with pytest.raises(ValueError, match="same samples"):
        m.pair(x, y[:-1], **options)
    with pytest.raises(ValueError, match="no variance"):
        m.pair(np.ones_like(x), y, **options)
    with pytest.raises(TypeError, match="takes no option"):
        m.pair(x, y, bogus=1, **options)


def test_group_compares_two_groups_pair_by_pair():
    nets = [dict(zip("pq", correlated_layers(s, n=100))) for s in range(5)]
    between = compare_group(nets[:2], nets[2:], "linear_cka")
    assert between.pairs == ((0, 0), (0, 1), (0, 2), (1, 0), (1, 1), (1, 2)) and between.layers == ("p", "q")
    assert between["q"][4] == pytest.approx(similarity_grid([nets[1]["q"]], [nets[3]["q"]], "linear_cka")[0, 0])
    with pytest.raises(ValueError, match="at least 2 networks"):
        compare_group(nets[:1])
    with pytest.raises(ValueError, match=r"network 0 has no layer\(s\) \['r'\]"):
        compare_group(nets[:2], layers=["r"])


def test_unknown_measure_lists_the_registered_ones():
    with pytest.raises(ValueError, match="measure must be one of"):
        measure("rbf")
