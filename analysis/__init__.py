"""Similarity of neural network representations: CCA, SVCCA, PWCCA, CKA, and the studies built on them."""
from .cca import CCAResult, cca, pwcca, svcca
from .cka import cka, linear_cka
from .conv import DFTCCAResult, average_pool, dft_cca, flatten
from .data import Split, load
from .grid import Grid, similarity_grid
from .models import build_model, freeze
from .procrustes import procrustes_distance
from .record import iter_activations, record
from .stream import CrossStats, GridStats, stream_stats
from .train import Run, RunConfig, profile_config, train

__all__ = [
    "CCAResult",
    "CrossStats",
    "DFTCCAResult",
    "Grid",
    "GridStats",
    "Run",
    "RunConfig",
    "Split",
    "average_pool",
    "build_model",
    "cca",
    "cka",
    "dft_cca",
    "flatten",
    "freeze",
    "iter_activations",
    "linear_cka",
    "load",
    "procrustes_distance",
    "profile_config",
    "pwcca",
    "record",
    "similarity_grid",
    "stream_stats",
    "svcca",
    "train",
]
