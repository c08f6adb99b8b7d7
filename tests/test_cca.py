"""CCA, SVCCA and PWCCA: closed forms, invariances, the reference implementation, and bad input."""
import importlib
import pickle

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from layers import correlated_layers
from reference import reference_cca_rho, reference_svcca_rho

import analysis
import analysis.measures.checks
from analysis.measures.cca import decompose, n_kept

seeds = st.integers(0, 2**32 - 1)
cca_module = importlib.import_module("analysis.measures.cca")  # the module: `analysis.cca` is the function


def known_correlations(rho: np.ndarray, n: int = 300, seed: int = 0):
    """x (n, p) and y (n, p) whose canonical correlations are exactly `rho`, behind random invertible maps."""
    rng = np.random.default_rng(seed)
    p = len(rho)
    q, _ = np.linalg.qr(rng.standard_normal((n, 2 * p)) - 0.0)
    q = q - q.mean(axis=0)
    q, _ = np.linalg.qr(q)  # orthonormal and centred: columns orthogonal to the ones vector
    x = q[:, :p]
    y = q[:, :p] * rho + q[:, p:] * np.sqrt(1 - rho**2)
    return x @ rng.standard_normal((p, p)), y @ rng.standard_normal((p, p)) + 5.0


def test_known_canonical_correlations():
    rho = np.array([0.95, 0.7, 0.4, 0.1])
    x, y = known_correlations(rho)
    r = analysis.cca(x, y)
    np.testing.assert_allclose(r.rho, rho, atol=1e-10)
    assert r.mean == pytest.approx(rho.mean(), abs=1e-10)


def test_variates_are_the_aligned_features():
    x, y = correlated_layers(1)
    r = analysis.cca(x, y)
    u, v = r.x_variates(x), r.y_variates(y)
    k = len(r.rho)
    np.testing.assert_allclose(np.cov(u.T), np.eye(k), atol=1e-10)
    np.testing.assert_allclose(np.cov(v.T), np.eye(k), atol=1e-10)
    np.testing.assert_allclose(np.cov(u.T, v.T)[:k, k:], np.diag(r.rho), atol=1e-10)


@pytest.mark.parametrize("measure", [analysis.cca, analysis.pwcca, lambda x, y: analysis.svcca(x, y, keep=3)])
def test_results_pickle_with_their_directions(measure):
    # directions are computed on first use; a pickled result, used or not, still yields them
    x, y = correlated_layers(2)
    fresh, used = measure(x, y), measure(x, y)
    assert used.x_coef is not None  # computed, so it is pickled too
    for r in (fresh, used):
        back = pickle.loads(pickle.dumps(r))
        np.testing.assert_array_equal(back.rho, r.rho)
        np.testing.assert_allclose(back.x_variates(x), r.x_variates(x), atol=1e-12)
        np.testing.assert_allclose(back.y_variates(y), r.y_variates(y), atol=1e-12)


@settings(max_examples=25, deadline=None)
@given(seed=seeds, n=st.integers(60, 150), dx=st.integers(1, 10), dy=st.integers(1, 10))
def test_invariant_to_invertible_maps_translation_and_sample_order(seed, n, dx, dy):
    x, y = correlated_layers(seed, n, dx, dy)
    rng = np.random.default_rng(seed + 1)
    ax = rng.standard_normal((dx, dx)) + 3 * np.eye(dx)
    ay = rng.standard_normal((dy, dy)) + 3 * np.eye(dy)
    perm = rng.permutation(n)
    base = analysis.cca(x, y).rho
    np.testing.assert_allclose(analysis.cca(x @ ax + 7.0, y @ ay - 2.0).rho, base, atol=1e-8)
    np.testing.assert_allclose(analysis.cca(x[perm], y[perm]).rho, base, atol=1e-10)
    np.testing.assert_allclose(analysis.cca(y, x).rho, base, atol=1e-10)


@settings(max_examples=15, deadline=None)
@given(seed=seeds, dx=st.integers(2, 12))
def test_invertible_map_of_itself_gives_one(seed, dx):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((100, dx))
    y = x @ (rng.standard_normal((dx, dx)) + 3 * np.eye(dx))
    for r in (analysis.cca(x, y), analysis.svcca(x, y, keep=dx), analysis.pwcca(x, y)):
        np.testing.assert_allclose(r.rho, 1.0, atol=1e-9)
        assert r.mean == pytest.approx(1.0, abs=1e-9)


def test_independent_layers_baseline_falls_with_samples():
    rng = np.random.default_rng(0)
    means = [analysis.cca(rng.standard_normal((n, 20)), rng.standard_normal((n, 20))).mean for n in (100, 400, 1600)]
    assert means[0] > means[1] > means[2]
    assert means[2] < 0.15


