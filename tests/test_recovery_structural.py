"""Recovery of the generating parameters by the new structural models, with default fit settings
(slow: each fit is 4 chains x (1000 + 1000); run with -m slow).

Truth: the values below; data simulated by ``tests/_sim.py`` (log-normal IIV, exponential error) through
the same kernel. The fit must converge, and the truth must lie in a *simultaneous* 90% credible set:
each of the m parameters' central intervals at level 1 - 0.10/m (Bonferroni). A marginal 90% interval
for each of 7-9 parameters misses at least one truth in about half of all replications (1 - 0.9^m), so
requiring every marginal 90% interval to cover would test luck, not the fit; the marginal 90% misses
are printed (``-s``) for the record. Seed 7 draws the same CL etas for the two 30-subject cases, with mean
-0.124 (2.3 standard errors below 0): that realized population's geometric-mean CL is 3.53, not 4.0, and
both fits' marginal 90% intervals for CL ([3.33, 3.88] and [3.30, 3.88]) cover 3.53 and miss 4.0.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

import poppk

from ._sim import simulate_frame

pytestmark = pytest.mark.slow

CASES = {
    "iv1cmt bolus, repeated, sparse": dict(
        spec="iv1cmt", typical={"CL": 0.3, "V": 1.2}, omega={"CL": 0.3, "V": 0.2}, sigma=0.12, n=60,
        doses=[dict(TIME=0.0, AMT=10.0, II=12.0, ADDL=5)], times=[1.0, 11.5, 36.0, 71.5]),
    "iv2cmt infusion, rich": dict(
        spec="iv2cmt", typical={"CL": 4.0, "V1": 12.0, "Q": 6.0, "V2": 40.0}, omega={"CL": 0.3, "V1": 0.25, "Q": 0.2, "V2": 0.2},
        sigma=0.1, n=30, doses=[dict(TIME=0.0, AMT=500.0, RATE=500.0)],
        times=[0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0, 8.0, 12.0, 24.0]),
    "oral2cmt single dose, rich": dict(
        spec="oral2cmt", typical={"CL": 4.0, "V1": 20.0, "Q": 3.0, "V2": 60.0, "KA": 1.2}, omega={"CL": 0.3, "V1": 0.25, "KA": 0.3},
        sigma=0.1, n=30, doses=[dict(TIME=0.0, AMT=300.0)], times=[0.25, 0.5, 1.0, 2.0, 3.0, 5.0, 8.0, 12.0, 24.0, 48.0]),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_default_fit_recovers_the_truth(case, tmp_path):
    c = CASES[case]
    frame = simulate_frame(c["spec"], c["typical"], c["omega"], c["sigma"], c["doses"], c["times"], n_subjects=c["n"], seed=7)
    path = tmp_path / "data.csv"
    frame.to_csv(path, index=False, na_rep=".")
    data = poppk.read_nonmem(path, warn=False)
    fit = poppk.fit(data, c["spec"], progress=False)
    folder = fit.save(tmp_path / "fit")
    diag = json.loads((folder / "diagnostics.json").read_text())
    assert diag["divergences"] == 0 and diag["max_r_hat"] <= 1.01, diag["warnings"]
    truth = dict(c["typical"], sigma_log=c["sigma"], **{f"omega_{k}": v for k, v in c["omega"].items()})
    m = len(truth)
    level = 1 - 0.10 / m
    missed, marginal = {}, {}
    for k, v in truth.items():
        draws = fit.draws(k).ravel()
        lo, hi = np.quantile(draws, [(1 - level) / 2, (1 + level) / 2])
        q5, q95 = np.quantile(draws, [0.05, 0.95])
        if not lo <= v <= hi:
            missed[k] = (v, lo, hi)
        if not q5 <= v <= q95:
            marginal[k] = (v, round(float(q5), 4), round(float(q95), 4))
    print(f"{case}: marginal 90% intervals missing the truth: {marginal or 'none'}")
    assert not missed, f"truth outside the simultaneous 90% set (each at {level:.4f}): {missed}"
