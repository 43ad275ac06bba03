"""NCA of the bundled LXI-15029 reconstruction beside the paper's Tables 3 and 4.

Usage: python scripts/compare_nca_with_paper.py [--csv OUT]

For each cohort: our geometric mean (or mean/median, as the paper reports it)
next to the paper's, their ratio, and how many cohorts fall within a factor
1.5; then the power-model dose-proportionality slopes. Exits 1 if the
acceptance check (Cmax and AUC within 1.5x for >= 5 of 7 cohorts on day 1
and day 28, AUC slope > 1) fails.
"""

from __future__ import annotations

import argparse
import sys

import pandas as pd

from poppk.datasets import compare_with_paper as compare, paper_acceptance as acceptance


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--csv", help="write the comparison table here")
    args = parser.parse_args()
    table, dp = compare()
    with pd.option_context("display.width", 200, "display.max_columns", 20, "display.float_format", "{:.3g}".format):
        print(table.to_string(index=False))
        print("\nDose proportionality, poppk on the reconstruction (paper: 'greater than dose proportional'):")
        print(dp[["profile", "metric", "n", "slope", "lower", "upper"]].to_string(index=False))
    if args.csv:
        table.to_csv(args.csv, index=False)
    ok, counts, slopes = acceptance(table, dp)
    print(f"\ncohorts within 1.5x of the paper: {counts}; AUC power slopes {slopes}: {'PASS' if ok else 'FAIL'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