def test_dead_unit_is_ignored_not_nan():
    x, y = correlated_layers(2)
    dead = np.column_stack([x, np.full(len(x), 3.0)])
    r = analysis.cca(dead, y)
    assert np.all(np.isfinite(r.rho))
    np.testing.assert_allclose(r.rho, analysis.cca(x, y).rho, atol=1e-10)
    assert np.isfinite(analysis.pwcca(dead, y).mean)


def test_torch_input_matches_numpy():
    x, y = correlated_layers(3)
    r = analysis.cca(torch.tensor(x, dtype=torch.float64), torch.tensor(y))
    assert isinstance(r.rho, np.ndarray)
    np.testing.assert_allclose(r.rho, analysis.cca(x, y).rho, atol=1e-12)


def test_svcca_keeps_leading_directions():
    rng = np.random.default_rng(4)
    scales = np.array([10.0, 5.0, 2.0, 1.0, 0.5, 0.1])
    x = rng.standard_normal((500, 6)) * scales
    assert n_kept(np.linalg.svd(x - x.mean(0), compute_uv=False), 3) == 3
    s = np.linalg.svd(x - x.mean(0), compute_uv=False)
    by_var, by_sv = n_kept(s, 0.95), n_kept(s, 0.95, by="singular_values")
    assert by_var < by_sv  # the two rules give different k on the same layer
    assert np.sum(s[:by_var] ** 2) / np.sum(s**2) >= 0.95 > np.sum(s[: by_var - 1] ** 2) / np.sum(s**2)
    assert np.sum(s[:by_sv]) / np.sum(s) >= 0.95 > np.sum(s[: by_sv - 1]) / np.sum(s)
    assert len(analysis.svcca(x, x @ rng.standard_normal((6, 6)), keep=4).rho) == 4
    assert len(analysis.svcca(x, x, keep=1.0).rho) == 6


def test_pwcca_weights_follow_the_paper():
    x, y = correlated_layers(5, dx=8, dy=6)
    r = analysis.pwcca(x, y)
    assert np.all(r.weights >= 0) and r.weights.sum() == pytest.approx(1.0)
    assert r.mean == pytest.approx(float(r.weights @ r.rho))
    # direct formula: alpha_i = sum_j |<h_i, x_j>| with h_i the unit-norm canonical variates of x
    h = r.x_variates(x)
    h /= np.linalg.norm(h, axis=0)
    alpha = np.abs(h.T @ (x - x.mean(0))).sum(axis=1)
    np.testing.assert_allclose(r.weights, alpha / alpha.sum(), atol=1e-10)
    # sign-invariant (the reference's pwcca.py is not), and not symmetric
    flipped = analysis.pwcca(x * np.where(np.arange(8) % 2, -1.0, 1.0), -y)
    np.testing.assert_allclose(flipped.mean, r.mean, atol=1e-12)
    assert analysis.pwcca(y, x).mean != pytest.approx(r.mean, abs=1e-6)


def test_pwcca_weights_favour_directions_the_neurons_use():
    rng = np.random.default_rng(6)
    n = 2000
    strong, weak = rng.standard_normal(n), rng.standard_normal(n)
    x = np.column_stack([strong + 0.01 * rng.standard_normal(n) for _ in range(5)] + [weak])
    y = np.column_stack([strong + rng.standard_normal(n), weak])
    r = analysis.pwcca(x, y)
    # the direction shared by five neurons carries most of the weight, lowering the mean towards its rho
    assert r.weights.max() > 0.8
    assert r.mean < analysis.cca(x, y).mean


def test_agrees_with_reference_algorithm_on_real_activations(ref_activations):
    for x, y in ref_activations.values():
        x, y = x.astype(np.float64), y.astype(np.float64)
        np.testing.assert_allclose(analysis.cca(x, y).rho, reference_cca_rho(x, y), atol=1e-6)
    x, y = (a.astype(np.float64) for a in ref_activations["svhn"])
    for k in (10, 20, 50):
        np.testing.assert_allclose(analysis.svcca(x, y, keep=k).rho, reference_svcca_rho(x, y, k), atol=1e-6)


def test_real_activations_of_different_seeds_are_similar_but_not_identical(ref_activations):
    x, y = ref_activations["mnist"]
    r = analysis.cca(x, y)
    assert 0.5 < r.mean < 0.99
    assert r.rho[0] > 0.9


