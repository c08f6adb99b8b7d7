"""Run every notebook with papermill and write the reproduction report: `python -m analysis.reproduce`."""
from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

from .paths import data_dir, project_root
from .report import write_report

KERNEL = "svcca"  # installed into the project's environment by `make setup`


def reproduce(profile: str = "quick", only: list[str] | None = None) -> Path:
    """Execute notebooks/*.ipynb (or those whose name starts with one of `only`); return the report's path."""
    import papermill

    root = project_root()
    figures = root / "figures" if profile == "quick" else root / "figures" / profile
    executed = data_dir() / "executed" / profile
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
    report = figures / "REPORT.md"
    print(write_report(figures, report, timings))
    print(f"Executed notebooks in {executed}; figures and {report.name} in {figures}")
    return report


def main() -> None:
    """Command line: --profile quick|full, optional notebook prefixes."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--profile", default="quick", choices=["quick", "full"])
    parser.add_argument("only", nargs="*", help="notebook name prefixes, e.g. 00 01 (default: all)")
    args = parser.parse_args()
    reproduce(args.profile, args.only)


if __name__ == "__main__":
    main()
