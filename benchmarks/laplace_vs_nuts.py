"""``poppk fit --method laplace`` against NUTS and against the truth, whole process, as a user runs it.

Run: .venv/bin/python benchmarks/designs.py            (once: the simulated designs)
     .venv/bin/python benchmarks/laplace_vs_nuts.py [--nuts] [--cases theophylline lxi15029 ...]

Each case is run as ``poppk fit DATA --model M --method laplace`` in a subprocess with the compilation
cache off (``POPPK_CACHE_DIR=off``: a first run) and again with a fresh cache folder filled by a first
run (a second run), timing the whole process (import, read, fit, writing the fit folder) and its peak
memory. With ``--nuts`` the default NUTS fit (4 x (1000 + 1000)) of the same data and model runs
beside it, once. Writes ``benchmarks/results/laplace_timing.csv`` (case, method, cache, seconds,
peak MB, converged) and ``benchmarks/results/laplace_vs_nuts.csv`` (case, parameter, Laplace
estimate and 90% interval, NUTS median and 90% interval, the truth of simulated designs, and the
relative differences).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

import poppk

HERE = Path(__file__).parent
OUT = HERE / "results"
DATA = HERE / "data"

CASES = {  # name: (data file, model, units, truth file)
    "theophylline": (poppk.datasets.path("theophylline"), "oral1cmt_additive", ("mg", "mg/L"), None),
    "lxi15029": (poppk.datasets.path("lxi15029"), "oral1cmt", ("mg", "ng/mL"), None),
    "rich_study": (DATA / "rich_study.csv", "oral1cmt", ("mg", "mg/L"), DATA / "rich_study_truth.json"),
    "sparse_monitoring": (DATA / "sparse_monitoring.csv", "oral1cmt", ("mg", "mg/L"),
                          DATA / "sparse_monitoring_truth.json"),
    "lxi15029_mm": (poppk.datasets.path("lxi15029"), "oral1cmt_mm", ("mg", "ng/mL"), None),
}


def run_fit(case: str, method: str, out: Path, cache: str) -> dict:
    data, model, (dose_unit, conc_unit), _ = CASES[case]
    cmd = [sys.executable, "-m", "poppk.cli", "fit", str(data), "--model", model, "--method", method, "--out",
           str(out), "--force", "--no-progress", "--dose-unit", dose_unit, "--conc-unit", conc_unit]
    env = {**os.environ, "POPPK_CACHE_DIR": cache, "MPLBACKEND": "Agg"}
    with tempfile.NamedTemporaryFile("r", suffix=".rss") as rss:  # GNU time: the process's peak RSS in KB
        t = time.perf_counter()
        res = subprocess.run(["/usr/bin/time", "-f", "%M", "-o", rss.name, *cmd], capture_output=True, text=True,
                             env=env)
        seconds = time.perf_counter() - t
        peak_kb = float(Path(rss.name).read_text().split()[-1])
    if res.returncode:
        raise SystemExit(f"{case} {method} failed:\n{res.stderr[-3000:]}")
    diag = json.loads((out / "diagnostics.json").read_text())
    return {"case": case, "method": method, "cache": "off" if cache == "off" else "warm", "seconds": round(seconds, 1),
            "peak_mb": round(peak_kb / 1024), "converged": diag["converged"],
            "date": datetime.date.today().isoformat(), "command": " ".join(["poppk"] + cmd[3:])}


def compare(case: str, laplace_dir: Path, nuts_dir: Path | None) -> pd.DataFrame:
    est = pd.read_csv(laplace_dir / "estimates.csv")
    table = est[["parameter", "estimate", "q5", "q95", "rse_pct"]].rename(
        columns={"estimate": "laplace", "q5": "laplace_q5", "q95": "laplace_q95"})
    table.insert(0, "case", case)
    truth_file = CASES[case][3]
    if truth_file is not None:
        truth = json.loads(Path(truth_file).read_text())
        table["truth"] = table["parameter"].map(truth)
        table["laplace_vs_truth"] = table["laplace"] / table["truth"] - 1
    if nuts_dir is not None:
        s = pd.read_csv(nuts_dir / "summary.csv").set_index("parameter")
        table["nuts_median"] = table["parameter"].map(s["q50"])
        table["nuts_q5"] = table["parameter"].map(s["q5"])
        table["nuts_q95"] = table["parameter"].map(s["q95"])
        table["laplace_vs_nuts"] = table["laplace"] / table["nuts_median"] - 1
    return table


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", nargs="+", default=list(CASES), choices=list(CASES))
    parser.add_argument("--nuts", action="store_true", help="also the default NUTS fit of each case")
    parser.add_argument("--first-only", action="store_true", help="only the first (cold) Laplace run of each case")
    args = parser.parse_args()
    OUT.mkdir(exist_ok=True)
    timing, tables = [], []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for case in args.cases:
            cache = str(tmp / f"cache_{case}")
            lap = tmp / f"{case}_laplace"
            timing.append(run_fit(case, "laplace", lap, "off"))  # a first run: everything compiled
            if not args.first_only:
                run_fit(case, "laplace", lap, cache)  # fills a fresh cache
                timing.append(run_fit(case, "laplace", lap, cache))  # a second run: compiled programs loaded
            print(timing[-2:], flush=True)
            nuts = None
            if args.nuts:
                nuts = tmp / f"{case}_nuts"
                timing.append(run_fit(case, "nuts", nuts, "off"))
                print(timing[-1], flush=True)
            tables.append(compare(case, lap, nuts))
            print(tables[-1].to_string(index=False), flush=True)
    timing = pd.DataFrame(timing)
    _merge(timing, OUT / "laplace_timing.csv", ["case", "method", "cache"])
    _merge(pd.concat(tables), OUT / "laplace_vs_nuts.csv", ["case", "parameter"])
    print(f"wrote {OUT / 'laplace_timing.csv'} and {OUT / 'laplace_vs_nuts.csv'}")
    return 0


def _merge(new: pd.DataFrame, path: Path, keys: list[str]) -> None:
    """Replace the rows measured now (same ``keys``), keep the others (measured on another day, or NUTS
    rows and columns when NUTS was not run again)."""
    if path.exists():
        old = pd.read_csv(path)
        both = old.merge(new[keys], on=keys, how="left", indicator=True)["_merge"] == "both"
        kept = old[~both.to_numpy()]
        if "laplace" in new.columns:  # the comparison table: carry NUTS columns over when not re-run
            nuts_cols = [c for c in old.columns if c.startswith("nuts") or c == "laplace_vs_nuts"]
            missing = [c for c in nuts_cols if c not in new.columns]
            if missing:
                new = new.merge(old[keys + missing], on=keys, how="left")
                new["laplace_vs_nuts"] = new["laplace"] / new["nuts_median"] - 1
        new = pd.concat([kept, new], ignore_index=True)
    new.sort_values(keys, kind="stable").to_csv(path, index=False)


if __name__ == "__main__":
    raise SystemExit(main())
