"""Every measure by name: what `similarity_grid`, `compare_group` and the streaming classes accept."""
from __future__ import annotations

from .cca import CCA, PWCCA, SVCCA
from .cka import CKA, LINEAR_CKA
from .conv import DFT_CCA
from .procrustes import PROCRUSTES
from .protocol import Measure

MEASURES: dict[str, Measure] = {m.name: m for m in (CCA, SVCCA, PWCCA, LINEAR_CKA, CKA, PROCRUSTES, DFT_CCA)}


def measure(name: str) -> Measure:
    """The registered measure called `name`; a ValueError listing them otherwise."""
    if not isinstance(name, str) or name not in MEASURES:
        raise ValueError(f"measure must be one of {sorted(MEASURES)}, got {name!r}")
    return MEASURES[name]
