"""Comparing the numbers behind a figure with their committed baseline."""
from __future__ import annotations

import math
from typing import Any


def moved_numbers(baseline: Any, produced: Any, abs_tol: float, rel_tol: float, where: str = "") -> list[str]:
    """Every place where `produced` differs from `baseline`: numbers beyond tolerance, anything else unequal."""
    if isinstance(baseline, dict) and isinstance(produced, dict):
        out = [f"{where}.{k}: missing" for k in baseline.keys() - produced.keys()]
        out += [f"{where}.{k}: new" for k in produced.keys() - baseline.keys()]
        for k in baseline.keys() & produced.keys():
            out += moved_numbers(baseline[k], produced[k], abs_tol, rel_tol, f"{where}.{k}")
        return sorted(out)
    if isinstance(baseline, list) and isinstance(produced, list):
        if len(baseline) != len(produced):
            return [f"{where}: length {len(baseline)} -> {len(produced)}"]
        return [m for i, (b, p) in enumerate(zip(baseline, produced)) for m in moved_numbers(b, p, abs_tol, rel_tol, f"{where}[{i}]")]
    numbers = (int, float)
    if isinstance(baseline, numbers) and isinstance(produced, numbers) and not isinstance(baseline, bool):
        if math.isclose(baseline, produced, rel_tol=rel_tol, abs_tol=abs_tol):
            return []
        return [f"{where}: {baseline} -> {produced} (tolerance {abs_tol} + {rel_tol:.0%})"]
    return [] if baseline == produced else [f"{where}: {baseline!r} -> {produced!r}"]
