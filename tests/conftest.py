"""Shared fixtures: real reference activations when ../shared is present, and random layers."""
from pathlib import Path

import numpy as np
import pytest

REF = Path(__file__).resolve().parents[2] / "shared" / "ref" / "svcca_tutorial_activations.npz"


@pytest.fixture(scope="session")
def ref_activations() -> dict[str, np.ndarray]:
    """The SVCCA authors' tutorial activations, samples first (see shared/ref/README.md)."""
    if not REF.exists():
        pytest.skip(f"reference activations not found at {REF} (only present beside the project's CI)")
    with np.load(REF) as f:
        return {
            "mnist": (f["mnist_logits_net0"].T, f["mnist_logits_net1"].T),
            "svhn": (f["svhn_fc200_net0"], f["svhn_fc200_net1"]),
        }

