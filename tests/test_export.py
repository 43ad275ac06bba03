"""Report exports: the parameter table in CSV, xlsx, Markdown and LaTeX, checked against summary.csv.

Reference values: the fit folder's own ``summary.csv`` (posterior quantiles written by ``poppk fit``);
CV% of a log-normal, 100 sqrt(exp(omega^2) - 1), by hand. The xlsx is read back with pandas/openpyxl
(what a spreadsheet program opens), the Markdown rendered by Python-Markdown's tables extension.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from poppk.export import parameter_table, to_latex, to_markdown


def _summary(folder):
    return pd.read_csv(folder / "summary.csv").set_index("parameter")


def test_xlsx_export_matches_summary(theo_quick_fit, tmp_path, cli):
    res = cli("export", str(theo_quick_fit), "--format", "xlsx", "--out", str(tmp_path))
    assert res.returncode == 0, res.stderr
    book = pd.read_excel(tmp_path / "tables.xlsx", sheet_name=None)
    assert set(book) == {"parameters", "individual"}
    params = book["parameters"].set_index("parameter")
    summary = _summary(theo_quick_fit)
    for name in ("CL", "V", "KA", "sigma_add"):
        for col in ("q5", "q95"):
            assert params.loc[name, col] == pytest.approx(summary.loc[name, col], rel=1e-12)
        assert params.loc[name, "median"] == pytest.approx(summary.loc[name, "q50"], rel=1e-12)
    for p in ("CL", "V", "KA"):
        omega = summary.loc[f"omega_{p}", ["q50", "q5", "q95"]].to_numpy(float)
        np.testing.assert_allclose(params.loc[f"omega_{p}", ["median", "q5", "q95"]].to_numpy(float),
                                   100 * np.sqrt(np.exp(omega**2) - 1), rtol=1e-12)
        assert params.loc[f"omega_{p}", "unit"] == "CV%"
        # eta-shrinkage 1 - SD(individual means) / omega is below 100% and may dip below 0 when the subjects'
        # means spread more than the posterior omega (NONMEM reports such values too); a short fit of 12 subjects
        # gave -0.9%.
        assert -25 < params.loc[f"omega_{p}", "shrinkage_pct"] < 100
    assert params.loc["CL", "unit"] == "L/h" and params.loc["V", "unit"] == "L" and params.loc["KA", "unit"] == "1/h"
    individual = book["individual"]
    assert len(individual) == 12 and {"ID", "CL", "CL_q5", "CL_q95"} <= set(individual.columns)


def test_markdown_export_renders_as_a_table(theo_quick_fit, tmp_path, cli):
    import markdown

    res = cli("export", str(theo_quick_fit), "--format", "md", "--out", str(tmp_path))
    assert res.returncode == 0, res.stderr
    html = markdown.markdown((tmp_path / "tables.md").read_text(), extensions=["tables"])
    assert html.count("<table>") == 2
    summary = _summary(theo_quick_fit)
    assert f"<td>{summary.loc['CL', 'q50']:.4g}</td>" in html
    assert "| CL |" in res.stdout  # the command prints the parameter table too


def test_csv_and_tex_exports(theo_quick_fit, tmp_path, cli):
    res = cli("export", str(theo_quick_fit), "--format", "csv", "--out", str(tmp_path / "csv"))
    assert res.returncode == 0, res.stderr
    table = pd.read_csv(tmp_path / "csv" / "parameters.csv").set_index("parameter")
    assert table.loc["V", "median"] == pytest.approx(_summary(theo_quick_fit).loc["V", "q50"], rel=1e-12)
    res = cli("export", str(theo_quick_fit), "--format", "tex", "--out", str(tmp_path / "tex"))
    tex = (tmp_path / "tex" / "tables.tex").read_text()
    assert tex.count(r"\begin{tabular}") == 2 and r"CV\%" in tex and r"omega\_CL" in tex


def test_regimen_table_joins_the_export(theo_quick_fit, tmp_path, cli):
    import shutil

    folder = tmp_path / "fit"
    shutil.copytree(theo_quick_fit, folder)
    res = cli("simulate", str(folder), "--regimen", "320 mg q12h x 7 d", "--n", "200")
    assert res.returncode == 0, res.stderr
    res = cli("export", str(folder), "--format", "xlsx")
    assert res.returncode == 0, res.stderr
    book = pd.read_excel(folder / "export" / "tables.xlsx", sheet_name=None)
    assert "regimens" in book and (book["regimens"]["regimen"] == "320 mg q12h x 7 d").all()


def test_bad_export_requests_fail_cleanly(tmp_path, cli, theo_quick_fit):
    res = cli("export", str(tmp_path / "nope"), "--format", "md")
    assert res.returncode == 2 and "Traceback" not in res.stderr and "nope" in res.stderr
    res = cli("export", str(theo_quick_fit), "--format", "docx")
    assert res.returncode == 2 and "docx" in res.stderr


def test_writers_escape_their_syntax():
    frame = pd.DataFrame({"a": ["x|y", "50%_b"], "b": [1.23456789, np.nan]})
    md = to_markdown(frame)
    assert "x\\|y" in md and "1.235" in md and md.splitlines()[2].count("|") == 4
    tex = to_latex(frame)
    assert r"50\%\_b" in tex and r"\bottomrule" in tex


def test_parameter_table_sections(theo_quick_fit):
    import poppk

    table = parameter_table(poppk.load_fit(theo_quick_fit))
    assert list(table.section.unique()) == ["typical value", "between-subject variability", "residual error"]
    assert table.set_index("parameter").loc["CL", "description"] == "clearance (CL/F)"  # theophylline: oral


def test_parameters_are_labelled_apparent_only_for_extravascular_data(tmp_path):
    """CL/F where every dose entered the depot (F unknown); CL where an intravenous dose fixes the scale
    (a dose into the central compartment, NONMEM CMT 2 of ADVAN2), and for IV kernels."""
    from types import SimpleNamespace

    import poppk
    from poppk.export import describe_parameters

    theo = poppk.datasets.load("theophylline")
    oral = describe_parameters(SimpleNamespace(spec=poppk.model.load_spec("oral1cmt"), data=theo))
    assert oral["CL"] == "clearance (CL/F)" and oral["V"] == "volume of distribution (V/F)"
    assert oral["KA"].endswith("(KA)")
    frame = theo.to_frame()
    first = frame.index[frame["EVID"] == 1][0]
    frame.loc[first, "CMT"] = 2  # one subject's dose given intravenously
    mixed = poppk.data.from_frame(frame, warn=False)
    assert describe_parameters(SimpleNamespace(spec=poppk.model.load_spec("oral1cmt"), data=mixed))["CL"] == \
        "clearance (CL)"
    iv = describe_parameters(SimpleNamespace(spec=poppk.model.load_spec("iv2cmt"), data=mixed))
    assert iv["CL"] == "clearance (CL)" and iv["V1"] == "central volume (V1)"
