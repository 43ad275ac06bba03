"""Model comparison by PSIS-LOO (ArviZ), with Pareto-k warnings."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from .errors import FitError

#: Pareto k above this: the PSIS estimate for that observation is unreliable (Vehtari et al. 2024).
K_WARN = 0.7


def loo_fit(fit):
    """ArviZ ELPD (PSIS-LOO, pointwise over observations) of a fit."""
    import arviz as az

    return az.loo(fit.tree, pointwise=True)


def compare_fits(folders: list[str | Path]) -> tuple[pd.DataFrame, list[str]]:
    """Rank fit folders by expected log predictive density (higher is better).

    All fits must be to the same observations (the same records, BLQ handled
    the same way), or the comparison means nothing; this is checked.
    """
    import arviz as az

    from .fit import load_fit

    fits = {}
    for folder in folders:
        f = load_fit(folder)
        name = Path(folder).name
        if name in fits:
            name = str(folder)
        fits[name] = f
    sizes = {n: f.tree["log_likelihood"]["DV"].sizes["obs"] for n, f in fits.items()}
    if len(set(sizes.values())) > 1:
        raise FitError(f"the fits have different numbers of likelihood terms {sizes}: they were not fitted to the "
                       "same observations and cannot be compared by LOO")
    notes = []
    loos = {}
    for n, f in fits.items():
        loo = loo_fit(f)
        loos[n] = loo
        k = np.asarray(loo.pareto_k)
        bad = int((k > K_WARN).sum())
        if bad:
            notes.append(f"{n}: {bad} of {k.size} observations have Pareto k > {K_WARN}; "
                         "their LOO estimate is unreliable (consider K-fold cross-validation)")
    if len(fits) == 1:
        n, loo = next(iter(loos.items()))
        return pd.DataFrame([{"model": n, "elpd_loo": loo.elpd, "se": loo.se, "p_loo": loo.p}]), notes
    table = az.compare({n: f.tree for n, f in fits.items()}).reset_index().rename(columns={"index": "model"})
    keep = [c for c in ("model", "rank", "elpd", "p", "elpd_diff", "se", "dse", "weight", "warning") if c in table]
    table = table[keep].rename(columns={"elpd": "elpd_loo", "p": "p_loo"})
    return table, notes
