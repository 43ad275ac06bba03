"""Report tables from a fit folder: parameters, individuals, regimen exposures -> CSV, xlsx, Markdown, LaTeX.

The parameter table is the one a population PK report needs: typical values
with units, covariate effects, between-subject variability as CV%, residual
error, eta-shrinkage, each with its posterior median and 90% credible
interval, and R-hat and bulk ESS beside them. Quantiles are those of
``summary.csv``; where a parameter is reported on another scale (an omega as
CV%, a proportional error as %), the scale is a monotone function of it and
the quantiles are transformed with it, so the two files always agree.

Examples
--------
>>> import poppk
>>> fit = poppk.fit(poppk.datasets.load("theophylline"), "oral1cmt_additive", chains=1, warmup=100,
...                 samples=100, progress=False)
>>> table = parameter_table(fit)
>>> list(table.parameter[:3])
['CL', 'V', 'KA']
>>> print(to_markdown(table[["parameter", "unit"]].head(2)))
| parameter | unit |
|---|---|
| CL | L/h |
| V | L |
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from .errors import ExportError

FORMATS = ("csv", "xlsx", "md", "tex")

def describe_parameters(fit) -> dict[str, str]:
    """What each structural parameter of ``fit`` is, for tables: the kernel's own description and the
    name as estimated, apparent (``CL/F``) where the data were all extravascular
    (:func:`poppk.pk.apparent_parameters`), plain (``CL``) where intravenous doses fix the scale."""
    from .pk import apparent_parameters

    kernel = fit.spec.make_kernel(fit.data.dose_unit, fit.data.conc_unit)
    names = [p.name for p in fit.spec.parameters]
    apparent = set(apparent_parameters(kernel, fit.data.doses, names))
    out = {}
    for name in names:
        text = kernel.descriptions.get(name)
        if text is None and name[:1] in "DRF" and name[1:].isdigit():
            text = {"D": "infusion duration", "R": "infusion rate", "F": "bioavailability"}[name[0]]
            text = f"{text}, CMT {name[1:]}"
        if name in apparent:
            out[name] = f"{text or name} ({name}/F)"
        else:
            out[name] = f"{text} ({name})" if text else name
    return out


def _cv_pct(omega):
    """CV% of a log-normal with log-scale SD ``omega``: 100 sqrt(exp(omega^2) - 1)."""
    return 100 * np.sqrt(np.expm1(np.asarray(omega, dtype=float) ** 2))


def parameter_table(fit) -> pd.DataFrame:
    """The population parameters as a report shows them.

    Columns: ``section`` (typical value, covariate effect, between-subject variability, between-occasion
    variability, residual error), ``parameter``, ``description``, ``unit``, ``median``, ``q5``, ``q95`` (90% credible
    interval), ``shrinkage_pct`` (eta-shrinkage of IIV parameters), ``r_hat``, ``ess_bulk``.
    Omegas are given as CV% (their log-scale SD and variance are in the description), ``sigma_log`` as
    CV%, ``sigma_prop`` as %, categorical covariate effects as the ratio of the parameter against the
    reference level (``exp`` of the log-scale shift); the other values in the units of ``unit``. Fixed
    typical values and fixed covariate effects (allometric exponents) are listed with their value and
    no interval. A Laplace fit (``method="laplace"``) gives ``estimate`` (the mode) in place of
    ``median``, its normal-approximation 90% interval, and ``rse_pct`` (of the parameter as estimated:
    the omega, not the CV%) in place of ``r_hat`` and ``ess_bulk``.

    Examples
    --------
    >>> import poppk
    >>> fit = poppk.fit(poppk.datasets.load("theophylline"), "oral1cmt_additive", chains=1, warmup=100,
    ...                 samples=100, progress=False)
    >>> list(parameter_table(fit).parameter[:3])
    ['CL', 'V', 'KA']
    """
    from .fit import parameter_units, shrinkage
    from .model import covariate_coding, effect_names

    laplace = fit.info.get("method") == "laplace"
    if laplace:  # the mode and its normal approximation, not the draws' quantiles
        est = fit.estimates().set_index("parameter")
        summary = pd.DataFrame({"q50": est["estimate"], "q5": est["q5"], "q95": est["q95"], "r_hat": np.nan,
                                "ess_bulk": np.nan}, index=est.index)
    else:
        summary = fit.summary().set_index("parameter")
    units = parameter_units(fit.spec, fit.data, list(summary.index))
    shrink = shrinkage(fit.tree, list(fit.spec.iiv.parameters))
    descriptions = describe_parameters(fit)
    coding = covariate_coding(fit.spec, fit.data)
    effects = {}  # sample site -> (effect, level or None)
    for c in fit.spec.covariates:
        names = effect_names(c, coding.levels)
        lv = coding.levels.get(c.name, (None,)) if c.kind == "categorical" and c.threshold is None else (None,) * len(names)
        effects.update({n: (c, level) for n, level in zip(names, lv)})
    rows = []

    def effect_row(name, c, level, q, r):
        desc = c.describe(coding.references.get(c.name)) + (f" {level}" if level is not None else "")
        unit = ""
        if c.kind == "categorical":  # reported as the ratio of the parameter, as papers do
            desc, unit, q = f"{desc} (log-scale shift {q[0]:.3g})", "ratio", np.exp(q)
        return {"section": "covariate effect", "parameter": name, "description": desc, "unit": unit,
                "median": q[0], "q5": q[1], "q95": q[2], "shrinkage_pct": np.nan, "r_hat": r["r_hat"],
                "ess_bulk": r["ess_bulk"]}

    for name, r in summary.iterrows():
        q = np.array([r["q50"], r["q5"], r["q95"]], dtype=float)
        unit, shr = units.get(name, ""), np.nan
        if name in effects:
            rows.append(effect_row(name, *effects[name], q, r))
            continue
        if name.startswith("omega_"):
            occasion = name.startswith("omega_iov_")
            target = name[len("omega_iov_" if occasion else "omega_"):]
            section, desc, unit = ("between-occasion variability" if occasion else "between-subject variability"), (
                f"{'IOV' if occasion else 'IIV'} of {target} (log-normal; SD on the log scale {q[0]:.3g} "
                f"[{q[1]:.3g}, {q[2]:.3g}], variance {q[0] ** 2:.3g} [{q[1] ** 2:.3g}, {q[2] ** 2:.3g}])"), "CV%"
            q, shr = _cv_pct(q), (np.nan if occasion else 100 * shrink.get(target, np.nan))
        elif name.startswith("sigma_"):
            section = "residual error"
            if name == "sigma_log":
                desc, unit, q = f"exponential error (log-scale SD {q[0]:.3g})", "CV%", _cv_pct(q)
            elif name == "sigma_prop":
                desc, unit, q = "proportional error", "%", 100 * q
            else:
                desc = "additive error (SD)"
        elif name in descriptions:
            section, desc = "typical value", descriptions[name]
        else:
            section, desc = "covariate effect", name
        rows.append({"section": section, "parameter": name, "description": desc, "unit": unit,
                     "median": q[0], "q5": q[1], "q95": q[2], "shrinkage_pct": shr,
                     "r_hat": r["r_hat"], "ess_bulk": r["ess_bulk"]})
    nothing = {"r_hat": np.nan, "ess_bulk": np.nan}
    for p in fit.spec.parameters:  # fixed values are part of the model a report states
        if p.fixed is not None:
            rows.append({"section": "typical value", "parameter": p.name, "description": f"{descriptions[p.name]} (fixed)",
                         "unit": units.get(p.name, ""), "median": p.fixed, "q5": np.nan, "q95": np.nan,
                         "shrinkage_pct": np.nan, **nothing})
    for name, (c, level) in effects.items():
        if c.fixed is not None:
            row = effect_row(name, c, level, np.array([c.fixed, np.nan, np.nan]), nothing)
            rows.append({**row, "description": row["description"] + " (fixed)"})
    order = ["typical value", "covariate effect", "between-subject variability", "between-occasion variability",
             "residual error"]
    table = pd.DataFrame(rows)
    table["_k"] = table["section"].map(order.index)
    table = table.sort_values("_k", kind="stable").drop(columns="_k").reset_index(drop=True)
    if laplace:
        table = table.rename(columns={"median": "estimate"}).drop(columns=["r_hat", "ess_bulk"])
        table["rse_pct"] = table["parameter"].map(est["rse_pct"])
    return table


def report_tables(folder: str | Path) -> dict[str, pd.DataFrame]:
    """Every table of a fit folder a report needs: ``parameters``, ``individual`` and, where
    ``poppk simulate`` wrote them into the folder, ``regimens`` (exposure summary by regimen)."""
    from .fit import load_fit

    folder = Path(folder)
    fit = load_fit(folder)
    tables = {"parameters": parameter_table(fit), "individual": pd.read_csv(folder / "individual.csv")
              if (folder / "individual.csv").exists() else fit.individual()}
    sims = folder / "simulations" / "summary.csv"
    if sims.exists():
        tables["regimens"] = pd.read_csv(sims)
    return tables


def _fmt(v) -> str:
    if isinstance(v, (float, np.floating)):
        return "" if np.isnan(v) else f"{v:.4g}"
    return str(v)


def to_markdown(frame: pd.DataFrame) -> str:
    """A GitHub-flavoured Markdown table (numbers to 4 significant digits)."""
    esc = lambda s: s.replace("|", "\\|")  # noqa: E731
    lines = ["| " + " | ".join(esc(str(c)) for c in frame.columns) + " |", "|" + "---|" * len(frame.columns)]
    lines += ["| " + " | ".join(esc(_fmt(v)) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join(lines)


_TEX = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_", "{": r"\{",
        "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}"}


def _tex(s: str) -> str:
    return "".join(_TEX.get(ch, ch) for ch in s)


def to_latex(frame: pd.DataFrame, caption: str = "") -> str:
    """A ``booktabs`` LaTeX table (needs ``\\usepackage{booktabs}``)."""
    cols = "l" * 1 + "".join("r" if pd.api.types.is_numeric_dtype(frame[c]) else "l" for c in frame.columns[1:])
    lines = [r"\begin{table}[ht]", r"\centering"]
    if caption:
        lines.append(rf"\caption{{{_tex(caption)}}}")
    lines += [rf"\begin{{tabular}}{{{cols}}}", r"\toprule",
              " & ".join(_tex(str(c)) for c in frame.columns) + r" \\", r"\midrule"]
    lines += [" & ".join(_tex(_fmt(v)) for v in row) + r" \\" for row in frame.itertuples(index=False)]
    lines += [r"\bottomrule", r"\end{tabular}", r"\end{table}"]
    return "\n".join(lines)


def _write_xlsx(tables: dict[str, pd.DataFrame], path: Path) -> None:
    from openpyxl import Workbook
    from openpyxl.styles import Font

    book = Workbook()
    book.remove(book.active)
    for name, frame in tables.items():
        sheet = book.create_sheet(name[:31])
        sheet.append([str(c) for c in frame.columns])
        for cell in sheet[1]:
            cell.font = Font(bold=True)
        for row in frame.itertuples(index=False):
            sheet.append([None if isinstance(v, float) and np.isnan(v) else
                          (v.item() if isinstance(v, np.generic) else v) for v in row])
        for k, col in enumerate(frame.columns, start=1):
            width = max([len(str(col))] + [len(_fmt(v)) for v in frame[col]])
            sheet.column_dimensions[sheet.cell(1, k).column_letter].width = min(width + 2, 80)
        sheet.freeze_panes = "A2"
    book.save(path)


def export_tables(folder: str | Path, fmt: str = "csv", out: str | Path | None = None) -> list[Path]:
    """Write :func:`report_tables` of a fit folder as ``fmt`` into ``out`` (default ``FOLDER/export``).

    ``csv``: one file per table; ``xlsx``: one workbook, a sheet per table; ``md`` and ``tex``:
    one document with a table per table. Returns the paths written.

    Examples
    --------
    >>> import poppk
    >>> fit = poppk.fit(poppk.datasets.load("theophylline"), "oral1cmt_additive", chains=1, warmup=100,
    ...                 samples=100, progress=False)
    >>> import tempfile, pathlib
    >>> folder = fit.save(pathlib.Path(tempfile.mkdtemp()) / "theo")
    >>> [p.suffix for p in export_tables(folder, "md")]
    ['.md']
    """
    if fmt not in FORMATS:
        raise ExportError(f"unknown export format {fmt!r}; use one of {', '.join(FORMATS)}")
    folder = Path(folder)
    tables = report_tables(folder)
    out = Path(out) if out is not None else folder / "export"
    out.mkdir(parents=True, exist_ok=True)
    titles = {"parameters": "Population parameters (posterior median and 90% credible interval)",
              "individual": "Individual parameters (posterior median and 90% credible interval)",
              "regimens": "Exposure by regimen (virtual patients)"}
    if fmt == "csv":
        paths = []
        for name, frame in tables.items():
            paths.append(out / f"{name}.csv")
            frame.to_csv(paths[-1], index=False)
        return paths
    path = out / f"tables.{fmt}"
    if fmt == "xlsx":
        _write_xlsx(tables, path)
    elif fmt == "md":
        path.write_text("\n\n".join(f"## {titles[n]}\n\n{to_markdown(f)}" for n, f in tables.items()) + "\n")
    else:
        path.write_text("\n\n".join(to_latex(f, titles[n]) for n, f in tables.items()) + "\n")
    return [path]


__all__ = ["FORMATS", "export_tables", "parameter_table", "report_tables", "to_latex", "to_markdown"]
