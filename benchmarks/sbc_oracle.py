"""Is an SBC run's coverage of a typical value the fit's, or its truths'? An oracle answers.

Run:  .venv/bin/python benchmarks/sbc_oracle.py --parameter V       (about 2 minutes; not part of CI)
      .venv/bin/python benchmarks/sbc_oracle.py --parameter omega_V (the same for V's IIV SD)

For a parameter P with IIV, rich data pin each subject's P_i down; the typical value is then informed
through the 12 subjects' P_i alone. The oracle is the exact posterior of log P_typical given the
subjects' *true* P_i (the simulator's own draws, regenerated from each replication's seed): prior
log P ~ N(log median, sd_log) and omega ~ HalfNormal(omega scale) from the spec, log P_i ~ N(log P,
omega), integrated on a grid (the flip-flop wall left out: the only approximation). For each committed
run named below it reports the fit's 90% coverage of P, the oracle's on the same truths, and the
replications each misses; and the oracle's coverage on 2,000 fresh draws of the prior per model.
If the oracle misses the same replications as often as the fits, the fits are right given their data
and the shortfall lies in the truths that were drawn; if the oracle covers 0.90 on fresh draws, those
truths were an unusual sample. Writes ``benchmarks/results/sbc_oracle_PARAMETER.csv``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))
from sbc import draw_prior  # noqa: E402

import poppk  # noqa: E402

RUNS = [("sbc_lognormal_sigma", "oral1cmt", "rich", 20181103), ("sbc_lognormal_sigma_seed7", "oral1cmt", "sparse", 7),
        ("sbc_mm", "oral1cmt_mm", "rich", 20181103), ("sbc_mm_seed7", "oral1cmt_mm", "rich", 7)]


def oracle_covers(log_ind: np.ndarray, true_log: float, median: float, sd_log: float, omega_scale: float,
                  level: float = 0.90, true_omega: float | None = None) -> bool:
    """Does the oracle's central ``level`` interval of log P_typical contain ``true_log`` (or, given
    ``true_omega``, its interval of omega contain that)?"""
    n, m = log_ind.size, log_ind.mean()
    # The posterior of mu lies within 5 of the subjects' mean for the shipped omega scale 0.5 (omega <= 3 on
    # the grid: SE <= 0.9 with 12 subjects);
    # a step of 0.002 resolves the narrowest intervals (omega 0.05: 90% interval about 0.05 wide).
    mu = m + np.linspace(-5.0, 5.0, 5001)
    om = np.linspace(1e-3, 6 * omega_scale, 1500)
    ss = float(((log_ind - m) ** 2).sum())
    lp = (stats.norm.logpdf(mu, np.log(median), sd_log)[:, None] + stats.halfnorm.logpdf(om, scale=omega_scale)[None, :]
          - n * np.log(om)[None, :] - (ss + n * (mu[:, None] - m) ** 2) / (2 * om[None, :] ** 2))
    density = np.exp(lp - lp.max())
    post, grid, truth = (density.sum(axis=1), mu, true_log) if true_omega is None else (density.sum(axis=0), om, true_omega)
    cdf = np.cumsum(post) / post.sum()
    lo, hi = np.interp([(1 - level) / 2, (1 + level) / 2], cdf, grid)
    return bool(lo <= truth <= hi)


def oracle(spec, target: str):
    """``truth -> bool``: does the oracle's 90% interval of ``target`` (P, or omega_P) cover its truth?"""
    name = target.removeprefix("omega_")
    prior = next(p.prior for p in spec.parameters if p.name == name)
    omega_scale = dict(zip(spec.iiv.parameters, spec.iiv.omega))[name]

    def covers(truth: dict) -> bool:
        return oracle_covers(np.log(truth["_ind"][name]), np.log(truth[name]), prior.median, prior.sd_log,
                             omega_scale, true_omega=truth[target] if target != name else None)

    return covers


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parameter", default="V", choices=["V", "KA", "omega_V", "omega_KA"],
                        help="a parameter with IIV in both shipped specs of RUNS, or its omega")
    parser.add_argument("--fresh", type=int, default=2000, help="fresh prior draws per model")
    args = parser.parse_args()
    target = args.parameter
    rows = []
    for folder, model, design, seed in RUNS:
        spec = poppk.load_spec(model)
        covers = oracle(spec, target)
        ranks = pd.read_csv(HERE / "results" / folder / f"{spec.name}_{design}_ranks.csv")
        hit = np.array([covers(draw_prior(spec, np.random.default_rng([seed, r]))) for r in ranks["rep"]])
        fit = ranks[f"in90_{target}"].to_numpy(bool)
        rows.append({"run": f"{folder} {design}", "replications": len(fit), "fit_coverage90": fit.mean(),
                     "oracle_coverage90": hit.mean(), "both_miss": int((~fit & ~hit).sum()),
                     "fit_only_miss": int((~fit & hit).sum()), "oracle_only_miss": int((fit & ~hit).sum())})
    for model in ("oral1cmt", "oral1cmt_mm"):
        spec = poppk.load_spec(model)
        covers = oracle(spec, target)
        hits = [covers(draw_prior(spec, np.random.default_rng([99, i]))) for i in range(args.fresh)]
        rows.append({"run": f"{model}: fresh prior draws", "replications": args.fresh,
                     "oracle_coverage90": float(np.mean(hits))})
    table = pd.DataFrame(rows)
    table.to_csv(HERE / "results" / f"sbc_oracle_{target}.csv", index=False)
    print(table.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
