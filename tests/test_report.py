"""Figures with their numbers, claims, and the reproduction report."""
import json

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from analysis.pipeline.regression import drift, moved_numbers
from analysis.pipeline.report import Claim, check_claims, save_figure, verdicts, write_report


def test_save_figure_writes_png_and_numbers(tmp_path, monkeypatch):
    monkeypatch.setenv("SVCCA_FIGURES", str(tmp_path))
    fig, ax = plt.subplots()
    ax.plot([0, 1])
    save_figure(fig, "99_test", {"rho": np.array([0.5, 0.25]), "k": np.int64(3)}, {"profile": "quick"})
    assert (tmp_path / "99_test.png").stat().st_size > 1000
    saved = json.loads((tmp_path / "99_test.json").read_text())
    assert saved == {"figure": "99_test", "params": {"profile": "quick"}, "numbers": {"rho": [0.5, 0.25], "k": 3}}


def test_undefined_numbers_are_stored_as_null_and_compare_equal(tmp_path, monkeypatch):
    monkeypatch.setenv("SVCCA_FIGURES", str(tmp_path))
    fig, ax = plt.subplots()
    numbers = {"spearman": np.array([0.5, np.nan]), "first": [np.float64("nan"), np.inf]}
    for folder in ("base", "new"):
        monkeypatch.setenv("SVCCA_FIGURES", str(tmp_path / folder))
        save_figure(fig, "99_test", numbers)
    saved = json.loads((tmp_path / "new" / "99_test.json").read_text())
    assert saved["numbers"] == {"spearman": [0.5, None], "first": [None, float("inf")]}
    assert drift(tmp_path / "base", tmp_path / "new") == {}
    assert moved_numbers(None, 0.5, 1e-4, 0.01, "x") == ["x: None -> 0.5"]


def test_claims_are_printed_saved_and_reported_with_their_control(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("SVCCA_FIGURES", str(tmp_path))
    good = [Claim("similar nets are similar", True, {"svcca": 0.91234}, paper="Fig. 1: above 0.9", ours=0.91234,
                  control=0.25, sensitivity="fails with 10 directions kept")]
    check_claims("99_test", "a study", good)
    out = capsys.readouterr().out
    assert "HOLDS  similar nets are similar" in out and "sensitivity: fails with 10 directions kept" in out
    assert verdicts(good) == "HOLDS  similar nets are similar"
    assert good[0].margin == 0.91234 - 0.25
    check_claims("98_test", "a study", [Claim("a finding that fails", False, {"x": 0.1}),
                                        Claim("a tie", None, {"spearman": float("nan")})])  # no exception
    assert verdicts([Claim("a tie", None)]) == "UNDETERMINED  a tie"
    report = write_report(tmp_path, tmp_path / "REPORT.md")
    assert ("| 99_test: a study | similar nets are similar | Fig. 1: above 0.9 | 0.912 | 0.25 | 0.662 | HOLDS "
            "(sensitivity: fails with 10 directions kept) | svcca = 0.912 |") in report
    assert report.count("**FAILS**") == 1 and report.count("**UNDETERMINED**") == 1


def test_a_bar_in_a_claim_stays_inside_its_cell(tmp_path, monkeypatch):
    monkeypatch.setenv("SVCCA_FIGURES", str(tmp_path))
    check_claims("97_test", "a study", [Claim("best |r| below 0.5", True, {"r": 0.3})])
    row = next(line for line in write_report(tmp_path, tmp_path / "R.md").splitlines() if "best" in line)
    assert "best \\|r\\| below 0.5" in row and row.count(" | ") == 7
