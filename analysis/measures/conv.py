"""Convolutional layers: DFT-CCA (per spatial frequency) and reshaping to (n, features)."""
from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Literal

import numpy as np

from .cca import cross, decompose
from .checks import Array, as_tensor, is_complex, is_torch, like, mean64, warn_if_saturated
from .protocol import Measure
from .threads import parallel_map, pieces, worth_splitting


@dataclass(frozen=True)
class DFTCCAResult:
    """Canonical correlations of two conv layers, frequency by frequency.

    `rho`: every frequency's coefficients together, descending (as many as CCA on the flattened layers
    gives, when the data are translation invariant); `per_frequency` (h, w, k): each frequency's
    coefficients, descending, 0 where that frequency has fewer than k directions.
    """

    rho: np.ndarray
    per_frequency: np.ndarray

    @property
    def mean(self) -> float:
        """Mean canonical correlation over all frequencies: the similarity, in [0, 1]."""
        return float(self.rho.mean())

    @property
    def weights(self) -> np.ndarray:
        """Uniform weights over `rho`, as for CCA."""
        return np.full(len(self.rho), 1.0 / len(self.rho))

    def __float__(self) -> float:
        return self.mean


def dft_cca(a, b) -> DFTCCAResult:
    """DFT-CCA (Raghu et al. 2017, sec. 3.1; similarity) of conv activations a, b (n, channels, height, width).

    A 2-D DFT over the spatial axes block-diagonalises the covariance of translation-invariant data, so CCA
    splits into one (complex) CCA per frequency; the coefficients then equal CCA on the flattened layers.
    Layers of different spatial size are compared on the low frequencies both have; a fully connected layer
    (n, d) counts as a conv layer of d channels at one position, so against a conv layer only its mean over
    positions (frequency 0) enters. All frequencies are solved in batched computations (`cca.decompose` on a
    stack; on the CPU, one piece of the stack per core); for real input, frequencies (u, v) and (-u, -v) are
    complex conjugates with the same coefficients, so each such pair is solved once. numpy or torch (any
    device), float32 for float32 input, like `cca`.
    """
    return DFT_CCA.pair(as_conv(a), as_conv(b))


def as_conv(a):
    """A layer as conv activations: (n, c, h, w) as it is, a fully connected (n, d) as (n, d, 1, 1)."""
    return a.reshape(*a.shape, 1, 1) if getattr(a, "ndim", None) == 2 else a


def _dft_pair(a: Array, b: Array) -> DFTCCAResult:
    """DFT-CCA of two validated conv layers."""
    h, w = min(a.shape[2], b.shape[2]), min(a.shape[3], b.shape[3])
    k = min(a.shape[1], b.shape[1])
    warn_if_saturated(len(a), a.shape[1], b.shape[1])
    real = not (is_complex(a) or is_complex(b))
    solved, source = _distinct_frequencies(h, w, a.shape[2:], b.shape[2:], real)
    threads = worth_splitting(a, b)  # cores take a layer each, then a piece of the frequencies each
    sa, sb = parallel_map(partial(_frequency_stack, frequencies=solved), (a, b), single_blas=False, threads=threads)
    parts = parallel_map(lambda s: _frequency_cca(sa[s], sb[s]), pieces(len(solved), 8) if threads else [slice(None)])
    rho = np.concatenate([p[0] for p in parts]).clip(0, 1)[:, :k]  # (len(solved), <= k)
    found = np.concatenate([p[1] for p in parts])[source]  # each frequency's number of coefficients
    per_frequency = np.zeros((h * w, k))
    per_frequency[:, : rho.shape[1]] = rho[source]
    per_frequency[np.arange(k) >= found[:, None]] = 0.0
    everything = per_frequency[np.arange(k) < found[:, None]]
    return DFTCCAResult(np.sort(everything)[::-1], per_frequency.reshape(h, w, k))


DFT_CCA = Measure("dft_cca", lambda x: x, _dft_pair, symmetric=True, ndim=4)


def _frequency_cca(sa: Array, sb: Array) -> tuple[np.ndarray, np.ndarray]:
    """Canonical correlations (m, min(c_a, c_b)) at each of m frequencies, and how many each has (m,)."""
    ba, bb = decompose(sa, centred=True), decompose(sb, centred=True)
    return np.linalg.svd(cross(ba, bb), compute_uv=False), np.minimum(ba.rank, bb.rank)


def _distinct_frequencies(h: int, w: int, size_a, size_b, real: bool) -> tuple[np.ndarray, np.ndarray]:
    """The h x w lowest signed frequencies (r, c), flattened: those to solve (n_solved, 2), and each one's row in them.

    With real input, frequencies f and -f carry conjugate data (the same canonical correlations) when -f is
    also kept and stands for the same DFT coefficients in both layers; such a pair is solved once, preferring
    the member with c >= 0, which a real FFT stores.
    """
    fr, fc = (g.ravel() for g in np.meshgrid(np.fft.fftfreq(h, 1 / h), np.fft.fftfreq(w, 1 / w), indexing="ij"))
    fr, fc = fr.astype(int), fc.astype(int)

    def key(r, c):  # the DFT coefficient (r, c) stands for, in each layer
        return tuple(zip(r % size_a[0], c % size_a[1], r % size_b[0], c % size_b[1]))

    own = np.arange(h * w)
    index = dict(zip(key(fr, fc), own))
    partner = np.array([index.get(k, i) for i, k in zip(own, key(-fr, -fc))])
    # rank each frequency by (c < 0, position) and let the better of each pair stand for both
    better = (fc < 0) * h * w + own
    representative = np.where(real & (better[partner] < better), partner, own)
    solved, source = np.unique(representative, return_inverse=True)
    return np.stack([fr[solved], fc[solved]], axis=1), source


