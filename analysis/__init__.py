"""Similarity of neural network representations: CCA, SVCCA, PWCCA, CKA, and the studies built on them."""
from .cca import CCAResult, cca, pwcca, svcca
from .cka import cka, linear_cka
from .conv import DFTCCAResult, average_pool, dft_cca, flatten
from .data import Split, load
from .dynamics import Convergence, convergence_order, depth_correlation, learning_grids, lower_minus_upper, self_similarity
from .grid import Grid, similarity_grid
from .models import build_model, freeze
from .neurons import (
    TopUnitMatch,
    align_signs,
    best_matches,
    class_variance_fraction,
    match_top_units,
    top_units,
    unit_correlations,
    unit_norms,
)
from .procrustes import procrustes_distance
from .record import iter_activations, record
from .stream import CrossStats, GridStats, stream_stats
from .train import Run, RunConfig, profile_config, train

__all__ = [
    "CCAResult",
    "Convergence",
    "CrossStats",
    "DFTCCAResult",
    "Grid",
    "GridStats",
    "Run",
    "RunConfig",
    "Split",
    "TopUnitMatch",
    "align_signs",
    "average_pool",
    "best_matches",
    "build_model",
    "cca",
    "cka",
    "class_variance_fraction",
    "convergence_order",
    "depth_correlation",
    "dft_cca",
    "flatten",
    "freeze",
    "iter_activations",
    "learning_grids",
    "linear_cka",
    "load",
    "lower_minus_upper",
    "match_top_units",
    "procrustes_distance",
    "profile_config",
    "pwcca",
    "record",
    "self_similarity",
    "similarity_grid",
    "stream_stats",
    "svcca",
    "top_units",
    "train",
    "unit_correlations",
    "unit_norms",
]
