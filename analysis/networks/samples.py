"""A network's layers recorded as (samples, neurons) arrays the way the papers compare conv layers: each channel
a neuron, each (image, position) a sample, a few positions drawn per image, without ever holding a whole conv
layer; the same (image, position) pairs in every network and every layer of one spatial size.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch
from torch import nn

from ..measures.conv import positions_as_samples
from .hooks import iter_activations


@dataclass(frozen=True)
class Samples:
    """A network's layers on n images. `positions`: conv layers as (n * k, channels), k positions of each image
    (image-major, as `positions_as_samples` gives them), other layers (n, features) as they are;
    `channel_means`: conv layers averaged over all positions (n, channels), other layers as they are;
    `per_image`: k for each conv layer, 1 for the others."""

    positions: dict[str, np.ndarray]
    channel_means: dict[str, np.ndarray]
    per_image: dict[str, int]

    def subset(self, n_images: int | None = None, per_image: int | None = None) -> Samples:
        """The same samples restricted to the first `n_images` images and, of each conv layer, the first
        `per_image` positions drawn per image (equal to drawing that many in the first place)."""
        keep = {name: k if per_image is None else min(per_image, k) for name, k in self.per_image.items()}
        positions = {name: np.ascontiguousarray(x.reshape(-1, self.per_image[name], x.shape[1])[:n_images, : keep[name]]).reshape(-1, x.shape[1])
                     for name, x in self.positions.items()}
        return Samples(positions, {name: x[:n_images] for name, x in self.channel_means.items()}, keep)


def sample_layers(
    model: nn.Module, inputs: torch.Tensor, layers: Sequence[str], per_image: int | None, seed: int = 0,
    batch_size: int = 500, device: torch.device | str | None = None,
) -> Samples:
    """`Samples` of `layers` of `model` on `inputs` (n, ...), recorded batch by batch in eval mode.

    Conv outputs (b, c, h, w) keep `per_image` positions of each image (None: all), drawn by
    `positions_as_samples` for the whole set of n images: the result equals `positions_as_samples` of the whole
    layer with `seed`, and every layer of the same spatial size, in any network, is sampled at the same
    (image, position) pairs.
    """
    if per_image is not None and per_image < 1:
        raise ValueError(f"per_image must be at least 1 position (or None: all), got {per_image}")
    n = len(inputs)
    if n == 0:
        raise ValueError("no images to record activations on")
    positions: dict[str, list[np.ndarray]] = {name: [] for name in layers}
    means: dict[str, list[np.ndarray]] = {name: [] for name in layers}
    kept: dict[str, int] = {}
    batches = [inputs[i : i + batch_size] for i in range(0, n, batch_size)]
    start = 0
    for batch, acts in zip(batches, iter_activations(model, batches, layers, device)):
        for name, a in acts.items():
            a = a.float().cpu().numpy()
            if a.ndim == 4:
                b, c, h, w = a.shape
                chosen = _drawn_positions(n, h, w, per_image, seed)[start : start + b]
                flat = a.reshape(b, c, h * w)
                positions[name].append(np.take_along_axis(flat, chosen[:, None, :], axis=2).transpose(0, 2, 1).reshape(-1, c))
                means[name].append(flat.mean(axis=2))
                kept[name] = chosen.shape[1]
            else:
                positions[name].append(a)
                means[name].append(a)
                kept[name] = 1
        start += len(batch)
    return Samples({k: np.concatenate(v) for k, v in positions.items()}, {k: np.concatenate(v) for k, v in means.items()}, kept)


@lru_cache(maxsize=8)
def _drawn_positions(n: int, h: int, w: int, per_image: int | None, seed: int) -> np.ndarray:
    """The positions (n, k) that `positions_as_samples` draws for n images of h x w: it is applied to a map
    holding each position's index, so that the draw is its own. Cached (read-only): every network of a study
    is sampled at the same positions."""
    index = np.broadcast_to(np.arange(h * w, dtype=np.int32).reshape(1, 1, h, w), (n, 1, h, w))
    picks = positions_as_samples(index, per_image, seed).reshape(n, -1)
    picks.flags.writeable = False
    return picks
