"""pytest set-up for the whole repository: notebooks write figures to a scratch folder, and the figure
regression check runs after the notebooks that produce its numbers."""
import os
from pathlib import Path

ROOT = Path(__file__).resolve().parent


def pytest_configure(config):
    # never let a test run overwrite the committed baselines in figures/
    os.environ.setdefault("SVCCA_FIGURES", str(ROOT / "data" / "test-figures"))


def pytest_collection_modifyitems(session, config, items):
    last = [item for item in items if item.path.name == "test_figures.py"]
    items[:] = [item for item in items if item.path.name != "test_figures.py"] + last
