"""DFT-CCA on conv layers: exact on translation-invariant data, different spatial sizes, the reference loop."""
import numpy as np
import pytest
import torch
from reference import reference_dft_cca_rho

import analysis
import analysis.measures.checks
from analysis.measures.conv import _distinct_frequencies


def shift_closed(seed: int, n0: int = 12, c: int = 3, h: int = 4, w: int = 4):
    """Two conv layers of n0 images and every circular shift of them: a translation-invariant dataset."""
    rng = np.random.default_rng(seed)
    a = rng.standard_normal((n0, c, h, w))
    b = np.tanh(np.einsum("nchw,cd->ndhw", a, rng.standard_normal((c, c + 1)))) + 0.5 * rng.standard_normal(
        (n0, c + 1, h, w)
    )
    shifts = [(i, j) for i in range(h) for j in range(w)]
    roll = lambda t: np.concatenate([np.roll(t, s, axis=(2, 3)) for s in shifts])  # noqa: E731
    return roll(a), roll(b)


def test_equals_cca_of_flattened_layers_on_translation_invariant_data():
    a, b = shift_closed(0)
    r = analysis.dft_cca(a, b)
    flat = analysis.cca(analysis.flatten(a), analysis.flatten(b))
    assert len(r.rho) == len(flat.rho)
    np.testing.assert_allclose(r.rho, flat.rho, atol=1e-9)
    assert r.mean == pytest.approx(flat.mean, abs=1e-9)


def test_per_frequency_breakdown_and_conjugate_symmetry():
    a, b = shift_closed(1, h=4, w=6)
    r = analysis.dft_cca(a, b)
    assert r.per_frequency.shape == (4, 6, 3)
    assert np.all(np.diff(r.per_frequency, axis=2) <= 1e-12)  # descending within a frequency
    # a real signal's frequencies (u, v) and (-u, -v) carry the same coefficients
    np.testing.assert_allclose(r.per_frequency[1, 2], r.per_frequency[-1, -2], atol=1e-10)
    np.testing.assert_allclose(np.sort(r.per_frequency.ravel())[::-1], r.rho, atol=1e-12)


def test_agrees_with_one_reference_cca_per_frequency():
    rng = np.random.default_rng(2)
    a = rng.standard_normal((200, 4, 5, 5))
    b = a[:, :3] ** 2 + rng.standard_normal((200, 3, 5, 5))
    np.testing.assert_allclose(analysis.dft_cca(a, b).rho, reference_dft_cca_rho(a, b), atol=1e-6)


def test_different_spatial_sizes_compare_shared_low_frequencies():
    rng = np.random.default_rng(3)
    small = rng.standard_normal((300, 2, 4, 4))
    big = small.repeat(2, axis=2).repeat(2, axis=3) + 0.1 * rng.standard_normal((300, 2, 8, 8))
    r = analysis.dft_cca(big, small)
    assert r.per_frequency.shape == (4, 4, 2)
    assert r.per_frequency[0, 0, 0] > 0.9  # the shared coarse content is found
    assert np.all((r.rho >= 0) & (r.rho <= 1))
    assert analysis.dft_cca(small, big).per_frequency.shape == (4, 4, 2)


def test_invariant_to_sample_order_and_channel_mixing():
    a, b = shift_closed(4)
    rng = np.random.default_rng(4)
    perm = rng.permutation(len(a))
    mix = rng.standard_normal((3, 3)) + 3 * np.eye(3)
    base = analysis.dft_cca(a, b).rho
    np.testing.assert_allclose(analysis.dft_cca(a[perm], b[perm]).rho, base, atol=1e-9)
    np.testing.assert_allclose(analysis.dft_cca(np.einsum("nchw,cd->ndhw", a, mix), b).rho, base, atol=1e-8)


def test_bad_input_is_a_clear_error():
    rng = np.random.default_rng(5)
    with pytest.raises(ValueError, match="4-D"):
        analysis.dft_cca(rng.standard_normal((10, 4, 3)), rng.standard_normal((10, 4, 3)))
    with pytest.raises(ValueError, match="same samples"):
        analysis.dft_cca(rng.standard_normal((10, 2, 3, 3)), rng.standard_normal((9, 2, 3, 3)))
    with pytest.raises(ValueError, match="no variance"):
        analysis.dft_cca(np.ones((10, 2, 3, 3)), rng.standard_normal((10, 2, 3, 3)))


def test_flatten_and_average_pool_shapes():
    a = np.arange(2 * 3 * 4 * 5, dtype=float).reshape(2, 3, 4, 5)
    assert analysis.flatten(a).shape == (2, 60)
    np.testing.assert_allclose(analysis.average_pool(a), a.mean(axis=(2, 3)))


