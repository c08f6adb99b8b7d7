"""What the notebooks leave behind: figures with the numbers behind them, and checked claims."""
from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..networks.paths import project_root


@dataclass(frozen=True)
class Claim:
    """One finding of a study: what the paper says, whether our numbers show it, and those numbers."""

    claim: str
    holds: bool
    numbers: dict[str, float] = field(default_factory=dict)


def figures_dir() -> Path:
    """Figures and the numbers behind them: `$SVCCA_FIGURES`, else `figures/` of the project."""
    return Path(os.environ.get("SVCCA_FIGURES", project_root() / "figures"))


def save_figure(fig, name: str, numbers: dict[str, Any], params: dict[str, Any] | None = None) -> Path:
    """Save `fig` as figures/<name>.png and the plotted `numbers` (with `params`) as figures/<name>.json."""
    folder = figures_dir()
    folder.mkdir(parents=True, exist_ok=True)
    fig.savefig(folder / f"{name}.png", dpi=120, bbox_inches="tight")
    _write_json(folder / f"{name}.json", {"figure": name, "params": params or {}, "numbers": numbers})
    return folder / f"{name}.png"


def check_claims(notebook: str, study: str, claims: list[Claim]) -> None:
    """Print each claim with its numbers, save them as figures/<notebook>_claims.json, and assert they hold."""
    for c in claims:
        numbers = ", ".join(f"{k} = {_fmt(v)}" for k, v in c.numbers.items())
        print(f"{'HOLDS' if c.holds else 'FAILS'}  {c.claim}\n       {numbers}")
    _write_json(
        figures_dir() / f"{notebook}_claims.json",
        {"notebook": notebook, "study": study, "claims": [asdict(c) for c in claims]},
    )
    failed = [c.claim for c in claims if not c.holds]
    assert not failed, f"{len(failed)} claim(s) of {notebook} do not hold: {failed}"


def verdicts(claims: list[Claim]) -> str:
    """One line per claim, without numbers: what CI compares between runs."""
    return "\n".join(f"{'HOLDS' if c.holds else 'FAILS'}  {c.claim}" for c in claims)


def write_report(folder: Path, out: Path, timings: dict[str, float] | None = None) -> str:
    """Markdown reproduction report, one row per claim found in folder/*_claims.json; written to `out`."""
    rows = ["| study | claim | measured | holds |", "|---|---|---|---|"]
    for path in sorted(folder.glob("*_claims.json")):
        entry = json.loads(path.read_text())
        for c in entry["claims"]:
            numbers = ", ".join(f"{k} = {_fmt(v)}" for k, v in c["numbers"].items())
            rows.append(f"| {entry['notebook']}: {entry['study']} | {c['claim']} | {numbers} | {'yes' if c['holds'] else '**no**'} |")
    lines = ["# Reproduction report", "", *rows]
    if timings:
        lines += ["", "| notebook | minutes |", "|---|---|"]
        lines += [f"| {name} | {seconds / 60:.1f} |" for name, seconds in timings.items()]
    text = "\n".join(lines) + "\n"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    return text


def _fmt(value: Any) -> str:
    if isinstance(value, (float, np.floating)):
        return f"{value:.3g}"
    return str(value)


def _write_json(path: Path, payload: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(_plain(payload), indent=1, sort_keys=False) + "\n")


def _plain(value: Any) -> Any:
    """numpy scalars and arrays as JSON-ready Python values, floats rounded to 6 decimals."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, np.ndarray):
        return _plain(value.tolist())
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return round(float(value), 6)
    return value
