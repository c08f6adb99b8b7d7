"""The reproduction runner: checked outputs, failures that do not stop the batch, baselines that only change
through --store-outputs, drift reports, inline figures, partial runs."""
import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook, new_output

from analysis.pipeline import reproduce
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


def _notebook(path, *sources):
    """A notebook whose first cell is tagged `parameters`."""
    nb = new_notebook(cells=[new_code_cell(s) for s in sources])
    nb.cells[0].metadata["tags"] = ["parameters"]
    for i, cell in enumerate(nb.cells):
        cell.id = f"c{i}"
    nb.metadata["kernelspec"] = {"name": "svcca", "display_name": "Python (svcca)", "language": "python"}
    nbformat.write(nb, path)


STUDY = """
import matplotlib.pyplot as plt
from analysis.pipeline.report import Claim, check_claims, save_figure, verdicts
fig, ax = plt.subplots()
ax.plot([0, value])
save_figure(fig, "{n}_line", {{"value": value}}, {{"profile": profile}})
claims = [Claim("the value is positive", value > 0, {{"value": value}})]
check_claims("{n}", "a study", claims)
"""


@pytest.mark.slow
def test_a_batch_runs_on_past_failures_never_touches_baselines_and_reports_drift(tmp_path, monkeypatch):
    project = tmp_path / "project"
    (project / "analysis").mkdir(parents=True)
    (project / "notebooks").mkdir()
    (project / "figures").mkdir()
    _notebook(project / "notebooks" / "01_first.ipynb", "profile = 'quick'\nvalue = 1.0", STUDY.format(n="01"),
              "# NBVAL_CHECK_OUTPUT\nprint(verdicts(claims))")
    _notebook(project / "notebooks" / "02_broken.ipynb", "profile = 'quick'", "raise RuntimeError('boom')")
    _notebook(project / "notebooks" / "03_third.ipynb", "profile = 'quick'\nvalue = -2.0", STUDY.format(n="03"))
    monkeypatch.chdir(project)
    monkeypatch.setenv("SVCCA_DATA", str(tmp_path / "data"))
    monkeypatch.delenv("SVCCA_FIGURES", raising=False)

    assert reproduce.reproduce("quick", ["01", "03"], store_outputs=True) == 0  # the baselines are made
    baseline = (project / "figures" / "01_line.json").read_text()
    stored = nbformat.read(project / "notebooks" / "01_first.ipynb", as_version=4)
    assert stored.cells[2].outputs[0].text == "HOLDS  the value is positive\n"
    assert "FAILS" in (project / "figures" / "REPORT.md").read_text()  # a failing claim is a result

    _notebook(project / "notebooks" / "01_first.ipynb", "profile = 'quick'\nvalue = 1.5", STUDY.format(n="01"),
              "# NBVAL_CHECK_OUTPUT\nprint(verdicts(claims))")
    assert reproduce.reproduce("quick") == 1
    out = tmp_path / "data" / "reproduction" / "quick"
    report = (out / "REPORT.md").read_text()
    assert "02_broken: PapermillExecutionError" in report and "boom" in report  # the batch went on
    assert "01_line.json.numbers.value: 1.0 -> 1.5" in report
    assert (out / "figures" / "03_claims.json").exists() and "| 03_third |" in report
    assert (project / "figures" / "01_line.json").read_text() == baseline  # baselines untouched
    executed = nbformat.read(out / "executed" / "01_first.ipynb", as_version=4)
    study = next(cell for cell in executed.cells if cell.get("id") == "c1")
    assert any("image/png" in o.get("data", {}) for o in study.outputs)  # figures inline

    assert reproduce.reproduce("quick", ["03"]) == 0  # a partial run keeps the other notebooks' rows
    report = (out / "REPORT.md").read_text()
    assert "| 01: a study |" in report and "| 01_first |" in report and "| 03_third |" in report


@pytest.mark.slow
def test_another_dataset_reaches_every_run_of_the_plan_and_writes_beside_the_quick_outputs(tmp_path, monkeypatch):
    project = tmp_path / "project"
    for folder in ("analysis", "notebooks", "figures"):
        (project / folder).mkdir(parents=True)
    plan = ("import analysis\nplan = analysis.study_plan('04', profile, dataset=dataset)\n"
            "value = float(len(plan.configs))\nprint(sorted({c.dataset for c in plan.configs}))")
    _notebook(project / "notebooks" / "04_plan.ipynb", "profile = 'quick'\ndataset = None", plan, STUDY.format(n="04"))
    monkeypatch.chdir(project)
    monkeypatch.setenv("SVCCA_DATA", str(tmp_path / "data"))
    monkeypatch.delenv("SVCCA_FIGURES", raising=False)
    with pytest.raises(ValueError, match="baselines"):
        reproduce.reproduce("quick", store_outputs=True, dataset="cifar10")

    assert reproduce.reproduce("quick", dataset="cifar10") == 0  # nothing to compare with: no drift, no baseline
    out = tmp_path / "data" / "reproduction" / "quick-cifar10"
    executed = nbformat.read(out / "executed" / "04_plan.ipynb", as_version=4)
    printed = next(cell for cell in executed.cells if cell.get("id") == "c1").outputs[0].text
    assert printed == "['cifar10']\n"  # every run of the study's plan
    assert (out / "figures" / "04_line.json").exists() and "| 04: a study |" in (out / "REPORT.md").read_text()
    assert list((project / "figures").iterdir()) == []  # the tracked baselines untouched
