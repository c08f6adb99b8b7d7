"""The reproduction runner: only the cells nbval checks keep their outputs in notebooks/."""
import nbformat
from nbformat.v4 import new_code_cell, new_notebook, new_output

from analysis.pipeline.reproduce import store_checked_outputs


def test_only_checked_cells_keep_their_printed_output(tmp_path):
    source = new_notebook(cells=[new_code_cell("print(1)"), new_code_cell("# NBVAL_CHECK_OUTPUT\nprint('HOLDS')")])
    for i, cell in enumerate(source.cells):
        cell.id = f"c{i}"
    ran = nbformat.from_dict(source)
    for count, cell in enumerate(ran.cells, start=1):
        cell.execution_count = count
        cell.outputs = [new_output("stream", name="stdout", text=f"out {count}\n"),
                        new_output("stream", name="stderr", text="a warning\n")]
    nbformat.write(source, tmp_path / "nb.ipynb")
    nbformat.write(ran, tmp_path / "ran.ipynb")
    store_checked_outputs(tmp_path / "ran.ipynb", tmp_path / "nb.ipynb")
    stored = nbformat.read(tmp_path / "nb.ipynb", as_version=4)
    assert stored.cells[0].outputs == [] and stored.cells[0].execution_count is None
    assert [o.text for o in stored.cells[1].outputs] == ["out 2\n"]  # stdout only: warnings vary by machine
    assert stored.cells[1].execution_count == 2  # nbval compares only cells that have one
