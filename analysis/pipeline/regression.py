"""Comparing the numbers behind a figure with their committed baseline (figures/NN_*.json)."""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

# Training gives the same bits on any x86-64 CPU with AVX2 or better (analysis/networks/__init__.py); 0.01
# leaves room for other platforms' last digits, far below the effects the figures show (0.1 and more).
ABS_TOL = 0.01
REL_TOL = 0.01


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


def drift(baselines: Path, produced: Path, names: list[str] | None = None) -> dict[str, list[str]]:
    """For each figures JSON in `produced` (those starting with one of `names`, if given) that has a baseline
    in `baselines`: what moved beyond tolerance; a file without a baseline is reported as new."""
    found = {}
    for path in sorted(produced.glob("[0-9][0-9]_*.json")):
        if names and not any(path.name.startswith(n) for n in names):
            continue
        base = baselines / path.name
        if not base.exists():
            found[path.name] = ["no committed baseline"]
            continue
        moved = moved_numbers(json.loads(base.read_text()), json.loads(path.read_text()), ABS_TOL, REL_TOL)
        if moved:
            found[path.name] = moved
    return found

