"""Model comparison by PSIS-LOO (ArviZ), with Pareto-k warnings."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from .errors import FitError

#: Pareto k above this: the PSIS estimate for that observation is unreliable (Vehtari et al. 2024).
K_WARN = 0.7
#: Log-likelihood spread across draws below which a record's LOO value is exact without PSIS.
CONSTANT = 1e-6


def loo_fit(fit):
    """PSIS-LOO of a fit, pointwise over observations: ``(elpd_i, pareto_k, p_loo)``.

    Records whose log likelihood is the same in every draw, to ``CONSTANT`` (e.g. a BLQ record far
    below the LLOQ, whose censored likelihood is 1), need no importance sampling: their weights
    differ by less than a factor exp(1e-6), so their LOO value is their mean (Pareto k 0). ArviZ's
    PSIS cannot fit a tail to (nearly) constant values, so they are set aside and added back.
    """
    import arviz as az
    import xarray as xr

    ll = fit.tree["log_likelihood"]["DV"]
    spread = (ll.max(("chain", "draw")) - ll.min(("chain", "draw"))).values
    varying = np.flatnonzero(spread > CONSTANT)
    elpd = ll.mean(("chain", "draw")).values.astype(float).copy()
    k = np.zeros(elpd.size)
    p_loo = 0.0
    if varying.size:
        tree = fit.tree.copy()
        tree["log_likelihood"] = xr.DataTree(tree["log_likelihood"].to_dataset().isel(obs=varying))
        with warnings.catch_warnings():  # compare_fits reports high Pareto k itself, with the count
            warnings.filterwarnings("ignore", message="Estimated shape parameter of Pareto")
            loo = az.loo(tree, pointwise=True)
        elpd[varying] = np.asarray(loo.elpd_i)
        k[varying] = np.asarray(loo.pareto_k)
        p_loo = float(loo.p)
    return elpd, k, p_loo


def compare_fits(folders: list[str | Path]) -> tuple[pd.DataFrame, list[str]]:
    """Rank fit folders by expected log predictive density (higher is better).

    All fits must be to the same observations (the same records, BLQ handled
    the same way), or the comparison means nothing; this is checked. Columns:
    ``model, rank, elpd_loo, se, p_loo, elpd_diff, dse`` (the standard error of the
    difference from the best model, from the pointwise differences as in Vehtari et al. 2017).

    Examples
    --------
    >>> import tempfile, pathlib, poppk
    >>> data, out = poppk.datasets.load("theophylline"), pathlib.Path(tempfile.mkdtemp())
    >>> text = poppk.model.load_spec("oral1cmt_additive").text      # the same model with fewer random effects
    >>> _ = (out / "no_iiv_ka.toml").write_text(text.replace('name = "oral1cmt_additive"', 'name = "no_iiv_ka"')
    ...                                             .replace('["CL", "V", "KA"]', '["CL", "V"]'))
    >>> folders = [poppk.fit(data, str(m), chains=1, warmup=100, samples=100, progress=False).save(out / m.stem)
    ...            for m in (pathlib.Path("oral1cmt_additive"), out / "no_iiv_ka.toml")]
    >>> table, notes = compare_fits(folders)
    >>> sorted(table.model)
    ['no_iiv_ka', 'oral1cmt_additive']
    """
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
    point, rows = {}, []
    for n, f in fits.items():
        elpd, k, p_loo = loo_fit(f)
        point[n] = elpd
        bad = int((np.nan_to_num(k, nan=np.inf) > K_WARN).sum())
        if bad:
            notes.append(f"{n}: {bad} of {k.size} observations have Pareto k > {K_WARN} (or undefined); "
                         "their LOO estimate is unreliable (consider K-fold cross-validation)")
        rows.append({"model": n, "elpd_loo": elpd.sum(), "se": float(np.sqrt(elpd.size * elpd.var())),
                     "p_loo": p_loo})
    table = pd.DataFrame(rows).sort_values("elpd_loo", ascending=False).reset_index(drop=True)
    best = point[table.loc[0, "model"]]
    table.insert(1, "rank", np.arange(len(table)))
    diff = [best - point[m] for m in table["model"]]
    table["elpd_diff"] = [d.sum() for d in diff]
    table["dse"] = [float(np.sqrt(d.size * d.var())) for d in diff]
    return table, notes
