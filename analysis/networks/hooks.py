"""Forward hooks on named layers of any torch module: capture a layer's output, replace it by a function of
it, or keep it attached to the graph for gradients; recording layers over a dataset, batch by batch.

Eval mode and gradients are separate choices (`evaluating(..., grad=...)`): activation maximisation needs
gradients to the input of a network in eval mode.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager, nullcontext

import numpy as np
import torch
from torch import nn

from ..measures.conv import Reduction
from ..measures.progress import progress_bar
from ..measures.stream import GridStats
from .models import module


def _output(output):
    """The tensor a layer outputs: the first element of a tuple output, as an LSTM returns."""
    return output[0] if isinstance(output, (tuple, list)) else output


@contextmanager
def capture(model: nn.Module, layers: Sequence[str], detach: bool = True) -> Iterator[dict[str, torch.Tensor]]:
    """Within the block, each forward pass of `model` leaves the outputs of `layers` in the yielded dict;
    `detach=False` keeps them in the graph (for gradients). Hooks are removed afterwards."""
    store: dict[str, torch.Tensor] = {}

    def hook_for(name: str):
        def hook(_module, _inputs, output):
            out = _output(output)
            store[name] = out.detach() if detach else out

        return hook

    handles = [module(model, name).register_forward_hook(hook_for(name)) for name in layers]
    try:
        yield store
    finally:
        for handle in handles:
            handle.remove()


@contextmanager
def replacing(model: nn.Module, replacements: Mapping[str, Callable[[torch.Tensor], torch.Tensor]]) -> Iterator[None]:
    """Within the block, each layer named in `replacements` outputs `fn(its output)` instead, and the rest of
    the network runs on that (e.g. a projection onto a few directions). Hooks are removed afterwards."""
    def hook_for(fn):
        def hook(_module, _inputs, output):
            if isinstance(output, tuple):
                return (fn(output[0]), *output[1:])
            return fn(output)

        return hook

    handles = [module(model, name).register_forward_hook(hook_for(fn)) for name, fn in replacements.items()]
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()


@contextmanager
def evaluating(*models: nn.Module, grad: bool = False) -> Iterator[None]:
    """Eval mode within the block, without gradients unless `grad`; each model's mode is restored afterwards."""
    modes = [(m, m.training) for m in models]
    try:
        for m in models:
            m.eval()
        with nullcontext() if grad else torch.no_grad():
            yield
    finally:
        for m, training in modes:
            m.train(training)


def model_device(model: nn.Module) -> torch.device | str:
    """Where `model`'s first parameter lives (the CPU for a model without parameters)."""
    parameter = next(model.parameters(), None)
    return parameter.device if parameter is not None else "cpu"


def batch_inputs(batch) -> torch.Tensor:
    """The inputs of a batch: the first element of an (inputs, targets, ...) tuple, or the batch itself."""
    return batch[0] if isinstance(batch, (tuple, list)) else batch


def iter_activations(
    model: nn.Module, data: Iterable, layers: Sequence[str], device: torch.device | str | None = None,
    pool: int | None = None,
) -> Iterator[dict[str, torch.Tensor]]:
    """For each batch of `data` ((inputs, ...) tuples or inputs), the outputs of `layers` on it, in eval mode
    without gradients. `pool`: average-pool conv outputs (b, c, h, w) to (b, c, pool, pool) (adaptive)."""
    layers = list(layers)
    if not layers:
        raise ValueError("no layers to record")
    device = model_device(model) if device is None else device
    with evaluating(model), capture(model, layers) as store:
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
    """Activations of `layers` over all of `data` as float32 numpy arrays, samples first: (n, features) for
    fully connected layers, (n, channels, height, width) for conv layers, (n, time, features) for recurrent
    ones (`steps_as_samples` turns time steps into samples)."""
    parts: dict[str, list[np.ndarray]] = {name: [] for name in layers}
    total = len(data) if hasattr(data, "__len__") else None
    batches = iter_activations(model, data, layers, device, pool)
    for batch in progress_bar(batches, total=total, desc="recording", disable=progress is False, delay=0 if progress else 2.0):
        for name, value in batch.items():
            parts[name].append(value.float().cpu().numpy())
    if not all(parts.values()):
        raise ValueError("no data to record activations on")
    return {name: np.concatenate(chunks) for name, chunks in parts.items()}


def steps_as_samples(a: np.ndarray) -> np.ndarray:
    """A recurrent layer's activations (n, time, features) as (n * time, features): each time step a sample."""
    if a.ndim != 3:
        raise ValueError(f"expected a recurrent layer's activations (n, time, features), got shape {a.shape}")
    return a.reshape(-1, a.shape[-1])


def stream_stats(
    model: nn.Module,
    data: Iterable,
    rows: Sequence[str],
    cols: Sequence[str] | None = None,
    *,
    other: nn.Module | None = None,
    reduce: Reduction = "flatten",
    device=None,
    progress: bool | None = None,
) -> GridStats:
    """Run `data` (batches, e.g. a DataLoader; of (inputs, ...) tuples or inputs) through `model` and
    accumulate `GridStats` for its layers `rows` against `cols` (of `other` if given, else of `model`; None:
    `rows` against themselves), holding one batch of activations at a time.

    Layers are captured in eval mode without gradients (modes and hooks are restored afterwards); `device`:
    where the inputs are sent (default: the device of each model's first parameter).
    """
    if other is not None and cols is None:
        raise ValueError("pass cols, the layers of `other` to compare with, along with other")
    stats = GridStats(rows, cols, reduce)
    batches = progress_bar(data, desc="streaming statistics", disable=progress is False, delay=0 if progress else 2.0)
    if other is None:
        for acts in iter_activations(model, batches, list(dict.fromkeys([*rows, *(cols or ())])), device):
            stats.update({name: acts[name] for name in rows}, None if cols is None else {name: acts[name] for name in cols})
        return stats
    with evaluating(model, other), capture(model, rows) as found_rows, capture(other, cols) as found_cols:
        for batch in batches:
            inputs = batch_inputs(batch)
            for net in (model, other):
                net(inputs.to(model_device(net) if device is None else device))
            stats.update(dict(found_rows), dict(found_cols))
    return stats
