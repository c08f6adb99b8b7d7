"""Compression by projection (SVCCA paper, Raghu et al. 2017, its dimensionality and compression experiments):
replace a layer's output by its projection onto k directions fitted on training images, let the rest of the network
run on it, and measure test accuracy.

Every projection is an affine map `x -> mean + (x - mean) @ matrix` on a layer's neurons, with `matrix` (d, d)
idempotent of rank k, fitted on training samples x (n, d): the top-k SVCCA directions of x against the same layer
of another network, the top-k principal directions, k random orthonormal directions, or the k highest-norm neurons
(the others set to their mean). A conv layer follows the paper's convention: each channel a neuron, fitted on
(image, position) samples (`positions_as_samples`) and applied at every position.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
from threadpoolctl import threadpool_limits
from torch import nn

from ..measures.cca import svcca
from ..measures.checks import as_array, as_pair
from ..networks.data import Split
from ..networks.hooks import capture, evaluating, model_device, replacing
from .neurons import top_units

#: projections compared, in the order they are plotted
METHODS = ("svcca", "pca", "random", "neurons")


@dataclass(frozen=True)
class Projection:
    """The affine projection `x -> mean + (x - mean) @ matrix` of a layer's d neurons: `mean` (d,), `matrix`
    (d, d), float64. Called on a layer's output, a torch tensor (n, d) or a conv layer's (n, d, h, w), it acts on
    the neurons (the channels, at every position) and returns a tensor of the same shape, dtype and device."""

    mean: np.ndarray
    matrix: np.ndarray

    @property
    def rank(self) -> int:
        """Number of directions kept."""
        return int(np.linalg.matrix_rank(self.matrix))

    def __call__(self, out: torch.Tensor) -> torch.Tensor:
        """The projected output."""
        d = len(self.mean)
        if out.ndim not in (2, 4) or out.shape[1] != d:
            raise ValueError(f"expected a layer's output (n, {d}) or (n, {d}, height, width), got shape {tuple(out.shape)}")
        # x @ matrix + (mean - mean @ matrix): one fused product, and exactly x where matrix is exactly the identity
        weight = torch.as_tensor(self.matrix.T, dtype=out.dtype, device=out.device)
        bias = torch.as_tensor(self.mean - self.mean @ self.matrix, dtype=out.dtype, device=out.device)
        return nn.functional.linear(out.movedim(1, -1), weight, bias).movedim(-1, 1)


def svcca_projection(x, y, k: int, keep: int | float = 0.99) -> Projection:
    """Projection of x (n, d_x) onto its top-k SVCCA directions against y (n, d_y), the same samples in another
    network: x is rebuilt from its k canonical variates of highest correlation by least squares on these samples
    (an oblique projection, since the directions are not orthogonal in neuron space). `keep`: as in `svcca`."""
    x, y = as_pair(x, y)
    result = svcca(x, y, keep=keep)
    if not 1 <= k <= len(result.rho):
        raise ValueError(f"k must lie in [1, {len(result.rho)}] (the SVCCA directions found with keep={keep}), got {k}")
    return Projection(result.x_mean, _rebuilt(x - result.x_mean, result.x_coef[:, :k]))


def pca_projection(x, k: int) -> Projection:
    """Orthogonal projection of x (n, d) onto its top-k principal directions (of the centred samples)."""
    x = as_array(x)
    _check_k(k, x.shape[1])
    mean = x.mean(axis=0)
    v = np.linalg.svd(x - mean, full_matrices=False)[2][:k].T
    return Projection(mean, v @ v.T)


def random_projection(x, k: int, seed: int = 0, rebuild: bool = False) -> Projection:
    """Projection of x (n, d) onto k random orthonormal directions (uniform on the Grassmannian, from `seed`):
    orthogonal, or with `rebuild` x rebuilt from its k coordinates by least squares, as `svcca_projection` does."""
    x = as_array(x)
    _check_k(k, x.shape[1])
    mean = x.mean(axis=0)
    q = np.linalg.qr(np.random.default_rng(seed).standard_normal((x.shape[1], k)))[0]
    return Projection(mean, _rebuilt(x - mean, q) if rebuild else q @ q.T)


def neuron_projection(x, k: int, by: Literal["norm", "variance"] = "norm") -> Projection:
    """Keep the k neurons of x (n, d) of largest raw activation norm (`by="norm"`, the SVCCA paper's highest
    activation neurons, `neurons.top_units`) or variance, and set the others to their mean over x."""
    x = as_array(x)
    _check_k(k, x.shape[1])
    if by == "norm":
        kept = top_units(x, k)
    elif by == "variance":
        kept = np.argsort(-x.var(axis=0), kind="stable")[:k]
    else:
        raise ValueError(f"by must be 'norm' or 'variance', got {by!r}")
    mask = np.zeros(x.shape[1])
    mask[kept] = 1.0
    return Projection(x.mean(axis=0), np.diag(mask))


def projected_accuracy(
    model: torch.nn.Module, split: Split, layer: str, projections: Sequence[Projection], max_floats: int = 2**24,
) -> np.ndarray:
    """Test accuracy (len(projections),) of `model` on `split` with `layer`'s output replaced by each projection.

    One forward pass per batch of images serves every projection: the replacing hook stacks the projected outputs
    along the batch axis, so the layers below `layer` run once and the rest of the network on each projection.
    `max_floats` bounds the stacked output's size (the image batch is chosen to fit).
    """
    if not projections:
        raise ValueError("no projections to evaluate")
    device = model_device(model)
    batch = max(1, max_floats // (len(projections) * _layer_size(model, split, layer)))
    with evaluating(model), replacing(model, {layer: lambda out: torch.cat([p(out) for p in projections])}):
        hits = np.zeros(len(projections), dtype=np.int64)
        for x, y in split.batches(batch):
            logits = model(x.to(device)).reshape(len(projections), len(y), -1)
            hits += (logits.argmax(-1).cpu() == y).sum(dim=1).numpy()
    return hits / len(split)


@dataclass(frozen=True)
class Curves:
    """Test accuracy against the number of kept dimensions `ks` for one layer of one network: `accuracy[method]`
    (len(ks),), NaN where a method cannot keep k (SVCCA finds fewer directions); `full`, the unprojected network's."""

    layer: str
    width: int
    ks: tuple[int, ...]
    accuracy: dict[str, np.ndarray]
    full: float

    def needed(self, method: str, margin: float) -> float:
        """The smallest k in `ks` at which `method` comes within `margin` of the full accuracy (NaN if none)."""
        return needed_k(self.ks, self.accuracy[method], self.full, margin)

    def at(self, method: str, k: float) -> float:
        """`method`'s accuracy at k, one of `ks`; NaN where k is NaN (a `needed` k that does not exist)."""
        if np.isnan(k):
            return float("nan")
        if k not in self.ks:
            raise ValueError(f"k = {k:g} is not one of the measured ks {self.ks}")
        return float(self.accuracy[method][self.ks.index(int(k))])


