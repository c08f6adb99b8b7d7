"""Where the project keeps datasets and cached runs."""
from __future__ import annotations

import os
from pathlib import Path


def project_root() -> Path:
    """The repository holding the notebooks: the nearest folder at or above the working directory with
    `notebooks/` and `analysis/` in it, or the working directory when there is none (a user's own project)."""
    here = Path.cwd().resolve()
    for folder in (here, *here.parents):
        if (folder / "notebooks").is_dir() and (folder / "analysis").is_dir():
            return folder
    return here


def data_dir() -> Path:
    """Datasets and cached runs: `$SVCCA_DATA`, else `data/` of the project."""
    return Path(os.environ.get("SVCCA_DATA", project_root() / "data"))
