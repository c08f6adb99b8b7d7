"""Freeze training (SVCCA paper, Raghu et al. 2017, Sec. 4.1): freeze a network's layers one by one during
training, lowest first, and compare its test accuracy and cost with normal training's.

`freeze_schedule` gives the paper's linear regime (the k-th of L layers frozen at k/L of training), bottom-up or
top-down (the control), at any fractions; `matched_schedule` rescales a schedule's fractions until it saves as
much weight-gradient compute as another. `layer_macs` counts each layer's multiply-adds from its shapes and
`backward_saving` what a schedule saves of the backward pass; `step_seconds` measures it as wall time.
`compare_accuracy` holds a schedule's test accuracy against normal training's seed-to-seed spread.
"""
from __future__ import annotations

import copy
import math
import time
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from ..networks.data import load
from ..networks.hooks import evaluating
from ..networks.models import build_model, freeze, module
from ..networks.runs import TRAINING_THREADS, Run, RunConfig, optimizer, task_loss

Schedule = tuple[tuple[str, float], ...]  # (layer, fraction of training from which it is frozen), as RunConfig.freeze
ORDERS = ("bottom-up", "top-down")


def freeze_schedule(layers: Sequence[str], order: str = "bottom-up", fractions: Sequence[float] | None = None) -> Schedule:
    """Freeze `layers` (forward order, input first) one at a time: lowest first ("bottom-up", the paper's freeze
    training) or highest first ("top-down", the control). The k-th layer frozen is frozen at `fractions[k-1]`;
    default the paper's linear regime k/L for k = 1 ... L-1 (the L-th would be due at the end of training)."""
    if order not in ORDERS:
        raise ValueError(f"order must be one of {ORDERS}, got {order!r}")
    n = len(layers)
    fractions = [k / n for k in range(1, n)] if fractions is None else list(fractions)
    if len(fractions) > n:
        raise ValueError(f"{len(fractions)} fractions for {n} layers")
    if any(not 0 <= f <= 1 for f in fractions) or any(b < a for a, b in zip(fractions, fractions[1:])):
        raise ValueError(f"fractions must rise within [0, 1], got {fractions}")
    ordered = list(layers) if order == "bottom-up" else list(layers)[::-1]
    return tuple(zip(ordered, fractions))


def layer_macs(model: nn.Module, inputs: torch.Tensor, layers: Sequence[str] | None = None) -> dict[str, int]:
    """Multiply-adds per sample of each layer's conv and linear weights in the forward pass, from the shapes
    their outputs take on `inputs` (a batch, samples first); `layers` default `model.layers`. A weight's
    gradient costs as many multiply-adds, and so does the gradient with respect to its input. Batch norm and
    biases (a few operations per output) are not counted; a layer with other weights is an error."""
    layers = tuple(layers if layers is not None else model.layers)
    counts = dict.fromkeys(layers, 0)
    handles = []
    for name in layers:
        for sub in module(model, name).modules():
            if isinstance(sub, (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear)):
                def hook(m, _inputs, output, name=name):
                    # every output value is one dot product with a row of the weight (weight[0].numel() multiply-adds)
                    counts[name] += m.weight[0].numel() * output.numel() // len(output)
                handles.append(sub.register_forward_hook(hook))
            elif not isinstance(sub, (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)) and any(True for _ in sub.parameters(recurse=False)):
                raise ValueError(f"layer {name!r} has {type(sub).__name__} weights, whose multiply-adds are not counted")
    try:
        with evaluating(model):
            model(inputs)
    finally:
        for h in handles:
            h.remove()
    return counts


def phases(schedule: Schedule, steps: int | None = None) -> list[tuple[float, frozenset[str]]]:
    """The schedule as consecutive phases (fraction of training, layers frozen during it), summing to 1. With
    `steps`, a layer is frozen from step round(fraction * steps), as the trainer does."""
    start = {layer: (round(f * steps) / steps if steps else f) for layer, f in schedule}
    cuts = sorted({0.0, 1.0, *start.values()})
    return [(b - a, frozenset(layer for layer, s in start.items() if s <= a)) for a, b in zip(cuts, cuts[1:]) if b > a]


