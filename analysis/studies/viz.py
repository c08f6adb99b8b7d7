"""One plotting style for the whole repository, and the studies' recurring plots."""
from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
import seaborn as sns


def set_style() -> None:
    """The repository's seaborn theme (white grid, colourblind palette, readable sizes)."""
    sns.set_theme(context="notebook", style="whitegrid", palette="colorblind", rc={"figure.dpi": 100})


def similarity_heatmap(
    values: np.ndarray,
    rows: Sequence[str],
    cols: Sequence[str],
    ax=None,
    title: str = "",
    vmin: float = 0.0,
    vmax: float = 1.0,
    cmap: str = "viridis",
    annotate: bool = True,
):
    """Layer-by-layer similarity grid (len(rows), len(cols)), input layers at the bottom left as in the papers."""
    ax = ax or plt.gca()
    values = np.asarray(values)
    sns.heatmap(
        values[::-1],
        ax=ax,
        vmin=vmin,
        vmax=vmax,
        cmap=cmap,
        square=True,
        annot=annotate,
        fmt=".2f",
        annot_kws={"size": 7},
        xticklabels=list(cols),
        yticklabels=list(rows)[::-1],
        cbar_kws={"shrink": 0.7},
    )
    ax.set_title(title)
    return ax


def class_traces(activations: np.ndarray, labels: np.ndarray, ax=None, class_names: Sequence[str] | None = None, **plot):
    """Activations (n,) or (n, k) over samples sorted by class, class boundaries dashed (SVCCA Fig. 1)."""
    ax = ax or plt.gca()
    order = np.argsort(labels, kind="stable")
    acts = np.asarray(activations)[order]
    ax.plot(acts, linewidth=0.6, **plot)
    sorted_labels = np.asarray(labels)[order]
    bounds = np.flatnonzero(np.diff(sorted_labels)) + 0.5
    for b in bounds:
        ax.axvline(b, color="0.3", linestyle="--", linewidth=0.8)
    if class_names is not None:
        edges = np.concatenate([[0], bounds, [len(acts)]])
        ax.set_xticks((edges[:-1] + edges[1:]) / 2)
        ax.set_xticklabels([class_names[c] for c in np.unique(sorted_labels)], rotation=45, ha="right", fontsize=7)
    ax.set_xlim(0, len(acts))
    return ax
