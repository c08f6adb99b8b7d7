"""Run every notebook with papermill and write the reproduction report: `python -m analysis.reproduce`."""
from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

from ..networks.paths import data_dir, project_root
from .report import write_report

KERNEL = "svcca"  # installed into the project's environment by `make setup`
CHECKED = "# NBVAL_CHECK_OUTPUT"  # cells whose output nbval compares; only these keep outputs in notebooks/


def reproduce(profile: str = "quick", only: list[str] | None = None, store_outputs: bool = False) -> Path:
    """Execute notebooks/*.ipynb (or those whose name starts with one of `only`); return the report's path.

    `store_outputs`: copy the outputs of the cells nbval checks back into notebooks/ (after a change that
    alters them; quick profile only, since those are what `make test` compares against).
    """
    if store_outputs and profile != "quick":
        raise ValueError("stored outputs are compared by `make test`, which runs the quick profile")
    import papermill

    root = project_root()
    figures = root / "figures" if profile == "quick" else root / "figures" / profile
    executed = data_dir() / "executed" / profile
    executed.mkdir(parents=True, exist_ok=True)
    os.environ["SVCCA_FIGURES"] = str(figures)
    timings = {}
    for notebook in sorted((root / "notebooks").glob("[0-9][0-9]_*.ipynb")):
        if only and not any(notebook.name.startswith(prefix) for prefix in only):
            continue
        print(f"== {notebook.name} ({profile} profile)", flush=True)
        start = time.perf_counter()
        papermill.execute_notebook(
            str(notebook),
            str(executed / notebook.name),
            parameters={"profile": profile},
            kernel_name=KERNEL,
            cwd=str(notebook.parent),
            progress_bar=False,
            log_output=True,
        )
        timings[notebook.stem] = time.perf_counter() - start
        if store_outputs:
            store_checked_outputs(executed / notebook.name, notebook)
    report = figures / "REPORT.md"
    print(write_report(figures, report, timings))
    print(f"Executed notebooks in {executed}; figures and {report.name} in {figures}")
    return report


def store_checked_outputs(executed: Path, notebook: Path) -> None:
    """Write into `notebook` the outputs that `executed` produced for its `# NBVAL_CHECK_OUTPUT` cells."""
    import nbformat

    ran = nbformat.read(executed, as_version=4)
    source = nbformat.read(notebook, as_version=4)
    by_id = {cell.get("id"): cell for cell in ran.cells}
    for cell in source.cells:
        if cell.cell_type == "code" and cell.source.startswith(CHECKED):
            cell.outputs = [o for o in by_id[cell.id].outputs if o.output_type == "stream" and o.name == "stdout"]
            cell.execution_count = by_id[cell.id].execution_count  # nbval skips comparing a cell without one
    nbformat.write(source, notebook)


def main() -> None:
    """Command line: --profile quick|full, optional notebook prefixes."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--profile", default="quick", choices=["quick", "full"])
    parser.add_argument("--store-outputs", action="store_true", help="refresh the outputs nbval checks in notebooks/")
    parser.add_argument("only", nargs="*", help="notebook name prefixes, e.g. 00 01 (default: all)")
    args = parser.parse_args()
    reproduce(args.profile, args.only, args.store_outputs)


if __name__ == "__main__":
    main()