def per_frequency_loop(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Oracle: one exact (SVD-based) complex CCA per shared low frequency, in a loop, as (h, w, k)."""
    h, w = min(a.shape[2], b.shape[2]), min(a.shape[3], b.shape[3])
    k = min(a.shape[1], b.shape[1])

    def basis(f):
        f = f - f.mean(axis=0)
        u, s, _ = np.linalg.svd(f, full_matrices=False)
        return u[:, s > s[0] * max(f.shape) * np.finfo(float).eps]

    out = np.zeros((h, w, k))
    for i, r in enumerate(np.fft.fftfreq(h, 1 / h).astype(int)):
        for j, c in enumerate(np.fft.fftfreq(w, 1 / w).astype(int)):
            ua, ub = (basis(np.fft.fft2(t, axes=(2, 3))[:, :, r % t.shape[2], c % t.shape[3]]) for t in (a, b))
            rho = np.linalg.svd(ua.conj().T @ ub, compute_uv=False)[: min(ua.shape[1], ub.shape[1])]
            out[i, j, : len(rho)] = rho
    return out


@pytest.mark.parametrize("size_a, size_b", [((6, 6), (6, 6)), ((8, 8), (4, 4)), ((7, 5), (5, 3)), ((4, 6), (8, 5))])
def test_batched_frequencies_equal_a_loop_over_them(size_a, size_b):
    rng = np.random.default_rng(6)
    a = rng.standard_normal((150, 3, *size_a))
    b = rng.standard_normal((150, 4, *size_b)) + np.resize(a[:, :1, : size_b[0], : size_b[1]], (150, 4, *size_b))
    r = analysis.dft_cca(a, b)
    np.testing.assert_allclose(r.per_frequency, per_frequency_loop(a, b), atol=1e-9)


def test_each_conjugate_pair_is_solved_once():
    solved, source = _distinct_frequencies(16, 16, (16, 16), (16, 16), real=True)
    assert len(solved) == (256 + 4) // 2  # (0,0), (0,8), (8,0), (8,8) are their own conjugates
    assert np.all(solved[:, 1] % 16 <= 8)  # the half a real FFT stores
    assert len(np.unique(source)) == len(solved) and len(source) == 256
    assert len(_distinct_frequencies(16, 16, (16, 16), (16, 16), real=False)[0]) == 256
    # sizes differ: in the 16 x 16 layer, row or column -4 of the 8 x 8 shared grid has no conjugate there
    # (15 frequencies), the other 49 pair up but for (0, 0)
    assert len(_distinct_frequencies(8, 8, (16, 16), (8, 8), real=True)[0]) == 15 + 24 + 1


def test_rank_deficient_frequencies_drop_null_directions():
    rng = np.random.default_rng(7)
    a = rng.standard_normal((100, 3, 4, 4))
    a = np.concatenate([a, a[:, :1] - a[:, 1:2]], axis=1)  # a fourth channel in the span of the others
    b = a[:, :2] + rng.standard_normal((100, 2, 4, 4))
    r = analysis.dft_cca(a, b)
    np.testing.assert_allclose(r.per_frequency, per_frequency_loop(a, b), atol=1e-9)
    assert r.rho.shape == (4 * 4 * 2,)


def test_float32_and_torch_paths(monkeypatch):
    a, b = shift_closed(8)
    exact = analysis.dft_cca(a, b).per_frequency
    single = analysis.dft_cca(a.astype(np.float32), b.astype(np.float32)).per_frequency
    np.testing.assert_allclose(single, exact, atol=1e-5)
    monkeypatch.setattr(analysis.measures.checks, "CPU_TENSORS_AS_NUMPY", False)  # torch's own code path, on the CPU
    np.testing.assert_allclose(analysis.dft_cca(torch.tensor(a), torch.tensor(b)).per_frequency, exact, atol=1e-12)
    single = analysis.dft_cca(torch.tensor(a).float(), torch.tensor(b).float()).per_frequency
    np.testing.assert_allclose(single, exact, atol=1e-5)


def test_read_only_and_strided_numpy_input(recwarn):
    a, b = shift_closed(9)
    exact = analysis.dft_cca(a, b).per_frequency
    frozen = a.copy()
    frozen.flags.writeable = False
    strided = np.ascontiguousarray(b.transpose(0, 1, 3, 2)).transpose(0, 1, 3, 2)  # same values, other memory order
    np.testing.assert_allclose(analysis.dft_cca(frozen, strided).per_frequency, exact, atol=1e-12)
    assert not recwarn.list  # the FFT's zero-copy view of the input neither warns nor writes


def test_positions_as_samples_pairs_the_same_image_and_position_across_layers():
    rng = np.random.default_rng(9)
    a = rng.standard_normal((5, 3, 4, 4))
    every = analysis.positions_as_samples(a)
    assert every.shape == (80, 3)
    np.testing.assert_array_equal(every[4 * 4 + 1 * 4 + 2], a[1, :, 1, 2])  # image 1, position (1, 2)
    b = a * 2 + 1  # another "network": the same positions must be drawn
    some_a, some_b = analysis.positions_as_samples(a, 3, seed=1), analysis.positions_as_samples(b, 3, seed=1)
    assert some_a.shape == (15, 3)
    np.testing.assert_allclose(some_b, some_a * 2 + 1)
    assert {tuple(r) for r in some_a} <= {tuple(r) for r in every}
    assert len({tuple(r) for r in some_a[:3]}) == 3  # distinct positions within an image
    assert not np.array_equal(analysis.positions_as_samples(a, 3, seed=2), some_a)
    with pytest.raises(ValueError, match="conv activations"):
        analysis.positions_as_samples(a[:, :, 0])