def backward_macs(macs: Mapping[str, int], frozen: Collection[str]) -> tuple[int, int]:
    """Multiply-adds per sample of the backward pass with `frozen` layers frozen: (weight gradients, input
    gradients). `macs`: `layer_macs`, in forward order. A layer's weight gradient is skipped when it is frozen;
    the gradient with respect to its input when no layer below it trains (autograd stops there)."""
    layers = list(macs)
    unknown = set(frozen) - set(layers)
    if unknown:
        raise ValueError(f"frozen layers {sorted(unknown)} are not among {layers}")
    weights = sum(m for layer, m in macs.items() if layer not in frozen)
    inputs = sum(macs[layer] for i, layer in enumerate(layers) if any(lower not in frozen for lower in layers[:i]))
    return weights, inputs


@dataclass(frozen=True)
class Saving:
    """What a freeze schedule saves over the whole of training, as fractions of normal training's multiply-adds
    (conv and linear weights): of the weight gradients (`weight_gradients`), of the whole backward pass with
    input gradients (`backward`), of a whole training step with its forward pass (`step`)."""

    weight_gradients: float
    backward: float
    step: float


def backward_saving(macs: Mapping[str, int], schedule: Schedule, steps: int | None = None) -> Saving:
    """`Saving` of `schedule` for a network whose layers cost `macs` (`layer_macs`, forward order); `steps`:
    the run's number of training steps, to round the freeze points as the trainer does."""
    forward = sum(macs.values())
    normal_w, normal_i = backward_macs(macs, ())
    w = i = 0.0
    for share, frozen in phases(schedule, steps):
        dw, di = backward_macs(macs, frozen)
        w, i = w + share * dw, i + share * di
    return Saving(1 - w / normal_w, 1 - (w + i) / (normal_w + normal_i),
                  1 - (forward + w + i) / (forward + normal_w + normal_i))


def matched_schedule(macs: Mapping[str, int], schedule: Schedule, saving: float, steps: int | None = None) -> Schedule:
    """`schedule`'s layers in its order, every fraction multiplied by one factor chosen so that it saves
    `saving` of the weight-gradient multiply-adds (`Saving.weight_gradients`, freeze points not rounded to
    steps). A ValueError when no factor keeping the fractions in [0, 1] reaches it."""
    total = sum(macs.values())
    frozen = sum(macs[layer] for layer, _ in schedule) / total  # the saving at factor 0 (all frozen from the start)
    slope = sum(macs[layer] * f for layer, f in schedule) / total  # saving = frozen - factor * slope
    top = 1 / max(f for _, f in schedule)
    if not frozen - top * slope <= saving <= frozen:
        raise ValueError(f"these layers in this order save between {frozen - top * slope:.3f} and {frozen:.3f} of the "
                         f"weight gradients, not {saving:.3f}")
    factor = (frozen - saving) / slope
    return tuple((layer, min(1.0, factor * f)) for layer, f in schedule)


def training_steps(run: Run) -> int:
    """How many optimizer steps `run` took (batches per epoch times epochs, as the trainer counts them)."""
    return math.ceil(len(run.data("train")) / run.config.batch_size) * run.config.epochs


def step_seconds(
    config: RunConfig, frozen_sets: Sequence[Collection[str]], steps: int = 5, rounds: int = 3, seed: int = 0,
) -> dict[frozenset[str], float]:
    """Measured wall time of one training step of `config`'s network (forward, backward and optimizer step on a
    batch of its training images, with the trainer's thread count) with each set of layers frozen: the median
    over `rounds` of the mean over `steps` steps. The sets take turns, so that a change in the machine's load
    touches all alike; the first step of each is not timed."""
    data = load(config.dataset, "train", n=config.batch_size, seed=config.subset_seed)
    torch.manual_seed(seed)
    base = build_model(config.model, data.shape, len(data.classes), config.width, **dict(config.options))
    nets = {}
    for layers in dict.fromkeys(frozenset(s) for s in frozen_sets):
        net = copy.deepcopy(base)
        freeze(net, layers)
        nets[layers] = (net, optimizer(config, net.parameters()))
    threads = torch.get_num_threads()
    torch.set_num_threads(TRAINING_THREADS)
    try:
        for net, opt in nets.values():
            _train_step(net, opt, data.inputs, data.targets)
        times: dict[frozenset[str], list[float]] = {layers: [] for layers in nets}
        for _ in range(rounds):
            for layers, (net, opt) in nets.items():
                start = time.perf_counter()
                for _ in range(steps):
                    _train_step(net, opt, data.inputs, data.targets)
                times[layers].append((time.perf_counter() - start) / steps)
    finally:
        torch.set_num_threads(threads)
    return {layers: float(np.median(t)) for layers, t in times.items()}


