"""Every public measure on the edges (pair, grid, group, stream): dtypes, complex input, degenerate shapes,
extreme scales, bad values and types, parameters at their bounds. Each case gives the right value (checked by an
invariant) or a named error; never an unnamed exception, never nan."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from layers import correlated_layers

from analysis.measures import CrossStats, compare_group, similarity_grid
from analysis.measures.registry import MEASURES

NAMES = sorted(MEASURES)
REAL_ONLY = {"cka"}  # kernel CKA variants (rbf, debiased) take real input; the default linear form takes complex
NAMED = (ValueError, TypeError)


def pair(name, seed=0, n=240):
    x, y = correlated_layers(seed, n=n, dx=6, dy=5, noise=0.7)
    if MEASURES[name].ndim == 4:
        return x.reshape(n // 4, 6, 2, 2), y.reshape(n // 4, 5, 2, 2)
    return x, y


def value(name, x, y, **options):
    out = float(MEASURES[name].pair(x, y, **options))
    assert np.isfinite(out)
    assert (0.0 <= out <= 1.0) if MEASURES[name].similarity else (0.0 <= out <= 2.0)
    return out


def unitary(d, rng):
    q, _ = np.linalg.qr(rng.standard_normal((d, d)) + 1j * rng.standard_normal((d, d)))
    return q


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_single_and_double_precision_agree(name, dtype):
    x, y = pair(name)
    assert value(name, x.astype(dtype), y.astype(dtype)) == pytest.approx(value(name, x, y), abs=2e-5)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("dtype", [np.complex64, np.complex128])
def test_complex_input_is_supported_correctly_or_refused_by_name(name, dtype):
    rng = np.random.default_rng(1)
    x, y = pair(name)
    xc = (x + 1j * rng.standard_normal(x.shape)).astype(dtype)
    yc = (y + 1j * rng.standard_normal(y.shape)).astype(dtype)
    options = {"kernel": "rbf"} if name in REAL_ONLY else {}
    if name in REAL_ONLY:
        with pytest.raises(ValueError, match="real"):
            MEASURES[name].pair(xc, yc, **options)
        return
    tol = 1e-4 if dtype == np.complex64 else 1e-9
    assert value(name, xc, xc) == pytest.approx(1.0 if MEASURES[name].similarity else 0.0, abs=tol)
    rotated = np.einsum("nc...,cd->nd...", xc, unitary(xc.shape[1], rng))  # a unitary map of the features
    same = 1.0 if MEASURES[name].similarity else 0.0
    if name != "pwcca":  # PWCCA weighs by x's own neurons: invariant on y's side only
        assert value(name, rotated, xc) == pytest.approx(same, abs=tol)
    assert value(name, xc, rotated) == pytest.approx(same, abs=tol)
    assert value(name, xc, yc) == pytest.approx(value(name, xc, yc @ unitary(5, rng)
                                                     if xc.ndim == 2 else np.einsum("nc...,cd->nd...", yc, unitary(5, rng))), abs=tol)


def test_streaming_refuses_complex_input():
    x, y = pair("cca")
    with pytest.raises(ValueError, match="real activations"):
        CrossStats().update(x * 1j, y)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("case", ["zero features", "one sample", "nan", "inf", "constant", "None", "strings", "3-D"])
def test_bad_layers_get_a_named_error(name, case):
    x, y = pair(name)
    bad = {
        "zero features": x[:, :0], "one sample": x[:1], "nan": np.where(x > 2, np.nan, x),
        "inf": np.where(x > 2, np.inf, x), "constant": np.ones_like(x), "None": None,
        "strings": np.full(x.shape, "a"), "3-D": x.reshape(len(x), -1, 1),
    }[case]
    with pytest.raises(NAMED) as error:
        MEASURES[name].pair(bad, y)
    assert "x" in str(error.value)  # names the argument


@pytest.mark.parametrize("name", NAMES)
def test_degenerate_but_valid_layers(name):
    rng = np.random.default_rng(2)
    x, y = pair(name)
    one = x[:, :1]
    assert np.isfinite(float(MEASURES[name].pair(one, y)))  # one feature
    doubled = np.concatenate([x, x[:, :2]], axis=1)  # duplicated columns: the same span
    assert value(name, doubled, y) == pytest.approx(value(name, x, y), abs=0.2 if name != "cca" else 1e-9)
    two = rng.standard_normal((2,) + x.shape[1:]), rng.standard_normal((2,) + y.shape[1:])
    with np.errstate(all="ignore"):
        try:
            out = float(MEASURES[name].pair(*two))
        except NAMED:
            return
        except RuntimeWarning as warning:  # fewer samples than features: a warning the tests turn into an error
            assert "samples" in str(warning)
            return
    assert np.isfinite(out)


def test_mostly_zero_rows_have_a_defined_rbf_bandwidth():
    x, y = pair("cka")
    x = x.copy()
    x[: int(0.84 * len(x))] = 0  # dead units for most images: the median pairwise distance is 0
    assert np.isfinite(MEASURES["cka"].pair(x, y, kernel="rbf"))


@pytest.mark.parametrize("options, error, names", [
    ({"kernel": "rbf", "bandwidth": np.inf}, ValueError, "bandwidth"),
    ({"kernel": "rbf", "bandwidth": 1e-300}, ValueError, "bandwidth"),
    ({"kernel": "rbf", "bandwidth": 1e300}, ValueError, "bandwidth"),
    ({"kernel": "rbf", "bandwidth": "1"}, TypeError, "bandwidth"),
    ({"kernel": "rbf", "bandwidth": -1.0}, ValueError, "bandwidth"),
    ({"kernel": "poly"}, ValueError, "kernel"), ({"debiased": "yes"}, TypeError, "debiased"),
    ({"bandwith": 0.5}, TypeError, "takes no option"),
])
def test_cka_parameters_are_checked_at_the_door(options, error, names):
    x, y = pair("cka")
    with pytest.raises(error, match=names):
        MEASURES["cka"].pair(x, y, **options)


@pytest.mark.parametrize("options, error", [
    ({"keep": 5, "by": "bogus"}, ValueError), ({"keep": 0}, ValueError), ({"keep": 1.5}, ValueError),
    ({"keep": "all"}, TypeError), ({"keep": None}, TypeError),
])
def test_svcca_parameters_are_checked_at_the_door(options, error):
    x, y = pair("svcca")
    with pytest.raises(error, match="keep|by"):
        MEASURES["svcca"].pair(x, y, **options)


@settings(max_examples=20, deadline=None)
@given(exponent=st.integers(-150, 150), name=st.sampled_from(NAMES))
def test_isotropic_scale_from_1e_150_to_1e150_in_double(exponent, name):
    x, y = pair(name)
    assert value(name, x * 10.0**exponent, y * 10.0**exponent) == pytest.approx(value(name, x, y), abs=1e-8)


@settings(max_examples=20, deadline=None)
@given(exponent=st.integers(-20, 20), name=st.sampled_from(NAMES))
def test_isotropic_scale_from_1e_20_to_1e20_in_single(exponent, name):
    x, y = pair(name)
    scaled = (x * 10.0**exponent).astype(np.float32), (y * 10.0**exponent).astype(np.float32)
    assert value(name, *scaled) == pytest.approx(value(name, x, y), abs=1e-4)


@pytest.mark.parametrize("exponent", [-20, 18, 20])
@pytest.mark.parametrize("name", NAMES)
def test_single_precision_near_its_range_ends(name, exponent):
    # squares of 1e18 summed over 240 samples pass float32's largest number (3.4e38) unless rescaled first
    x, y = pair(name)
    scaled = (x * 10.0**exponent).astype(np.float32), (y * 10.0**exponent).astype(np.float32)
    assert value(name, *scaled) == pytest.approx(value(name, x, y), abs=1e-4)


@pytest.mark.parametrize("name", [n for n in NAMES if MEASURES[n].ndim == 2])
def test_grid_and_group_name_the_bad_layer(name):
    x, y = pair(name)
    with pytest.raises(ValueError, match=r"layers_b\['y'\] contains NaN"):
        similarity_grid({"x": x}, {"y": np.full_like(y, np.nan)}, name)
    with pytest.raises(ValueError, match="no variance"):
        compare_group([{"l": x}, {"l": np.ones_like(x)}], measure=name)


@pytest.mark.parametrize("batch", [None, [[1.0, 2.0]], "abc", np.full((4, 2), "s")])
def test_a_refused_streaming_batch_leaves_the_state_unchanged(batch):
    x, y = pair("cca")
    stats = CrossStats().update(x[:100], y[:100])
    before = stats.cca().mean
    with pytest.raises(NAMED):
        stats.update(batch, y[:2] if batch is not None else None)
    assert stats.n == 100 and stats.cca().mean == before


def test_ill_conditioned_streaming_warns_with_the_directions_it_drops():
    rng = np.random.default_rng(3)
    n, d = 5000, 30
    u, _ = np.linalg.qr(rng.standard_normal((n, d)))
    v, _ = np.linalg.qr(rng.standard_normal((d, d)))
    x = (u * np.geomspace(1, 1e-6, d)) @ v + 3.0
    y = x @ rng.standard_normal((d, d)) * 0.1 + rng.standard_normal((n, d))
    stats = CrossStats()
    for part in np.array_split(np.arange(n), 10):
        stats.update(x[part], y[part])
    with pytest.warns(RuntimeWarning, match=r"of the layer's 30 directions .* dropped"):
        stats.cca()
    well = (u * np.geomspace(1, 1e-3, d)) @ v + 3.0
    stats = CrossStats()
    for part in np.array_split(np.arange(n), 10):
        stats.update(well[part], y[part])
    np.testing.assert_allclose(stats.cca().rho, MEASURES["cca"].pair(well, y).rho, atol=1e-9)
