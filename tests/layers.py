"""Random layers with known structure, for the measures' tests."""
import numpy as np


def correlated_layers(seed: int, n: int = 200, dx: int = 12, dy: int = 9, noise: float = 1.0):
    """Two layers sharing a few latent directions plus independent noise."""
    rng = np.random.default_rng(seed)
    z = rng.standard_normal((n, 4))
    x = z @ rng.standard_normal((4, dx)) + noise * rng.standard_normal((n, dx))
    y = np.tanh(z @ rng.standard_normal((4, dy))) + noise * rng.standard_normal((n, dy))
    return x, y
