"""The package's layers: imports point down only, and measures load without torch.nn."""
import ast
import re
import subprocess
import sys
from importlib.metadata import packages_distributions, requires
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "analysis"
ORDER = ["measures", "networks", "studies", "pipeline"]  # each may import only those before it


def imports(path: Path) -> set[str]:
    """Absolute names of the modules `path` imports (relative imports resolved)."""
    tree = ast.parse(path.read_text())
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = parts[: len(parts) - node.level]
                names.add(".".join([*base, node.module] if node.module else base))
            else:
                names.add(node.module)
    return names


@pytest.mark.parametrize("layer", ORDER)
def test_imports_point_down(layer):
    above = {f"analysis.{name}" for name in ORDER[ORDER.index(layer) + 1 :]}
    for path in (PACKAGE / layer).glob("*.py"):
        wrong = {m for m in imports(path) if any(m == a or m.startswith(a + ".") for a in above)}
        assert not wrong, f"{path.relative_to(PACKAGE.parent)} imports {sorted(wrong)}, above its layer"


def test_measures_never_import_torch_nn_datasets_or_training():
    for path in (PACKAGE / "measures").glob("*.py"):
        found = {m for m in imports(path) if m.startswith(("torch.nn", "torchvision", "analysis.networks"))}
        assert not found, f"{path.name} imports {sorted(found)}"


def test_every_module_sits_in_a_layer():
    loose = sorted(p.name for p in PACKAGE.glob("*.py") if p.name != "__init__.py")
    assert not loose, f"modules outside the layers: {loose}"


def test_one_cca_call_loads_no_torch_nn():
    code = ("import sys, numpy as np, analysis; x = np.random.default_rng(0).standard_normal((50, 4)); "
            "analysis.cca(x, x[:, ::-1] + 1); analysis.similarity_grid([x, x]); "
            "print(sorted(m for m in sys.modules if m.startswith(('torch', 'torchvision'))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_every_third_party_import_is_a_declared_dependency():
    # the installed package's metadata: pyproject.toml's dependencies and extras as `make setup` installed them
    declared = {re.split(r"[\s;<>=!~\[]", r, maxsplit=1)[0].lower() for r in requires("analysis")}
    distributions = packages_distributions()
    tops = {name.split(".")[0] for path in PACKAGE.rglob("*.py") for name in imports(path)}
    third_party = tops - set(sys.stdlib_module_names) - {"analysis", "__future__"}
    missing = {t for t in third_party if not {d.lower() for d in distributions.get(t, [t])} & declared}
    assert not missing, f"imported by analysis but not in pyproject.toml's dependencies: {sorted(missing)}"

def test_every_public_name_resolves():
    import analysis

    for name in analysis.__all__:
        assert getattr(analysis, name) is not None
    with pytest.raises(AttributeError):
        _ = analysis.no_such_name


NOTEBOOKS = sorted((PACKAGE.parent / "notebooks").glob("[0-9][0-9]_*.ipynb"))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_every_notebook_takes_profile_and_dataset_and_passes_them_to_its_plan(path):
    import nbformat

    code = [c for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code"]
    parameters = next(c for c in code if "parameters" in c.metadata.get("tags", []))
    names = {line.split("=")[0].strip() for line in parameters.source.splitlines() if "=" in line.split("#")[0]}
    assert {"profile", "dataset"} <= names
    calls = [line for c in code for line in c.source.splitlines() if "study_plan(" in line]
    assert all("dataset=dataset" in line for line in calls), calls
