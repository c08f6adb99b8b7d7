"""Measures: arrays in, numbers out. CCA, SVCCA, PWCCA, CKA, Procrustes, DFT-CCA; grids, groups, streaming.

Nothing here imports torch.nn, datasets or training; torch itself only when handed tensors (or for FFTs).
"""
from .cca import CCAResult, cca, pwcca, svcca
from .cka import cka, linear_cka
from .conv import DFTCCAResult, average_pool, dft_cca, flatten, positions_as_samples
from .grid import Grid, similarity_grid
from .group import GroupComparison, compare_group
from .procrustes import procrustes_distance
from .protocol import Measure
from .registry import MEASURES
from .stream import CrossStats, GridStats

__all__ = [
    "CCAResult", "CrossStats", "DFTCCAResult", "Grid", "GridStats", "GroupComparison", "MEASURES", "Measure",
    "average_pool", "cca", "cka", "compare_group", "dft_cca", "flatten", "linear_cka", "positions_as_samples",
    "procrustes_distance", "pwcca", "similarity_grid", "svcca",
]
