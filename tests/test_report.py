"""Figures with their numbers, claims, and the reproduction report."""
import json

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pytest

from analysis.pipeline.report import Claim, check_claims, save_figure, verdicts, write_report


def test_save_figure_writes_png_and_numbers(tmp_path, monkeypatch):
    monkeypatch.setenv("SVCCA_FIGURES", str(tmp_path))
    fig, ax = plt.subplots()
    ax.plot([0, 1])
    save_figure(fig, "99_test", {"rho": np.array([0.5, 0.25]), "k": np.int64(3)}, {"profile": "quick"})
    assert (tmp_path / "99_test.png").stat().st_size > 1000
    saved = json.loads((tmp_path / "99_test.json").read_text())
    assert saved == {"figure": "99_test", "params": {"profile": "quick"}, "numbers": {"rho": [0.5, 0.25], "k": 3}}


def test_claims_are_printed_saved_and_asserted(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("SVCCA_FIGURES", str(tmp_path))
    good = [Claim("similar nets are similar", True, {"svcca": 0.91234})]
    check_claims("99_test", "a study", good)
    assert "HOLDS  similar nets are similar" in capsys.readouterr().out
    assert verdicts(good) == "HOLDS  similar nets are similar"
    write_report(tmp_path, tmp_path / "REPORT.md")
    with pytest.raises(AssertionError, match="do not hold"):
        check_claims("98_test", "a study", [Claim("a finding that fails", False, {"x": 0.1})])
    report = (tmp_path / "REPORT.md").read_text()
    assert "| 99_test: a study | similar nets are similar | svcca = 0.912 | yes |" in report
    assert write_report(tmp_path, tmp_path / "REPORT.md").count("**no**") == 1
