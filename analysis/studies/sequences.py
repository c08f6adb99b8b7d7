"""Recurrent networks (PWCCA paper, Morcos et al. 2018, Sec. 3.4): an LSTM language model's layers over training,
with time steps as samples, and a layer's similarity with itself over the course of a sequence.

`record_states` keeps each layer's hidden states (sequences, time, features) on held-out text at chosen
checkpoints. `final_self_curves` gives each layer's PWCCA with its final self at every checkpoint, each time step a
sample, with the same layer of other seeds' untrained and trained networks as controls: a `dynamics.SeedCurves`,
so `dynamics.bottom_up` (progress from a control, convergence order, its chance) measures convergence unchanged.
`over_sequence` compares a layer at each step of the sequences with the same layer at one step (sequences as
samples), beside a control that pairs each sequence with another one.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from ..networks.hooks import record, steps_as_samples
from .dynamics import SeedCurves, pair_values, progress

Weights = Literal["final", "other"]
#: states of one network: fraction of training -> layer -> hidden states (sequences, time, features)
States = Mapping[float, Mapping[str, np.ndarray]]


def record_states(
    run: Any, layers: Sequence[str], fractions: Sequence[float] | None = None, *, sequences: int | None = None,
    split: str = "test",
) -> dict[float, dict[str, np.ndarray]]:
    """Hidden states of `layers` of a language-model `train.Run` at each checkpoint in `fractions` (default: all of
    the run's), on the first `sequences` windows of `split` (default: all): {fraction: {layer: (sequences, time,
    features)}}, float32, the same windows at every checkpoint."""
    if not layers:
        raise ValueError("no layers to record")
    inputs = run.data(split).inputs[:sequences]
    if inputs.ndim != 2:
        raise ValueError(f"expected token sequences (n, time), got inputs of shape {tuple(inputs.shape)}: "
                         "record_states is for language-model runs")
    batches = [inputs[i : i + 500] for i in range(0, len(inputs), 500)]
    fractions = run.config.checkpoints if fractions is None else fractions
    return {float(f): record(run.model(f), batches, list(layers), progress=False) for f in fractions}


def final_self_curves(
    states: Sequence[States], layers: Sequence[str], *, start: float = 0.0, final: float = 1.0,
    weights: Weights = "final",
) -> SeedCurves:
    """Each layer's PWCCA with its final self at every checkpoint, time steps as samples (`steps_as_samples`), for
    networks of two or more seeds (`record_states` of each, the same fractions and windows), as `SeedCurves`: every
    checkpoint, and every other seed's checkpoints `start` (untrained control) and `final` (trained control),
    compared with the seed's checkpoint `final`. `weights`: PWCCA's projection weights from the "final" network's
    side (every comparison of a seed then weighted by the same reference) or from the "other" one's. PWCCA keeps
    every direction: the curves' `keep` is 1.0 and their `reduction` "time steps as samples"."""
    if len(states) < 2:
        raise ValueError("controls need networks of at least two seeds")
    if weights not in ("final", "other"):
        raise ValueError(f"weights must be 'final' or 'other', got {weights!r}")
    fractions = tuple(states[0])
    if any(tuple(s) != fractions for s in states):
        raise ValueError("every seed must be recorded at the same fractions")
    for f in (start, final):
        if f not in fractions:
            raise ValueError(f"no checkpoint at {f}; the states have {fractions}")
    flat = [{f: {name: steps_as_samples(s[f][name]) for name in layers} for f in fractions} for s in states]
    pairs, shape = [], []
    for k, own in enumerate(flat):
        others = [s for o, s in enumerate(flat) if o != k]
        sources = [own[f] for f in fractions] + [s[start] for s in others] + [s[final] for s in others]
        shape.append(len(sources))
        for source in sources:
            for name in layers:
                target = own[final][name]
                pairs.append((target, source[name]) if weights == "final" else (source[name], target))
    values = pair_values(pairs, "pwcca").reshape(len(flat), shape[0], len(layers))
    t, o = len(fractions), len(flat) - 1
    return SeedCurves(tuple(layers), fractions, "time steps as samples", 1.0, values[:, :t], values[:, t : t + o],
                      values[:, t + o :])


@dataclass(frozen=True)
class OverSequence:
    """A layer's PWCCA at each step of the sequences with itself at step `reference` (each sequence a sample).

    `similarity` (time,): step t against the reference step of the same sequences (1 at the reference itself);
    `control` (time,): step t of each sequence against the reference step of another sequence (a fixed
    derangement of the sequences), what unrelated samples reach; `progress` (time,): the share of the way from the
    control to 1 (`dynamics.progress`).
    """

    reference: int
    similarity: np.ndarray
    control: np.ndarray

    @property
    def progress(self) -> np.ndarray:
        """(similarity - control) / (1 - control), per step."""
        return progress(self.similarity, self.control)

    def lag(self, steps: int) -> float:
        """The similarity `steps` steps before the reference step."""
        return float(self.similarity[self.reference - steps])

    def span(self, level: float = 0.5) -> int:
        """How many steps back from the reference the progress stays >= `level`: the first lag below it, minus 1
        (the whole stretch before the reference if it never falls below)."""
        back = self.progress[: self.reference + 1][::-1]
        below = np.flatnonzero(back < level)
        return int(below[0] - 1) if len(below) else self.reference


def derangement(n: int, seed: int = 0) -> np.ndarray:
    """A random permutation of range(n) that moves every element (n >= 2): a shuffled pairing with no fixed pair."""
    if n < 2:
        raise ValueError(f"a derangement needs at least 2 elements, got {n}")
    rng = np.random.default_rng(seed)
    while True:
        order = rng.permutation(n)
        if not np.any(order == np.arange(n)):
            return order


def over_sequence(states: np.ndarray, reference: int = -1, *, seed: int = 0) -> OverSequence:
    """`OverSequence` of one layer's hidden states (sequences, time, features): PWCCA of the step `reference`
    (default the last; weights from its side) with every step, the sequences as samples; the control pairs each
    sequence's step t with the reference step of another sequence (`derangement` with `seed`)."""
    states = np.asarray(states)
    if states.ndim != 3:
        raise ValueError(f"expected a recurrent layer's states (sequences, time, features), got shape {states.shape}")
    n, time = states.shape[:2]
    if not -time <= reference < time:
        raise ValueError(f"reference step {reference} is outside the {time} steps")
    reference %= time
    last, shuffled = states[:, reference], states[derangement(n, seed), reference]
    pairs = [(last, states[:, t]) for t in range(time)] + [(shuffled, states[:, t]) for t in range(time)]
    values = pair_values(pairs, "pwcca")
    return OverSequence(reference, values[:time], values[time:])
