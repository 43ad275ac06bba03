"""``poppk demo``: the workflow on the bundled LXI-15029 reconstruction.

Today it runs NCA (beside the paper's Tables 3-4), fits the linear model
(and, without ``--quick``, the Michaelis-Menten model, then compares them by
PSIS-LOO), and prints where everything went. Later steps (report,
simulation, exposure-toxicity, dosing) join as they land.
"""

from __future__ import annotations

import time
from pathlib import Path


def run_demo(out: str | Path = "demo-out", quick: bool = False, force: bool = False) -> dict:
    from . import datasets
    from .compare import compare_fits
    from .datasets._lxi15029_paper import acceptance, compare
    from .fit import fit
    from .nca import compute_nca

    start = time.perf_counter()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    written = {}
    entry = datasets.CATALOG["lxi15029"]
    print(f"poppk demo on the bundled trial: {entry.description}\n")

    print("1. NCA (linear-up/log-down, BLQ before Tmax = 0) ...")
    nca = compute_nca(datasets.path("lxi15029"), dose_unit=entry.dose_unit, conc_unit=entry.conc_unit, lloq=entry.lloq)
    nca.table().to_csv(out / "nca_profiles.csv", index=False)
    nca.summary().to_csv(out / "nca_summary.csv", index=False)
    table, dp = compare()
    table.to_csv(out / "nca_vs_paper.csv", index=False)
    ok, counts, slopes = acceptance(table, dp)
    print(f"   cohorts within 1.5x of the paper (Cmax, AUC day 1 / day 28): {counts}")
    print(f"   power-model slope of AUC on dose: day 1 {slopes[0]:.2f}, day 28 {slopes[1]:.2f} "
          "(> 1: more than dose-proportional, as the paper found)")
    written["nca"] = [out / "nca_profiles.csv", out / "nca_summary.csv", out / "nca_vs_paper.csv"]

    data = datasets.load("lxi15029")
    draws = dict(chains=4, warmup=300, samples=300) if quick else dict(chains=4, warmup=1000, samples=1000)
    models = ["oral1cmt"] if quick else ["oral1cmt", "oral1cmt_mm"]
    fits = []
    for i, name in enumerate(models, start=2):
        print(f"\n{i}. Bayesian fit, model {name}: {draws['chains']} chains x "
              f"({draws['warmup']} warmup + {draws['samples']} draws) ...")
        t0 = time.perf_counter()
        result = fit(data, name, progress=False, command="poppk demo", **draws)
        folder = result.save(out / "fits" / name, force=True)
        fits.append(folder)
        s = result.summary()
        diag = result.diagnostics()
        line = ", ".join(f"{r.parameter} {r.q50:.3g} [{r.q5:.3g}, {r.q95:.3g}]" for r in s.itertuples())
        print(f"   {line}")
        print(f"   {'converged' if diag['converged'] else 'NOT converged: ' + '; '.join(diag['warnings'])} "
              f"({time.perf_counter() - t0:.0f} s, {diag['mean_num_steps']:.0f} leapfrog steps/iteration)")
        written[f"fit_{name}"] = folder
    if len(fits) > 1:
        print("\n4. PSIS-LOO comparison ...")
        cmp, notes = compare_fits(fits)
        cmp.to_csv(out / "model_comparison.csv", index=False)
        for r in cmp.itertuples():
            print(f"   {r.model:<14} elpd_loo {r.elpd_loo:9.1f}  (diff {r.elpd_diff:6.1f} +- {r.dse:.1f})")
        for n in notes:
            print(f"   ! {n}")
        written["comparison"] = out / "model_comparison.csv"
    else:
        print("\n(--quick: the Michaelis-Menten fit and the LOO comparison run without --quick)")
    print(f"\nwrote, in {time.perf_counter() - start:.0f} s:")
    for key, value in written.items():
        for v in value if isinstance(value, list) else [value]:
            print(f"   {v}")
    return written
