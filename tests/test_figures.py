"""Figure regression: the numbers behind each committed figure (figures/NN_*.json, the baselines) against
what this test run's notebooks wrote (to $SVCCA_FIGURES, set by conftest.py). Runs after the notebooks."""
import json
import os
from pathlib import Path

import pytest

from analysis.pipeline.regression import ABS_TOL, REL_TOL, moved_numbers

BASELINES = Path(__file__).resolve().parents[1] / "figures"


def baselines() -> list[Path]:
    return sorted(BASELINES.glob("[0-9][0-9]_*.json"))


def notebook_ran(session, prefix: str) -> bool:
    return any(item.path.suffix == ".ipynb" and item.path.name.startswith(prefix) for item in session.items)


@pytest.mark.parametrize("baseline", baselines(), ids=lambda p: p.stem)
def test_figure_numbers_have_not_moved(baseline, request):
    if not notebook_ran(request.session, baseline.name[:3]):
        pytest.skip(f"notebook {baseline.name[:2]} was not run in this session")
    produced = Path(os.environ["SVCCA_FIGURES"]) / baseline.name
    assert produced.exists(), f"notebook {baseline.name[:2]} ran but did not write {baseline.name}"
    moved = moved_numbers(json.loads(baseline.read_text()), json.loads(produced.read_text()), ABS_TOL, REL_TOL)
    assert not moved, f"{baseline.name}: " + "; ".join(moved)


def test_every_figure_a_notebook_writes_has_a_baseline(request):
    produced = Path(os.environ["SVCCA_FIGURES"])
    if not any(item.path.suffix == ".ipynb" for item in request.session.items):
        pytest.skip("no notebook was run in this session")
    new = sorted(p.name for p in produced.glob("[0-9][0-9]_*.json") if not (BASELINES / p.name).exists())
    assert not new, f"figures without a committed baseline (run `make reproduce` and commit figures/): {new}"


def test_comparison_names_what_moved():
    base = {"numbers": {"mean": [0.5, 0.9], "k": 3, "label": "a"}, "params": {"seed": 0}}
    same = {"numbers": {"mean": [0.505, 0.9], "k": 3, "label": "a"}, "params": {"seed": 0}}
    assert moved_numbers(base, same, ABS_TOL, REL_TOL) == []
    moved = {"numbers": {"mean": [0.5, 0.7], "k": 4, "label": "b"}, "params": {}}
    found = moved_numbers(base, moved, ABS_TOL, REL_TOL)
    assert found == [".numbers.k: 3 -> 4 (tolerance 0.01 + 1%)", ".numbers.label: 'a' -> 'b'", ".numbers.mean[1]: 0.9 -> 0.7 (tolerance 0.01 + 1%)", ".params.seed: missing"]
    assert moved_numbers({"x": [1, 2]}, {"x": [1]}, ABS_TOL, REL_TOL) == [".x: length 2 -> 1"]