@pytest.mark.parametrize(
    "x, y, message",
    [
        (np.full((10, 3), np.nan), np.ones((10, 3)), "NaN or Inf"),
        (np.where(np.eye(10, 3) > 0, np.inf, 0.0), np.eye(10, 3), "NaN or Inf"),
        (np.random.default_rng(0).normal(size=(10, 3)), np.random.default_rng(1).normal(size=(9, 3)), "same samples"),
        (np.arange(10.0), np.random.default_rng(1).normal(size=(10, 3)), "2-D"),
        (np.ones((10, 3)), np.random.default_rng(1).normal(size=(10, 3)), "no variance"),
        (np.ones((1, 3)), np.ones((1, 3)), "at least 2"),
        (np.array([["a", "b"], ["c", "d"]]), np.eye(2), "numbers"),
    ],
)
@pytest.mark.parametrize("measure", [analysis.cca, analysis.svcca, analysis.pwcca])
def test_bad_input_is_a_clear_error(measure, x, y, message):
    with pytest.raises(ValueError, match=message):
        measure(x, y)


def test_fewer_samples_than_features_warns():
    rng = np.random.default_rng(7)
    with pytest.warns(RuntimeWarning, match="fewer samples than features"):
        r = analysis.cca(rng.standard_normal((20, 30)), rng.standard_normal((20, 5)))
    np.testing.assert_allclose(r.rho, 1.0, atol=1e-8)  # trivially 1: what the warning is about


@pytest.mark.parametrize("keep, error", [(0, ValueError), (-1, ValueError), (1.5, ValueError), (0.0, ValueError),
                                         ("all", TypeError), (True, TypeError)])
def test_bad_keep_is_a_clear_error(keep, error):
    x, y = correlated_layers(8)
    with pytest.raises(error, match="keep"):
        analysis.svcca(x, y, keep=keep)


@pytest.fixture
def torch_path(monkeypatch):
    """Run torch tensors on the CPU through the torch code path (as on an accelerator), not numpy's."""
    monkeypatch.setattr(analysis.measures.checks, "CPU_TENSORS_AS_NUMPY", False)


def conditioned(seed: int, n: int, d: int, kappa: float) -> np.ndarray:
    """A layer (n, d) whose centred singular values span `kappa`, in rotated (not unit-aligned) directions."""
    rng = np.random.default_rng(seed)
    q, _ = np.linalg.qr(rng.standard_normal((n, d)))
    q, _ = np.linalg.qr(q - q.mean(axis=0))
    v, _ = np.linalg.qr(rng.standard_normal((d, d)))
    return (q * np.logspace(0, -np.log10(kappa), d)) @ v.T + 3.0


MEASURES = {
    "cca": lambda x, y: analysis.cca(x, y),
    "svcca": lambda x, y: analysis.svcca(x, y, keep=6),
    "pwcca": lambda x, y: analysis.pwcca(x, y),
}


@pytest.mark.parametrize("measure", list(MEASURES))
def test_gram_and_svd_routes_agree(measure, monkeypatch):
    x, y = correlated_layers(9, n=400)
    gram = MEASURES[measure](x, y)
    monkeypatch.setattr(cca_module, "GRAM_CONDITION_LIMIT", 0.0)  # every layer by SVD
    svd = MEASURES[measure](x, y)
    np.testing.assert_allclose(gram.rho, svd.rho, atol=1e-12)
    np.testing.assert_allclose(gram.weights, svd.weights, atol=1e-12)
    # the same canonical variates, up to each one's sign
    np.testing.assert_allclose(np.abs(gram.x_variates(x)), np.abs(svd.x_variates(x)), atol=1e-9)


def test_route_follows_the_conditioning():
    x, y = correlated_layers(10, n=400)
    assert decompose(x).basis is None and decompose(x, spectral=True).basis is None  # Gram route
    assert decompose(np.column_stack([x, np.ones(400)])).basis is not None  # dead unit
    assert decompose(np.column_stack([x, x[:, 0] - x[:, 1]])).basis is not None  # collinear
    assert decompose(x[:10]).basis is not None  # fewer samples than features
    assert decompose(conditioned(0, 400, 8, 3e3)).basis is not None  # κ(G) = 9e6 > 1e6
    # CCA ignores each unit's scale, so units of very different scales stay on the Gram route
    stretched = x * np.logspace(-4, 4, x.shape[1])
    assert decompose(stretched).basis is None
    assert decompose(stretched, spectral=True).basis is not None  # SVCCA's spectrum does see scales
    np.testing.assert_allclose(analysis.cca(stretched, y).rho, analysis.cca(x, y).rho, atol=1e-10)