def accuracy_curves(
    model: torch.nn.Module, split: Split, layer: str, x, y, ks: Sequence[int], *, keep: int | float = 0.99,
    seed: int = 0, draws: int = 1, variants: bool = False,
) -> Curves:
    """`Curves` of `layer` of `model` on `split` for every method of `METHODS`, each projection fitted on the
    training samples x (n, d) of that layer and y (n, d_y) of the same layer of another network (for SVCCA).
    `ks` above d are dropped; random directions are averaged over `draws` draws (seeds `seed`, `seed` + 1, ...).
    `variants`: also "svcca keep 0.95", "random rebuilt" (least squares, as SVCCA) and "neurons by variance"."""
    x, y = as_pair(x, y)
    d = x.shape[1]
    ks = tuple(int(k) for k in ks if 1 <= k <= d)
    # BLAS on one thread: the products are thin (d << n), and on a busy machine a multi-threaded BLAS waits for its
    # descheduled threads (see `neurons.compare_networks`)
    with threadpool_limits(limits=1, user_api="blas"):
        n_svcca = len(svcca(x, y, keep=keep).rho)
        fits: dict[str, list[Projection | None]] = {
            "svcca": [svcca_projection(x, y, k, keep) if k <= n_svcca else None for k in ks],
            "pca": [pca_projection(x, k) for k in ks],
            **{f"random {i}": [random_projection(x, k, seed + i) for k in ks] for i in range(draws)},
            "neurons": [neuron_projection(x, k) for k in ks],
        }
        if variants:
            n_loose = len(svcca(x, y, keep=0.95).rho)
            fits["svcca keep 0.95"] = [svcca_projection(x, y, k, 0.95) if k <= n_loose else None for k in ks]
            fits |= {f"random rebuilt {i}": [random_projection(x, k, seed + i, rebuild=True) for k in ks]
                     for i in range(draws)}
            fits["neurons by variance"] = [neuron_projection(x, k, by="variance") for k in ks]
    identity = Projection(np.zeros(d), np.eye(d))
    found = [p for ps in fits.values() for p in ps if p is not None]
    scores = iter(projected_accuracy(model, split, layer, [identity, *found]))
    full = float(next(scores))
    measured = {name: np.array([np.nan if p is None else next(scores) for p in ps]) for name, ps in fits.items()}
    accuracy = {name: v for name, v in measured.items() if not name.startswith(("random ", "random rebuilt "))}
    accuracy["random"] = np.mean([measured[f"random {i}"] for i in range(draws)], axis=0)
    if variants:
        accuracy["random rebuilt"] = np.mean([measured[f"random rebuilt {i}"] for i in range(draws)], axis=0)
    return Curves(layer, d, ks, accuracy, full)


def needed_k(ks: Sequence[int], accuracy, full: float, margin: float) -> float:
    """The smallest of `ks` whose `accuracy` (len(ks),) is at least `full` - `margin` (NaN if none is)."""
    accuracy = np.asarray(accuracy, dtype=float)
    if accuracy.shape != (len(ks),):
        raise ValueError(f"accuracy must have one value per k ({len(ks)}), got shape {accuracy.shape}")
    reached = [k for k, a in zip(ks, accuracy) if a >= full - margin]
    return float(min(reached)) if reached else float("nan")


def _rebuilt(xc: np.ndarray, w: np.ndarray) -> np.ndarray:
    """The projection matrix (d, d) that rebuilds centred xc (n, d) from its coordinates z = xc @ w (n, k) by least
    squares, w @ argmin_c |z c - xc|: idempotent, since it leaves z unchanged."""
    return w @ np.linalg.lstsq(xc @ w, xc, rcond=None)[0]


def _check_k(k: int, d: int) -> None:
    if not 1 <= k <= d:
        raise ValueError(f"k must lie in [1, {d}] (the layer's neurons), got {k}")


def _layer_size(model: torch.nn.Module, split: Split, layer: str) -> int:
    """Values per image in `layer`'s output (channels x positions of a conv layer)."""
    with evaluating(model), capture(model, [layer]) as found:
        model(split.inputs[:1].to(model_device(model)))
    return found[layer][0].numel()
