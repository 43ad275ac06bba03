"""Benefit-risk dose selection: per candidate regimen, the chance of the target exposure, of toxicity and of
response, the predicted median time to event, and a utility the user states.

Every quantity is a posterior, computed on the same simulated virtual patients (:func:`poppk.simulate_regimen`)
and paired draw by draw: draw ``s`` takes the patients of PK replicate ``s % R`` (one population-parameter
draw), the ``s``-th exposure-toxicity draw, the ``s``-th exposure-response draw and the ``s``-th survival
draw. So the utility ``U_s = sum_q w_q q_s`` of a regimen is itself a posterior draw, its interval carries
every model's uncertainty, and ``P(best)`` (the share of draws in which a regimen has the highest utility)
says how sure the choice is.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ..errors import EfficacyError

#: The quantities a utility can weigh: P(target exposure), P(toxicity), P(response), median time to event.
TERMS = ("target", "tox", "response", "pfs")


@dataclass(frozen=True)
class Utility:
    """A clinical utility: weights on :data:`TERMS` and constraints on the posterior medians.

    Weights are per unit of each quantity: probabilities between 0 and 1, ``pfs`` per unit of the survival
    model's time (``pfs=0.01`` with times in days: 100 days of median PFS are worth a certainty of response).
    A regimen is *feasible* when its median P(toxicity) is at most ``max_tox``, its median P(response) at
    least ``min_response`` and its median P(target) at least ``min_target`` (each when given).

    >>> u = Utility.parse("response=1, tox=-2", max_tox=0.3)
    >>> u.label
    '1*P(response) - 2*P(tox); P(tox) <= 0.3'
    """

    weights: dict = field(default_factory=dict)
    max_tox: float | None = None
    min_response: float | None = None
    min_target: float | None = None

    @classmethod
    def parse(cls, text: str | None, *, max_tox: float | None = None, min_response: float | None = None,
              min_target: float | None = None) -> Utility:
        """``"response=1,tox=-2,pfs=0.01"`` (terms of :data:`TERMS`, each once); an empty text has no
        weights (constraints only, nothing to rank by)."""
        weights = {}
        for part in filter(None, (p.strip() for p in (text or "").split(","))):
            name, sep, value = part.partition("=")
            name = name.strip().lower()
            if not sep or name not in TERMS:
                raise EfficacyError(f"utility term {part!r}: write NAME=WEIGHT with NAME one of {', '.join(TERMS)} "
                                    "(e.g. response=1,tox=-2)")
            if name in weights:
                raise EfficacyError(f"utility term {name!r} is given twice")
            try:
                weights[name] = float(value)
            except ValueError:
                raise EfficacyError(f"utility term {part!r}: the weight {value.strip()!r} is not a number") from None
        for key, v in (("max_tox", max_tox), ("min_response", min_response), ("min_target", min_target)):
            if v is not None and not 0 <= v <= 1:
                raise EfficacyError(f"{key} is a probability between 0 and 1, got {v}")
        return cls(weights, max_tox, min_response, min_target)

    @property
    def label(self) -> str:
        names = {"target": "P(target)", "tox": "P(tox)", "response": "P(response)", "pfs": "median PFS"}
        text = ""
        for k, w in self.weights.items():
            sign = ("-" if w < 0 else "") if not text else (" - " if w < 0 else " + ")
            text += f"{sign}{abs(w):g}*{names[k]}"
        cons = [f"P(tox) <= {self.max_tox:g}" if self.max_tox is not None else "",
                f"P(response) >= {self.min_response:g}" if self.min_response is not None else "",
                f"P(target) >= {self.min_target:g}" if self.min_target is not None else ""]
        return "; ".join(filter(None, [text or "no weights", *cons]))


@dataclass(frozen=True)
class BenefitRisk:
    """The table of :func:`benefit_risk` (one row per regimen), the recommended regimen (None when no
    utility was stated or none is feasible) and why, and the names of the models used."""

    table: pd.DataFrame
    recommended: str | None
    reason: str
    utility: Utility
    names: dict


def _share(x, level: float) -> tuple[float, float, float]:
    x = np.asarray(x, float)
    return float(np.median(x)), float(np.quantile(x, (1 - level) / 2)), float(np.quantile(x, (1 + level) / 2))


def benefit_risk(fit, regimens=None, *, target=None, tox=None, response=None, survival=None,
                 utility: Utility | None = None, n: int = 1000, seed: int = 0, max_draws: int = 1000,
                 level: float = 0.90, sim=None) -> BenefitRisk:
    """Score candidate regimens on benefit and risk for virtual patients drawn from ``fit``.

    Parameters
    ----------
    fit : Fit
    regimens : list of str or Regimen
        The candidates (``"110 mg q12h x 28 d"``), simulated for ``n`` virtual patients; or give ``sim``.
    target : Target, optional
        Adds ``p_target``: the share of patients whose exposure is in the window.
    tox, response : ExposureResponse, optional
        Exposure-toxicity and exposure-response models (:func:`poppk.tox.fit_exposure_response`; for a
        response such as disease control, fitted with ``subset=True``): ``p_tox`` and ``p_response``, the
        expected event and response rates.
    survival : SurvivalResult, optional
        Adds ``pfs_median``: the population's median time to event (:meth:`SurvivalResult.population_median`),
        in the model's time unit.
    utility : Utility, optional
        Ranks the regimens: the recommended one has the highest median utility among the feasible ones (ties,
        to 3 decimals, go to the lower daily dose).

    Returns
    -------
    BenefitRisk
        ``table``: ``regimen``, ``dose``, ``interval_h``, ``daily_dose`` and, for each quantity given, its
        posterior median and ``level`` interval (``p_target``/``_lo``/``_hi``, ``p_tox``, ``p_response``,
        ``pfs_median``), then ``utility`` (with interval), ``p_best``, ``feasible`` and ``recommended``.

    Raises
    ------
    EfficacyError
        Nothing to score, a utility weight on a quantity without its model, or a model's exposure metric
        that the simulation lacks.

    Examples
    --------
    >>> import poppk
    >>> fit = poppk.fit(poppk.datasets.load("theophylline"), "oral1cmt_additive", chains=1, warmup=100,
    ...                 samples=100, progress=False)
    >>> from poppk.simulate import Target
    >>> br = benefit_risk(fit, ["160 mg q12h x 7 d", "320 mg q12h x 7 d"], target=Target.parse("Cminss=3:8"),
    ...                   utility=Utility.parse("target=1"), n=200)
    >>> br.recommended in set(br.table.regimen)
    True
    """
    from ..simulate import simulate_regimen

    utility = utility or Utility()
    models = {"target": target, "tox": tox, "response": response, "pfs": survival}
    missing = [k for k in utility.weights if models[k] is None]
    if utility.max_tox is not None and tox is None:
        missing.append("tox (max_tox)")
    if utility.min_response is not None and response is None:
        missing.append("response (min_response)")
    if utility.min_target is not None and target is None:
        missing.append("target (min_target)")
    if missing:
        raise EfficacyError(f"the utility weighs {', '.join(missing)} but no such model was given")
    if all(m is None for m in models.values()):
        raise EfficacyError("give at least one of target, tox, response, survival to score the regimens")
    if sim is None:
        if not regimens:
            raise EfficacyError("give the candidate regimens (or a simulation, sim=)")
        sim = simulate_regimen(fit, regimens, n=n, seed=seed)
    for key, m in models.items():
        col = None if m is None else m.metric
        if col is not None and col not in sim.exposures.columns:
            raise EfficacyError(f"the {key} model's exposure {col!r} is not among the simulated metrics")
    sizes = [len(np.asarray(next(iter(m.draws.values())))) for m in (tox, response, survival) if m is not None]
    reps_all = sim.exposures["replicate"].to_numpy()
    R = int(reps_all.max()) + 1
    S = min([max_draws, *sizes]) if sizes else R

    rows, utils = [], []
    for reg in sim.regimens:
        g = sim.exposures[sim.exposures["regimen"] == reg.label]
        reps = g["replicate"].to_numpy()
        row = {"regimen": reg.label, "dose": reg.first_amount, "interval_h": reg.tau,
               "daily_dose": reg.first_amount * 24.0 / reg.tau}
        draws = {}
        if target is not None:
            inside = pd.Series(target.contains(g[target.metric].to_numpy()).astype(float)).groupby(reps).mean()
            draws["target"] = inside.reindex(range(R)).to_numpy()[np.arange(S) % R]
        if tox is not None:
            draws["tox"] = tox.rate(g[tox.metric].to_numpy(), reps)[:S]
        if response is not None:
            draws["response"] = response.rate(g[response.metric].to_numpy(), reps)[:S]
        if survival is not None:
            draws["pfs"] = survival.population_median(g[survival.metric].to_numpy(), reps, max_draws=S)
        for key, d in draws.items():
            col = "pfs_median" if key == "pfs" else f"p_{key}"
            row[col], row[f"{col.removesuffix('_median')}_lo"], row[f"{col.removesuffix('_median')}_hi"] = \
                _share(d, level)
        u = sum((w * draws[k] for k, w in utility.weights.items()), np.zeros(S))
        if utility.weights:
            row["utility"], row["utility_lo"], row["utility_hi"] = _share(u, level)
        ok = ((utility.max_tox is None or row["p_tox"] <= utility.max_tox)
              and (utility.min_response is None or row["p_response"] >= utility.min_response)
              and (utility.min_target is None or row["p_target"] >= utility.min_target))
        row["feasible"] = bool(ok)
        rows.append(row)
        utils.append(u)
    table = pd.DataFrame(rows)
    names = {"target": None if target is None else target.label, "tox": None if tox is None else tox.event,
             "response": None if response is None else response.event,
             "pfs": None if survival is None else f"{survival.endpoint} ({survival.time_unit})"}
    feasible = table["feasible"].to_numpy()
    if not utility.weights:
        table["recommended"] = False
        return BenefitRisk(table, None, "no utility stated: the table only (state weights to rank the regimens)",
                           utility, names)
    U = np.stack(utils)  # (regimens, S)
    p_best = np.zeros(len(table))
    if feasible.any():
        idx = np.flatnonzero(feasible)
        winners = idx[np.argmax(U[idx], axis=0)]
        p_best = np.bincount(winners, minlength=len(table)) / S
    table["p_best"] = p_best
    if not feasible.any():
        table["recommended"] = False
        return BenefitRisk(table, None, f"no regimen meets {utility.label}", utility, names)
    order = sorted(np.flatnonzero(feasible), key=lambda i: (-round(table["utility"].iloc[i], 3),
                                                             table["daily_dose"].iloc[i]))
    best = table.iloc[order[0]]
    sure = (f"best in {100 * best['p_best']:.0f}% of posterior draws" if len(order) > 1
            else "the only regimen meeting the constraints")
    why = (f"{best['regimen']}: utility {best['utility']:.3g} ({100 * level:.0f}% interval {best['utility_lo']:.3g} to "
           f"{best['utility_hi']:.3g}), {sure}; utility {utility.label}")
    if len(order) > 1:
        nxt = table.iloc[order[1]]
        why += f"; next {nxt['regimen']} ({nxt['utility']:.3g})"
    table["recommended"] = np.arange(len(table)) == order[0]
    return BenefitRisk(table, str(best["regimen"]), why, utility, names)


__all__ = ["TERMS", "BenefitRisk", "Utility", "benefit_risk"]
