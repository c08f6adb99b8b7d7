"""Recording named layers of any torch module with forward hooks, batch by batch, in eval mode."""
from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from .models import module


@contextmanager
def hooked(model: nn.Module, layers: Sequence[str]) -> Iterator[dict[str, torch.Tensor]]:
    """Within the block, each forward pass of `model` leaves the outputs of `layers` in the yielded dict
    (the first element of a tuple output, as an LSTM returns), detached; hooks are removed afterwards."""
    store: dict[str, torch.Tensor] = {}

    def capture(name: str):
        def hook(_module, _inputs, output):
            store[name] = (output[0] if isinstance(output, (tuple, list)) else output).detach()

        return hook

    handles = [module(model, name).register_forward_hook(capture(name)) for name in layers]
    try:
        yield store
    finally:
        for handle in handles:
            handle.remove()


@contextmanager
def evaluating(*models: nn.Module) -> Iterator[None]:
    """Eval mode and no gradients within the block; each model's previous mode is restored afterwards."""
    modes = [(m, m.training) for m in models]
    try:
        for m in models:
            m.eval()
        with torch.no_grad():
            yield
    finally:
        for m, training in modes:
            m.train(training)


def model_device(model: nn.Module) -> torch.device | str:
    """Where `model`'s first parameter lives (the CPU for a model without parameters)."""
    parameter = next(model.parameters(), None)
    return parameter.device if parameter is not None else "cpu"


def batch_inputs(batch) -> torch.Tensor:
    """The inputs of a batch: the first element of an (inputs, labels, ...) tuple, or the batch itself."""
    return batch[0] if isinstance(batch, (tuple, list)) else batch


def iter_activations(
    model: nn.Module, data: Iterable, layers: Sequence[str], device: torch.device | str | None = None, pool: int | None = None
) -> Iterator[dict[str, torch.Tensor]]:
    """For each batch of `data` ((inputs, ...) tuples or inputs), the outputs of `layers` on it.

    `pool`: average-pool conv outputs `(b, c, h, w)` to `(b, c, pool, pool)` (adaptive), a common way to
    compare conv layers with fewer features than samples.
    """
    layers = list(layers)
    if not layers:
        raise ValueError("no layers to record")
    device = model_device(model) if device is None else device
    with evaluating(model), hooked(model, layers) as store:
        for batch in data:
            store.clear()
            model(batch_inputs(batch).to(device))
            if pool is not None:
                yield {k: nn.functional.adaptive_avg_pool2d(v, pool) if v.ndim == 4 else v for k, v in store.items()}
            else:
                yield dict(store)


def record(
    model: nn.Module,
    data: Iterable,
    layers: Sequence[str],
    *,
    device: torch.device | str | None = None,
    pool: int | None = None,
    progress: bool | None = None,
) -> dict[str, np.ndarray]:
    """Activations of `layers` over all of `data` as float32 numpy arrays, samples first: `(n, features)`
    for fully connected layers, `(n, channels, height, width)` for conv layers."""
    parts: dict[str, list[np.ndarray]] = {name: [] for name in layers}
    total = len(data) if hasattr(data, "__len__") else None
    bar = tqdm(iter_activations(model, data, layers, device, pool), total=total, desc="recording", disable=progress is False, delay=0 if progress else 2.0)
    for batch in bar:
        for name, value in batch.items():
            parts[name].append(value.float().cpu().numpy())
    if not all(parts.values()):
        raise ValueError("no data to record activations on")
    return {name: np.concatenate(chunks) for name, chunks in parts.items()}
