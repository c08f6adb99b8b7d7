"""Run every notebook with papermill and write the reproduction report: `python -m analysis.pipeline.reproduce`.

A run writes only under `data/reproduction/<profile>[-<dataset>]/`: the executed notebooks (figures inline),
the figures with their numbers, the report, and each notebook's time. It never touches the committed
baselines (`figures/`, the checked outputs in `notebooks/`), but compares with them: numbers that moved beyond
the regression tolerance and verdicts that changed are listed in the report and on the terminal. Only
`--store-outputs` (quick profile, default dataset) copies a run's figures, numbers, verdicts and report into
the committed baselines. A notebook that fails or a claim that does not hold does not stop the batch; the exit
status is 1 when a notebook failed, a verdict changed or a number drifted.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

from jupyter_client.manager import KernelManager

from ..networks.paths import data_dir, project_root
from .regression import drift
from .report import write_report

KERNEL = "svcca"  # installed into the project's environment by `make setup`
CHECKED = "# NBVAL_CHECK_OUTPUT"  # cells whose output nbval compares; only these keep outputs in notebooks/


class LocalKernelManager(KernelManager):
    """Kernels reached over local sockets (IPC) in a temporary folder rather than TCP ports: nothing listens on
    the network, and the kernels do not warn about unencrypted TCP."""

    def __init__(self, **kwargs):
        super().__init__(transport="ipc", ip=str(Path(tempfile.mkdtemp(prefix="svcca-kernel-")) / "ipc"), **kwargs)


def reproduce(
    profile: str = "quick", only: list[str] | None = None, store_outputs: bool = False, dataset: str | None = None,
) -> int:
    """Execute notebooks/*.ipynb (or those whose name starts with one of `only`) in `profile` (on `dataset` when
    given, else each notebook's own); write the report; return the exit status (module docstring).

    `store_outputs`: make this run's outputs the committed baselines (after a change meant to move them).
    """
    if store_outputs and (profile != "quick" or dataset is not None):
        raise ValueError("the baselines `make test` compares against are the quick profile's on its own dataset")
    import papermill

    root = project_root()
    out = data_dir() / "reproduction" / (profile if dataset is None else f"{profile}-{dataset}")
    figures, executed = out / "figures", out / "executed"
    figures.mkdir(parents=True, exist_ok=True)
    executed.mkdir(parents=True, exist_ok=True)
    os.environ["SVCCA_FIGURES"] = str(figures)  # the kernels inherit it
    os.environ["SVCCA_TEXT_PROGRESS"] = "1"  # progress bars as text, which papermill shows on the terminal
    timings_file = out / "timings.json"
    timings = json.loads(timings_file.read_text()) if timings_file.exists() else {}
    parameters = {"profile": profile, **({} if dataset is None else {"dataset": dataset})}
    errors, ran = {}, []
    notebooks = sorted((root / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    for notebook in notebooks:
        if only and not any(notebook.name.startswith(prefix) for prefix in only):
            continue
        print(f"== {notebook.name} ({profile} profile{'' if dataset is None else ', ' + dataset})", flush=True)
        start = time.perf_counter()
        for stale in figures.glob(f"{notebook.name[:2]}_*"):
            stale.unlink()  # a figure this run does not write again must not pass for one it wrote
        try:
            papermill.execute_notebook(
                str(notebook), str(executed / notebook.name), parameters=parameters, kernel_name=KERNEL,
                cwd=str(notebook.parent), progress_bar=False, log_output=True,
                kernel_manager_class=LocalKernelManager,
            )
        except Exception as error:  # papermill's execution errors, a dead kernel, ...: report and go on
            errors[notebook.stem] = f"{type(error).__name__}: {str(error).strip().splitlines()[-1][:300]}"
            print(f"!! {notebook.name} failed: {errors[notebook.stem]}", flush=True)
        timings[notebook.stem] = time.perf_counter() - start
        ran.append(notebook.name[:2])
        if store_outputs and notebook.stem not in errors:
            store_checked_outputs(executed / notebook.name, notebook)
    timings_file.write_text(json.dumps(timings, indent=1, sort_keys=True))
    baselines = root / "figures"
    if store_outputs:
        failed = {stem[:2] for stem in errors}
        for name in (n for n in ran if n not in failed):
            for stale in baselines.glob(f"{name}_*"):
                stale.unlink()
            for path in figures.glob(f"{name}_*"):
                shutil.copy2(path, baselines / path.name)
    comparable = profile == "quick" and dataset is None
    moved = drift(baselines, figures, ran) if comparable else {}
    changed = _changed_verdicts(baselines, figures, ran) if comparable else {}
    text = write_report(figures, out / "REPORT.md", timings, errors=errors, drift=moved, verdicts=changed)
    if store_outputs:
        write_report(baselines, baselines / "REPORT.md", timings)
    print(text)
    print(f"Executed notebooks, figures and REPORT.md in {out}")
    return 1 if errors or moved or changed else 0


def _changed_verdicts(baselines: Path, produced: Path, names: list[str]) -> dict[str, list[str]]:
    """Claims whose verdict differs from the committed one, by notebook."""
    changed = {}
    for name in names:
        base, new = (next(iter(folder.glob(f"{name}_claims.json")), None) for folder in (baselines, produced))
        if base is None or new is None:
            continue
        before = {c["claim"]: c["holds"] for c in json.loads(base.read_text())["claims"]}
        after = {c["claim"]: c["holds"] for c in json.loads(new.read_text())["claims"]}
        lines = [f"{claim}: {before.get(claim, 'new')} -> {holds}" for claim, holds in after.items()
                 if before.get(claim, "new") != holds]
        lines += [f"{claim}: no longer checked" for claim in before.keys() - after.keys()]
        if lines:
            changed[name] = lines
    return changed


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
    """Command line: --profile quick|full, --dataset, --store-outputs, optional notebook prefixes."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--profile", default="quick", choices=["quick", "full"])
    parser.add_argument("--dataset", default=None, help="run every study on this registered dataset")
    parser.add_argument("--store-outputs", action="store_true", help="make this run's outputs the committed baselines")
    parser.add_argument("only", nargs="*", help="notebook name prefixes, e.g. 00 01 (default: all)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stdout)  # papermill's cell outputs
    logging.getLogger("traitlets").setLevel(logging.ERROR)
    sys.exit(reproduce(args.profile, args.only, args.store_outputs, args.dataset))


if __name__ == "__main__":
    main()