def _train_step(net: nn.Module, opt: torch.optim.Optimizer, x: torch.Tensor, y: torch.Tensor) -> None:
    net.train()
    loss = task_loss(net(x), y)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()


def schedule_seconds(schedule: Schedule, seconds: Mapping[frozenset[str], float], steps: int) -> float:
    """Wall time of `steps` training steps under `schedule`, from each phase's measured time per step
    (`step_seconds`, which must cover every phase's set of frozen layers)."""
    missing = [sorted(f) for _, f in phases(schedule, steps) if f not in seconds]
    if missing:
        raise ValueError(f"no measured step time with these layers frozen: {missing}")
    return sum(share * steps * seconds[frozen] for share, frozen in phases(schedule, steps))


@dataclass(frozen=True)
class AccuracyComparison:
    """Final test accuracy of a schedule's runs (`other`) against normal training's (`normal`), paired by seed
    (`seeds`); float64 arrays (seeds,)."""

    seeds: tuple[int, ...]
    normal: np.ndarray
    other: np.ndarray

    @property
    def difference(self) -> float:
        """Mean accuracy of the schedule minus that of normal training (negative: the schedule loses accuracy)."""
        return float(self.other.mean() - self.normal.mean())

    @property
    def paired(self) -> np.ndarray:
        """Per seed, the schedule's accuracy minus normal training's from the same seed (same initialisation and
        batch order until the first layer freezes)."""
        return self.other - self.normal

    @property
    def spread(self) -> float:
        """Seed-to-seed spread of normal training: the standard deviation of its accuracies (ddof=1)."""
        return float(self.normal.std(ddof=1))

    def within_spread(self, tolerance: float | None = None) -> bool:
        """Whether the schedule's mean accuracy is no more than `tolerance` (default `spread`) below normal
        training's mean, or above it."""
        return self.difference >= -(self.spread if tolerance is None else tolerance)


def compare_accuracy(normal: Mapping[int, float], other: Mapping[int, float]) -> AccuracyComparison:
    """`AccuracyComparison` of accuracies by seed ({seed: accuracy}); both need the same seeds, at least two."""
    if set(normal) != set(other):
        raise ValueError(f"normal and other runs must have the same seeds, got {sorted(normal)} and {sorted(other)}")
    if len(normal) < 2:
        raise ValueError(f"a seed-to-seed spread needs at least two seeds, got {len(normal)}")
    seeds = tuple(sorted(normal))
    return AccuracyComparison(seeds, np.array([normal[s] for s in seeds], float), np.array([other[s] for s in seeds], float))


def pooled_spread(groups: Sequence[Sequence[float]]) -> float:
    """Seed-to-seed standard deviation pooled over groups of runs (each group one schedule, its seeds), so that
    every schedule's seeds count towards the spread: sqrt(sum of squared deviations / (runs - groups))."""
    groups = [np.asarray(g, float) for g in groups]
    dof = sum(len(g) - 1 for g in groups)
    if dof < 1:
        raise ValueError("a pooled spread needs a group of at least two runs")
    return float(np.sqrt(sum(((g - g.mean()) ** 2).sum() for g in groups) / dof))


def changed_verdicts(verdicts: Mapping[str, bool | None]) -> str:
    """The variants whose verdict differs from the first entry's (the main test), as "verdict reversed by: a; b";
    "" when every variant agrees."""
    main, *variants = verdicts.items()
    changed = [name for name, holds in variants if holds != main[1]]
    return f"verdict reversed by: {'; '.join(changed)}" if changed else ""