def _frequency_stack(x: Array, frequencies: np.ndarray) -> Array:
    """x's 2-D DFT over its spatial axes at the given signed frequencies (m, 2), centred over samples, as a
    stack (m, n, channels).

    Centring commutes with the DFT: the mean image's spectrum is subtracted. Real input: from the half
    spectrum a real FFT computes, X(r, c) = conj X(-r, -c) for the other half.
    """
    import torch

    n, c, height, width = x.shape
    r, col = frequencies[:, 0] % height, frequencies[:, 1] % width
    real = not is_complex(x)
    transform = partial(torch.fft.rfft2 if real else torch.fft.fft2, dim=(2, 3))
    # numpy layers by torch's CPU FFT too: there (MKL, on x86) batched small transforms take half scipy's time
    fft = transform if is_torch(x) else lambda block: transform(as_tensor(block)).numpy()
    mirrored = real & (col > width // 2)
    r, col = np.where(mirrored, -r % height, r), np.where(mirrored, -col % width, col)
    f_mean = fft(like(mean64(x, 0), x)[None]).reshape(c, -1)
    bins = f_mean.shape[1]
    flat = r * (bins // height) + col
    if is_torch(x):
        flat, mirrored = torch.as_tensor(flat, device=x.device), torch.as_tensor(mirrored, device=x.device)
        stack = fft(x).reshape(n * c, bins).T[flat].reshape(-1, n, c) - f_mean[:, flat].T[:, None, :]
        return torch.where(mirrored[:, None, None], stack.conj(), stack).contiguous()
    # a few images at a time (~2 MiB of spectrum), so each block's spectrum is gathered frequencies-first while
    # in cache, and nothing large is allocated but the stack (in threads, allocating and freeing large arrays stalls)
    per_block = max(1, (2 << 20) // (f_mean.itemsize * c * bins))
    offset = np.tile(f_mean[:, flat].T, per_block)  # (m, per_block * c): the mean image's spectrum, repeated
    stack = np.empty((len(flat), n * c), f_mean.dtype)
    for start in range(0, n, per_block):
        spectrum = fft(x[start : start + per_block]).reshape(-1, bins)
        rows = slice(start * c, start * c + len(spectrum))
        np.subtract(spectrum[:, flat].T, offset[:, : len(spectrum)], out=stack[:, rows])
    stack[mirrored] = stack[mirrored].conj()
    return stack.reshape(-1, n, c)


Reduction = Literal["flatten", "mean"]


def check_reduction(reduce: str) -> None:
    """A clear ValueError unless `reduce` names a way to turn a conv layer into (n, features)."""
    if reduce not in ("flatten", "mean"):
        raise ValueError(f"reduce must be 'flatten' or 'mean', got {reduce!r}")


def reduce_conv(a: Array, reduce: Reduction) -> Array:
    """Conv activations (n, c, h, w), numpy or torch, as (n, c*h*w) ("flatten": every (channel, position) a
    feature) or (n, c) ("mean": averaged over positions), in their library and on their device."""
    check_reduction(reduce)
    return a.reshape(len(a), -1) if reduce == "flatten" else a.mean((2, 3))


def flatten(a) -> np.ndarray:
    """Conv activations (n, c, h, w) as a numpy array (n, c*h*w): every (channel, position) a feature."""
    return reduce_conv(np.asarray(a.detach().cpu() if is_torch(a) else a), "flatten")


def average_pool(a) -> np.ndarray:
    """Conv activations (n, c, h, w) averaged over positions, as a numpy array (n, c)."""
    return reduce_conv(np.asarray(a.detach().cpu() if is_torch(a) else a), "mean")


def positions_as_samples(a, per_image: int | None = None, seed: int = 0) -> np.ndarray:
    """Conv activations (n, c, h, w) as (n * k, c): each channel a neuron, each (image, position) a sample,
    as the SVCCA paper treats conv layers. `per_image`: k positions drawn per image (None: all h * w); the
    draw depends only on (n, h, w) and `seed`, so layers of the same shape, e.g. of two networks, are sampled
    at the same (image, position) pairs. Rows are image-major."""
    a = np.asarray(a.detach().cpu() if is_torch(a) else a)
    if a.ndim != 4:
        raise ValueError(f"expected conv activations (n, channels, height, width), got shape {a.shape}")
    n, c, h, w = a.shape
    flat = a.reshape(n, c, h * w)
    if per_image is None or per_image >= h * w:
        return flat.transpose(0, 2, 1).reshape(-1, c)
    if per_image < 1:
        raise ValueError(f"per_image must be at least 1 position, got {per_image}")
    rng = np.random.default_rng(seed)
    picks = np.argsort(rng.random((n, h * w)), axis=1)[:, :per_image]  # k distinct positions per image
    return np.take_along_axis(flat, picks[:, None, :], axis=2).transpose(0, 2, 1).reshape(-1, c)

