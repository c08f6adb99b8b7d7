"""One definition per measure: prepare a layer once, compare two prepared layers, and, where the measure
allows, prepare a layer from streamed moments (its mean and centred Gram matrix) instead of its samples.

Pairwise functions (`cca`, `linear_cka`, ...), `similarity_grid`, `compare_group` and the streaming classes
all call the same two functions of a `Measure`, so a measure added to `registry.MEASURES` is served by all
of them. Prepared layers carry their sample count; what they hold is each measure's own business.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .checks import as_pair
from .threads import parallel_map, worth_splitting


@dataclass(frozen=True)
class Measure:
    """A similarity (or, with `similarity=False`, a distance) between two layers (n, d_x), (n, d_y).

    `prepare(x, **options)`: a validated layer (`checks.as_array(native=True)`) to what `compare` needs.
    `compare(a, b)`: the result for two prepared layers (a float, or a result with `.mean` and `float()`).
    `from_moments(gram, mean, n, **options)` and `compare_moments(a, b, cross)`: the same from float64 moments
    (None: the measure needs every sample at once). `options`: the keyword options and their defaults;
    `check(**options)` validates their values. `ndim`: axes of a layer (4 for conv-only measures).
    """

    name: str
    prepare: Callable[..., Any]
    compare: Callable[[Any, Any], Any]
    symmetric: bool
    similarity: bool = True
    options: Mapping[str, Any] = field(default_factory=dict)
    check: Callable[..., None] | None = None
    from_moments: Callable[..., Any] | None = None
    compare_moments: Callable[[Any, Any, Any], Any] | None = None
    ndim: int = 2

    @property
    def streams(self) -> bool:
        """Whether the measure can be computed from streamed moments."""
        return self.from_moments is not None

    def resolve(self, options: Mapping[str, Any]) -> dict[str, Any]:
        """`options` checked (names and values) and completed with the defaults."""
        unknown = sorted(set(options) - set(self.options))
        if unknown:
            accepted = ", ".join(self.options) or "none"
            raise TypeError(f"measure {self.name!r} takes no option(s) {unknown}; it accepts: {accepted}")
        full = {**self.options, **options}
        if self.check is not None:
            self.check(**full)
        return full

    def pair(self, x, y, **options):
        """The measure of x and y (validated, prepared side by side: each layer on its own core on the CPU)."""
        full = self.resolve(options)
        x, y = as_pair(x, y, ndim=self.ndim, native=True)
        a, b = parallel_map(lambda v: self.prepare(v, **full), (x, y), threads=worth_splitting(x, y))
        return self.compare(a, b)

