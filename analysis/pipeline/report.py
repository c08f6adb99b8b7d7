"""What the notebooks leave behind: figures with the numbers behind them, and checked claims."""
from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..networks.paths import data_dir


@dataclass(frozen=True)
class Claim:
    """One finding of a study, tested: `claim`, the finding as we test it (with the layers and seeds it covers);
    `holds` (None: undetermined, e.g. a rank correlation of tied values); `numbers`, everything worth reporting
    (per layer, per seed, spreads); `paper`, what the paper states (figure, direction, its number where it gives
    one); `ours` and `control`, our number and the same number for the control computed the same way, so that
    `margin = ours - control`; `sensitivity`, a reasonable variant that changes the verdict, said beside it."""

    claim: str
    holds: bool | None
    numbers: dict[str, Any] = field(default_factory=dict)
    paper: str = ""
    ours: float | None = None
    control: float | None = None
    sensitivity: str = ""

    @property
    def margin(self) -> float | None:
        """Our number minus the control's."""
        return None if self.ours is None or self.control is None else self.ours - self.control

    @property
    def verdict(self) -> str:
        """HOLDS, FAILS or UNDETERMINED."""
        return _verdict(self.holds)


def _verdict(holds: bool | None) -> str:
    return "UNDETERMINED" if holds is None else "HOLDS" if holds else "FAILS"


def figures_dir() -> Path:
    """Where notebooks write figures and the numbers behind them: `$SVCCA_FIGURES` (set by the reproduction
    runner and the tests), else `data/figures/`; never the committed baselines in `figures/`, which only
    `python -m analysis.pipeline.reproduce --store-outputs` rewrites."""
    return Path(os.environ.get("SVCCA_FIGURES", data_dir() / "figures"))


def save_figure(fig, name: str, numbers: dict[str, Any], params: dict[str, Any] | None = None) -> Path:
    """Save `fig` as figures/<name>.png and the plotted `numbers` (with `params`) as figures/<name>.json."""
    folder = figures_dir()
    folder.mkdir(parents=True, exist_ok=True)
    fig.savefig(folder / f"{name}.png", dpi=120, bbox_inches="tight")
    _write_json(folder / f"{name}.json", {"figure": name, "params": params or {}, "numbers": numbers})
    return folder / f"{name}.png"


def check_claims(notebook: str, study: str, claims: list[Claim]) -> None:
    """Print each claim with its numbers and save them as figures/<notebook>_claims.json.

    A claim that fails is a result, not an error: the notebook goes on, the report lists it, and `make test`
    compares the verdicts with those stored in the notebook.
    """
    for c in claims:
        print(f"{c.verdict}  {c.claim}\n       {_measured(asdict(c))}")
        if c.sensitivity:
            print(f"       sensitivity: {c.sensitivity}")
    _write_json(
        figures_dir() / f"{notebook}_claims.json",
        {"notebook": notebook, "study": study, "claims": [{**asdict(c), "margin": c.margin} for c in claims]},
    )


def verdicts(claims: list[Claim]) -> str:
    """One line per claim, without numbers: what CI compares between runs."""
    return "\n".join(f"{c.verdict}  {c.claim}" for c in claims)


def write_report(
    folder: Path, out: Path, timings: dict[str, float] | None = None, *, errors: dict[str, str] | None = None,
    drift: dict[str, list[str]] | None = None, verdicts: dict[str, list[str]] | None = None,
) -> str:
    """Markdown reproduction report, one row per claim found in folder/*_claims.json, written to `out`; then
    the notebooks that failed (`errors`), numbers that moved from their baselines (`drift`), verdicts that
    changed (`verdicts`), and minutes per notebook (`timings`, seconds)."""
    rows = ["| study | claim | paper | ours | control | margin | verdict | measured |", "|---|---|---|---|---|---|---|---|"]
    for path in sorted(folder.glob("*_claims.json")):
        entry = json.loads(path.read_text())
        for c in entry["claims"]:
            verdict = _verdict(c["holds"])
            verdict = verdict if verdict == "HOLDS" else f"**{verdict}**"
            if c.get("sensitivity"):
                verdict += f" (sensitivity: {c['sensitivity']})"
            cells = [f"{entry['notebook']}: {entry['study']}", c["claim"], c.get("paper", ""),
                     *(_fmt(c.get(k)) for k in ("ours", "control", "margin")), verdict, _measured(c)]
            rows.append("| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |")  # a | in a claim (\|r\|) kept in its cell
    lines = ["# Reproduction report", "", *rows]
    if errors:
        lines += ["", "## Notebooks that failed", "", *(f"- {name}: {error}" for name, error in errors.items())]
    if verdicts:
        lines += ["", "## Verdicts that changed from the committed ones", ""]
        lines += [f"- {name}: {line}" for name, changed in verdicts.items() for line in changed]
    if drift:
        lines += ["", "## Numbers that moved from their committed baselines (beyond the regression tolerance)", ""]
        lines += [f"- {name}{line}" for name, moved in drift.items() for line in moved[:20]]
    if timings:
        lines += ["", "| notebook | minutes |", "|---|---|"]
        lines += [f"| {name} | {seconds / 60:.1f} |" for name, seconds in timings.items()]
    text = "\n".join(lines) + "\n"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    return text


def _fmt(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, (float, np.floating)):
        return f"{value:.3g}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_fmt(v) for v in value) + "]"
    return str(value)


def _measured(claim: dict) -> str:
    """A claim's numbers as 'name = value, ...'."""
    return ", ".join(f"{k} = {_fmt(v)}" for k, v in claim["numbers"].items())


def _write_json(path: Path, payload: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(_plain(payload), indent=1, sort_keys=False) + "\n")


def _plain(value: Any) -> Any:
    """numpy scalars and arrays as JSON-ready Python values, floats rounded to 6 decimals, nan (undefined) as
    None: a stored nan would equal nothing, not even itself, when the regression check reads it back."""
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
        return None if np.isnan(value) else round(float(value), 6)
    return value