def test_gram_route_is_accurate_up_to_its_limit(monkeypatch):
    x, y = conditioned(1, 500, 8, 900.0), conditioned(2, 500, 6, 1.0)  # κ(G) = 8.1e5, just accepted
    y = y + 0.5 * x[:, :6]
    assert decompose(x).basis is None and decompose(x, spectral=True).basis is None
    gram = analysis.cca(x, y)
    monkeypatch.setattr(cca_module, "GRAM_CONDITION_LIMIT", 0.0)
    np.testing.assert_allclose(gram.rho, analysis.cca(x, y).rho, atol=1e-9)


@pytest.mark.parametrize("measure", [*MEASURES, "linear_cka"])
def test_float32_input_to_stated_accuracy(measure):
    x, y = correlated_layers(11, n=1000)
    fn = MEASURES.get(measure, analysis.linear_cka)
    exact, single = fn(x, y), fn(x.astype(np.float32), y.astype(np.float32))
    if measure == "linear_cka":
        assert single == pytest.approx(exact, abs=1e-5)
        return
    assert single.rho.dtype == np.float64
    np.testing.assert_allclose(single.rho, exact.rho, atol=1e-5)
    assert single.mean == pytest.approx(exact.mean, abs=1e-5)
    assert not np.allclose(single.rho, exact.rho, atol=1e-12, rtol=0)  # it really ran in float32


@pytest.mark.parametrize("measure", [*MEASURES, "linear_cka"])
def test_torch_path(measure, torch_path):
    x, y = correlated_layers(12, n=500)
    fn = MEASURES.get(measure, analysis.linear_cka)
    value = (lambda r: r) if measure == "linear_cka" else (lambda r: r.rho)
    exact = value(fn(x, y))
    np.testing.assert_allclose(value(fn(torch.tensor(x), torch.tensor(y))), exact, atol=1e-12)
    np.testing.assert_allclose(value(fn(torch.tensor(x).float(), torch.tensor(y).float())), exact, atol=1e-5)
    np.testing.assert_allclose(value(fn(torch.tensor(x), y)), exact, atol=1e-12)  # mixed: torch's side
    frozen = y.copy()
    frozen.flags.writeable = False
    np.testing.assert_allclose(value(fn(torch.tensor(x), frozen)), exact, atol=1e-12)  # a read-only numpy side
    dead = np.column_stack([x, np.full(500, 2.0)])  # the SVD route, in torch
    np.testing.assert_allclose(value(fn(torch.tensor(dead), torch.tensor(y))), value(fn(dead, y)), atol=1e-12)


def test_numpy_arrays_become_tensors_sharing_memory_unless_read_only():
    from analysis.measures.checks import as_tensor

    x = np.arange(6.0).reshape(2, 3)
    as_tensor(x)[0, 0] = 9.0
    assert x[0, 0] == 9.0  # writable and contiguous: shared, no copy
    x.flags.writeable = False
    as_tensor(x)[0, 0] = -1.0
    assert x[0, 0] == 9.0  # read-only: a copy, never written through
    np.testing.assert_array_equal(as_tensor(x.T).numpy(), x.T)  # strided: a contiguous copy


def test_float32_path_on_real_activations(ref_activations):
    # against float64 on the same float32 values: Gram matrices accumulate in double, bases stay float32
    for x, y in ref_activations.values():
        x64, y64 = x.astype(np.float64), y.astype(np.float64)
        np.testing.assert_allclose(analysis.cca(x, y).rho, analysis.cca(x64, y64).rho, atol=1e-7)
        assert analysis.pwcca(x, y).mean == pytest.approx(analysis.pwcca(x64, y64).mean, abs=1e-7)
        np.testing.assert_allclose(analysis.svcca(x, y, keep=5).rho, analysis.svcca(x64, y64, keep=5).rho, atol=1e-5)


def test_single_precision_products_accumulate_in_double_chunk_by_chunk():
    from analysis.measures.checks import cross_product

    rng = np.random.default_rng(13)
    a = rng.standard_normal((9000, 500)).astype(np.float32)  # several chunks of rows
    b = a[:, :300] * 2 + 1
    exact = a.astype(np.float64).T @ b.astype(np.float64)
    np.testing.assert_allclose(cross_product(a, b, wide=True), exact, rtol=1e-12, atol=1e-9)
    np.testing.assert_allclose(cross_product(a, a, wide=True), a.astype(np.float64).T @ a, rtol=1e-12, atol=1e-9)
    z = (rng.standard_normal((3, 40, 5)) + 1j * rng.standard_normal((3, 40, 5))).astype(np.complex64)
    np.testing.assert_allclose(cross_product(z, z, wide=True), z.astype(np.complex128).conj().mT @ z, atol=1e-12)
