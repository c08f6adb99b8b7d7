"""Similarity of neural network representations: CCA, SVCCA, PWCCA, CKA, and the studies built on them."""
from .cca import CCAResult, cca, pwcca, svcca
from .cka import cka, linear_cka
from .conv import DFTCCAResult, average_pool, dft_cca, flatten
from .procrustes import procrustes_distance

__all__ = [
    "CCAResult",
    "DFTCCAResult",
    "average_pool",
    "cca",
    "cka",
    "dft_cca",
    "flatten",
    "linear_cka",
    "procrustes_distance",
    "pwcca",
    "svcca",
]
