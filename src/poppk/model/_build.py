"""A ``ModelSpec`` and a ``PKDataset`` -> one NumPyro model function.

The model is vectorised over subjects (no Python loop over subjects or
doses): typical values, covariate effects and random effects give a
``(N,)`` array per parameter; the kernel is ``vmap``ped over subjects; the
likelihood is masked for padding and non-fitted records
(``handlers.mask``).
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass, field
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
from numpyro import handlers

from ..data import DatasetWarning
from ..errors import DatasetError, ModelSpecError
from ..pk import DOSE_ARRAYS, Doses, accepted_parameters, check_data, predict_jit, prepare, time_after_dose
from ..units import CONC_UNITS, DOSE_UNITS
from ._likelihood import PKResidual
from ._spec import Covariate, ModelSpec

#: Median fitted observations per subject from which ``auto`` chooses the centred parameterisation.
RICH_DATA_OBS = 6
#: Steepness of the soft wall that keeps the typical KA above the elimination rate constant.
FLIP_FLOP_WALL = 10.0


def prior_median(spec_prior, dose_unit: str, conc_unit: str) -> float:
    """The prior median converted from its stated unit to the data's units."""
    unit = spec_prior.unit
    if unit is None:
        return spec_prior.median
    if unit.endswith("/h"):  # amount per hour
        return spec_prior.median * DOSE_UNITS[unit[:-2]] / DOSE_UNITS[dose_unit]
    return spec_prior.median * CONC_UNITS[unit] / CONC_UNITS[conc_unit]


@dataclass(frozen=True)
class BuiltModel:
    """The model function, its data arguments and what was decided building it.

    ``fn`` is built for these data: call it with ``kwargs`` (``dv=None`` to simulate). Its subject count,
    covariate levels, residual scales and censored records (``censored_at``) come from the data it was
    built on, so other records of the same shapes would be scored wrongly.
    """

    fn: Callable
    kwargs: dict[str, Any]
    spec: ModelSpec
    kernel: Any
    parameterization: str
    blq_method: str
    sigma_scales: dict[str, float]
    levels: dict[str, tuple] = field(default_factory=dict)
    population: tuple[str, ...] = ()
    prior_sd: dict[str, float] = field(default_factory=dict)
    init_values: dict[str, Any] = field(default_factory=dict)
    centred: tuple[str, ...] = ()  # IIV parameters sampled centred (site log_ind); the others are eta_z
    censored_at: tuple[int, ...] = ()  # the censored (M3) records, flat indices into (N, O)
    priors: dict = field(default_factory=dict)  # site -> numpyro Distribution (:func:`priors`)
    coding: CovariateCoding = field(default_factory=lambda: CovariateCoding())
    #: Where time-varying covariates or occasions change (:func:`covariate_inputs`), or None.
    changes: Any = None
    #: The data's occasions (``[iov] column`` levels, in index order), or () without IOV.
    occasion_levels: tuple = ()


_COMPARE = {"<": np.less, "<=": np.less_equal, ">": np.greater, ">=": np.greater_equal, "==": np.equal,
            "!=": np.not_equal}


def _level_name(level) -> str:
    return f"{level:g}" if isinstance(level, float) else re.sub(r"\W", "_", str(level))


def _missing(raw: np.ndarray) -> np.ndarray:
    if raw.dtype == object:
        return np.asarray([v is None or (isinstance(v, float) and np.isnan(v)) for v in raw], bool)
    return np.isnan(raw.astype(float))


def _level_codes(reference, levels) -> dict:
    """Level -> code of a categorical effect: 0 the reference, ``k`` the ``k``-th other level."""
    return {reference: 0.0, **{lv: float(k) for k, lv in enumerate(levels, 1)}}


def _most_frequent(values: np.ndarray):
    levels, counts = np.unique(values, return_counts=True)
    return levels[np.argmax(counts)]  # ties: the first in sorted order


@dataclass(frozen=True)
class CovariateCoding:
    """How each covariate effect reads its data column, decided once on the fitted data.

    ``levels``: per categorical effect, its non-reference levels (numbers or text) in code order
    1, 2, ...; ``references``: its reference level (code 0); ``fill``: per effect with an imputation, the
    value a missing entry takes (the column's scale; for categorical effects the code). Simulations and
    dose individualisation encode new subjects with the fitted data's coding (:meth:`encode`).
    """

    levels: dict = field(default_factory=dict)
    references: dict = field(default_factory=dict)
    fill: dict = field(default_factory=dict)

    def encode(self, spec: ModelSpec, column: Callable[[str], np.ndarray], n: int, *, first_dose=None,
               who: Callable[[np.ndarray], str] | None = None, error=ModelSpecError) -> dict[str, np.ndarray]:
        """Each effect's input ``{effect name: (n,) float}``: the covariate values (power, linear,
        exponential), level codes (categorical: 0 the reference, ``k`` its ``k``-th other level) or the
        first dose (``first_dose`` ``(n,)``, for a dose effect).

        ``column(name)`` gives a column's raw values (floats, or text as an object array; raising
        :class:`DatasetError` where there is no such column); ``who(indices)`` names subjects in messages.
        Raises ``error`` naming the effect and the subjects: a missing column, a missing value without an
        imputation, text where a number is needed, a power covariate <= 0, a level the fit never saw.
        """
        who = who or (lambda idx: f"subject(s) at position(s) {idx[:10].tolist()}")
        out = {}
        for c in spec.covariates:
            where = f"covariate effect {c.name} ({c.kind} on {c.parameter})"
            if c.kind == "dose":
                if first_dose is None:
                    raise error(f"{where}: give the first dose amount")
                out[c.name] = np.broadcast_to(np.asarray(first_dose, float), (n,)).copy()
                continue
            try:
                raw = np.asarray(column(c.covariate))
            except (DatasetError, KeyError):
                raise error(f"{where}: column {c.covariate} is not in the data") from None
            gap = _missing(raw)
            text = raw.dtype == object
            if c.kind == "categorical" and c.threshold is None:
                lookup = _level_codes(self.references[c.name], self.levels[c.name])
                codes = np.asarray([lookup.get(_as_level(v, text), np.nan) if not m else np.nan for v, m in zip(raw, gap)])
                unknown = ~gap & np.isnan(codes)
                if unknown.any():
                    seen = ", ".join(str(v) for v in lookup)
                    raise error(f"{where}: level(s) {sorted({str(v) for v in raw[unknown]})[:5]} of {c.covariate} "
                                f"were not in the fitted data (levels {seen}) for {who(np.flatnonzero(unknown))}")
                values = codes
            else:
                if text:
                    bad = np.flatnonzero(~gap)
                    raise error(f"{where}: column {c.covariate} holds text ({sorted({str(v) for v in raw[bad]})[:5]}), "
                                f"not numbers, for {who(bad)}; a text column can be categorical only")
                values = raw.astype(float)
                if c.threshold is not None:
                    op, limit = c.threshold
                    values = np.where(gap, np.nan, _COMPARE[op](values, limit).astype(float))
            if gap.any():
                if c.name not in self.fill:
                    raise error(f"{where}: {c.covariate} is missing for {who(np.flatnonzero(gap))}; fill the data, "
                                "or choose an imputation (missing = \"median\", \"mode\", \"reference\" or a number)")
                values = np.where(gap, self.fill[c.name], values)
            if c.kind == "power" and (values <= 0).any():
                raise error(f"{where}: {c.covariate} must be > 0 for a power effect; not so for {who(np.flatnonzero(values <= 0))}")
            out[c.name] = values
        return out


def _as_level(value, text: bool):
    return str(value).strip() if text else float(value)


def covariate_coding(spec: ModelSpec, data) -> CovariateCoding:
    """The coding of ``spec``'s covariate effects on ``data`` (:class:`CovariateCoding`): each categorical
    effect's levels and reference (the spec's, else 0 where the data have it, else the most frequent
    level), and each imputation's value (the median or most frequent level of the subjects who have one).

    Raises :class:`ModelSpecError` naming the spec key: a reference level the data lack, an imputation
    that does not fit the covariate.
    """
    levels, references, fill = {}, {}, {}
    for i, c in enumerate(spec.covariates):
        if c.kind == "dose":
            continue
        key = f"{spec.source}: [covariates[{i}]]"
        try:
            raw = np.asarray(data.covariate_values(c.covariate))
        except DatasetError:
            raise ModelSpecError(f"{key} covariate {c.covariate} (effect on {c.parameter}) is not in the data; "
                                 f"the data have {', '.join(data.covariate_names) or 'no covariates'}") from None
        text = raw.dtype == object
        have = raw[~_missing(raw)]
        if c.kind == "categorical" and c.threshold is None:
            found = sorted({_as_level(v, text) for v in have})
            if c.reference is None:
                ref = 0.0 if 0.0 in found else (_most_frequent(np.asarray([_as_level(v, text) for v in have]))
                                                if found else 0.0)
                ref = ref if text else float(ref)
            else:
                if text != isinstance(c.reference, str):
                    raise ModelSpecError(f"{key}.reference: {c.covariate} holds {'text' if text else 'numbers'} "
                                         f"(levels {', '.join(map(str, found))}); the reference {c.reference!r} is not one of them")
                ref = c.reference
                if ref not in found:
                    raise ModelSpecError(f"{key}.reference: {ref!r} is not a level of {c.covariate}; "
                                         f"the data have {', '.join(map(str, found))}")
            references[c.name] = ref
            levels[c.name] = tuple(lv for lv in found if lv != ref)
        elif c.kind == "categorical":
            levels[c.name] = (1.0,)
            references[c.name] = 0.0
        if c.missing == "error":
            continue
        if c.kind == "categorical":
            lookup = _level_codes(references[c.name], levels[c.name])

            def code_of(v, c=c, lookup=lookup):
                if c.threshold is not None:
                    return float(_COMPARE[c.threshold[0]](float(v), c.threshold[1]))
                return lookup.get(_as_level(v, text))

            if c.missing == "reference":
                fill[c.name] = 0.0
            elif c.missing == "mode":
                fill[c.name] = float(_most_frequent(np.asarray([code_of(v) for v in have]))) if have.size else 0.0
            elif code_of(c.missing) is None:
                raise ModelSpecError(f"{key}.missing: {c.missing:g} is not a level of {c.covariate}")
            else:
                fill[c.name] = code_of(c.missing)
        else:
            if text:
                raise ModelSpecError(f"{key}: {c.covariate} holds text; a {c.kind} effect needs numbers")
            fill[c.name] = (float(np.median(have.astype(float))) if c.missing == "median" else
                            float(c.reference) if c.missing == "reference" else float(c.missing))
    return CovariateCoding(levels, references, fill)


def _who(data) -> Callable[[np.ndarray], str]:
    """Names subjects of ``data`` by ID and the rows of their records (1-based, as the data checks do)."""
    rows = np.where(np.asarray(data.present), np.asarray(data.row), -1)
    dose_rows = np.where(np.asarray(data.doses.mask), np.asarray(data.dose_row), -1)

    def who(idx) -> str:
        parts = []
        for i in np.asarray(idx)[:10]:
            r = np.concatenate([rows[i][rows[i] >= 0], dose_rows[i][dose_rows[i] >= 0]]) + 1
            span = f"rows {r.min()}-{r.max()}" if r.size > 1 else f"row {r.min()}" if r.size else "no rows"
            parts.append(f"ID {data.ids[i]} ({span})")
        more = f" and {len(idx) - 10} more" if len(idx) > 10 else ""
        return f"{len(idx)} subject(s): " + ", ".join(parts) + more
    return who


def effect_names(cov: Covariate, levels: dict[str, tuple]) -> list[str]:
    """Sample-site names of a covariate effect (one per non-reference level if categorical; one for a
    threshold category)."""
    if cov.kind == "categorical" and cov.threshold is None:
        return [f"{cov.name}_{_level_name(lv)}" for lv in levels[cov.name]]
    return [cov.name]


def log_typical(spec: ModelSpec, levels: dict[str, tuple], values: dict, covariates: dict, n: int) -> dict:
    """Log of each subject's typical parameters (before random effects), ``{name: (n,)}``.

    ``values`` holds the typical values and covariate effects (sample-site names; fixed ones may be
    left out), ``covariates`` each covariate effect's input per subject (keyed by the effect's name:
    :meth:`CovariateCoding.encode`; level codes for categorical effects). Pure and traceable: the model
    and every simulation use it. A linear effect ``1 + theta (cov - ref)`` that is not positive gives NaN
    (a sampler rejects such a draw).
    """
    mu = {}
    for p in spec.parameters:
        v = values[p.name] if p.name in values else p.fixed
        mu[p.name] = jnp.full((n,), jnp.log(v))
    for c in spec.covariates:
        x = jnp.asarray(covariates[c.name])
        if c.kind == "categorical":
            for k, name in enumerate(effect_names(c, levels), start=1):
                beta = values[name] if name in values else c.fixed
                mu[c.parameter] = mu[c.parameter] + beta * (x == k)
            continue
        beta = values[c.name] if c.name in values else c.fixed
        if c.kind == "linear":
            term = jnp.log1p(beta * (x - c.reference))
        elif c.kind == "exponential":
            term = beta * (x - c.reference)
        else:
            term = beta * jnp.log(x / c.reference)
        mu[c.parameter] = mu[c.parameter] + term
    return mu


def individual_parameters(spec: ModelSpec, levels: dict[str, tuple], values: dict, covariates: dict, eta, n: int,
                          names=None) -> dict:
    """Each subject's parameters ``{name: (n,)}``: ``exp(log typical + eta)``, the one way every part of
    poppk (the fitted model, simulations, dose individualisation) assembles them.

    ``values`` and ``covariates`` as for :func:`log_typical`; ``eta`` ``(n, k)`` random effects in the
    order of ``spec.iiv.parameters``; ``names`` the parameters to return (default all). Traceable.
    """
    log_ind = log_typical(spec, levels, values, covariates, n)
    for j, p in enumerate(spec.iiv.parameters):
        log_ind[p] = log_ind[p] + eta[..., j]
    return {k: jnp.exp(log_ind[k]) for k in (names or list(log_ind))}


def segment_parameters(spec: ModelSpec, levels: dict[str, tuple], values: dict, covariates: dict, eta,
                       names=None, *, kappa=None, occasions=None) -> dict:
    """:func:`individual_parameters` where covariates or occasions change within subjects:
    ``covariates`` ``{effect: (n, K)}``, one input per segment (:func:`covariate_inputs`); the result
    ``{name: (n, K)}``, each subject's random effects the same in every segment. With inter-occasion
    variability, ``kappa`` ``(n, n_occ, n_iov)`` (in the order of ``spec.iov.parameters``) and
    ``occasions`` ``(n, K)`` (each segment's occasion index) multiply each IOV parameter by
    ``exp(kappa)`` of the segment's occasion. Traceable.
    """
    if covariates:
        n, k = jnp.shape(next(iter(covariates.values())))
    else:
        n, k = jnp.shape(occasions)
    flat = {c: jnp.reshape(v, (-1,)) for c, v in covariates.items()}
    ind = individual_parameters(spec, levels, values, flat, jnp.repeat(jnp.asarray(eta), k, axis=0), n * k, names)
    out = {p: jnp.reshape(v, (n, k)) for p, v in ind.items()}
    if kappa is not None:
        for j, p in enumerate(spec.iov.parameters):
            if p in out:
                out[p] = out[p] * jnp.exp(jnp.take_along_axis(kappa[..., j], occasions, axis=1))
    return out


def time_varying(spec: ModelSpec, data) -> tuple[str, ...]:
    """The covariates that act in time in ``spec`` on ``data``: those of effects with ``interpolation``
    other than ``baseline`` whose value changes within a subject."""
    varying = {name.upper() for name in data.varying_covariates}
    return tuple(dict.fromkeys(c.covariate for c in spec.covariates
                               if c.interpolation != "baseline" and c.covariate.upper() in varying))


def _history(spec: ModelSpec, data):
    """The pieces of ``data`` the model's parameters change over, ``(changes, values)``
    (:meth:`~poppk.data.PKDataset.covariate_history` of the time-varying covariates and, with IOV, the
    occasion column, by the spec's interpolation), or None where nothing changes."""
    names = time_varying(spec, data)
    occ = spec.iov.column if spec.iov.parameters else None
    if not names and (occ is None or occ.upper() not in {c.upper() for c in data.varying_covariates}):
        return None
    modes = [c.interpolation for c in spec.covariates if c.covariate in names and c.interpolation != "baseline"]
    return data.covariate_history(names + ((occ,) if occ and occ not in names else ()), modes[0] if modes else "locf")


class CovariateInputs(NamedTuple):
    """What :func:`covariate_inputs` finds: each covariate effect's input, where the inputs change and,
    with IOV, each segment's occasion."""

    #: ``{effect: (N,)}`` where nothing changes within subjects and there is no IOV; else
    #: ``{effect: (N, K + 1)}``, one input per segment (baseline effects the same in all).
    inputs: dict
    #: The :class:`~poppk.pk.Sampling` ``(N, K)`` of the times they change, or None.
    changes: Any
    #: With IOV, ``(N, K + 1)`` occasion indices into ``occasion_levels``; else None.
    occasions: np.ndarray | None
    #: The data's occasions (``[iov] column`` levels), in index order; () without IOV.
    occasion_levels: tuple

    @property
    def segmented(self) -> bool:
        """Whether the inputs (and so the parameters) are per segment, ``(N, K + 1)``."""
        return self.changes is not None or self.occasions is not None


def first_doses(data) -> np.ndarray:
    """Each subject's first dose amount, ``(N,)`` (the input of a ``dose`` covariate effect)."""
    amt, mask = np.asarray(data.doses.amt), np.asarray(data.doses.mask)
    return amt[np.arange(amt.shape[0]), np.argmax(mask, axis=1)]


def covariate_inputs(spec: ModelSpec, coding: CovariateCoding, data, *, who=None, error=ModelSpecError) -> CovariateInputs:
    """Every covariate effect's input on ``data`` (:meth:`CovariateCoding.encode`, the first dose from
    :func:`first_doses`), per segment where time-varying covariates (:func:`time_varying`) or, with
    IOV, occasions change within subjects: the pieces of
    :meth:`~poppk.data.PKDataset.covariate_history` (by the spec's interpolation), read once, for
    :func:`segment_parameters`; see :class:`CovariateInputs`.

    Raises as :meth:`CovariateCoding.encode`, and ``error`` naming the spec key where the data have no
    ``[iov] column``, and the subjects (ID and rows) who have no occasion at all.
    """
    n, first = data.n_subjects, first_doses(data)
    iov = bool(spec.iov.parameters)
    occasion = _occasion_column(spec, data, error) if iov else None
    base = coding.encode(spec, data.covariate_values, n, first_dose=first, who=who, error=error)
    pieces = _history(spec, data)
    if pieces is None and not iov:
        return CovariateInputs(base, None, None, ())
    if pieces is None:  # occasions that do not change within subjects: one segment each
        return CovariateInputs({k: v[:, None] for k, v in base.items()}, None,
                               *_occasions(spec, data, occasion[:, None], error))
    changes, history = pieces
    names = time_varying(spec, data)
    k = changes.time.shape[1] + 1
    moving = {c.name for c in spec.covariates if c.covariate in names and c.interpolation != "baseline"}

    def column(name):
        if name in history and any(c.covariate == name and c.name in moving for c in spec.covariates):
            return history[name].reshape(-1)
        return np.repeat(data.covariate_values(name), k)

    per_segment = coding.encode(spec, column, n * k, first_dose=np.repeat(first, k),
                                who=None if who is None else (lambda idx: who(np.unique(np.asarray(idx) // k))),
                                error=error)
    out = {}
    for c in spec.covariates:
        seg = per_segment[c.name].reshape(n, k)
        out[c.name] = seg if c.name in moving else np.repeat(base[c.name][:, None], k, axis=1)
    if not iov:
        return CovariateInputs(out, changes, None, ())
    return CovariateInputs(out, changes, *_occasions(spec, data, history[spec.iov.column], error))


def _occasion_column(spec: ModelSpec, data, error) -> np.ndarray:
    """The baseline values of ``[iov] column``, or ``error`` naming the key where the data lack it."""
    try:
        return np.asarray(data.covariate_values(spec.iov.column))
    except DatasetError:
        raise error(f"{spec.source}: [iov] column {spec.iov.column} is not in the data; the data have "
                    f"{', '.join(data.covariate_names) or 'no covariates'}") from None


def _occasions(spec: ModelSpec, data, values: np.ndarray, error) -> tuple[np.ndarray, tuple]:
    """Occasion values per segment ``(N, K)`` -> ``(indices into the sorted levels, levels)``; ``error``
    naming the subjects (ID and rows) who have no occasion at all."""
    gap = _missing(values.ravel()).reshape(values.shape).any(axis=1)
    if gap.any():
        raise error(f"{spec.source}: [iov] column {spec.iov.column} is missing for {_who(data)(np.flatnonzero(gap))}; "
                    "give every record of a subject its occasion")
    text = values.dtype == object
    levels = tuple(sorted({_as_level(v, text) for v in values.ravel()}))
    lookup = {lv: k for k, lv in enumerate(levels)}
    return np.vectorize(lambda v: lookup[_as_level(v, text)], otypes=[np.int64])(values), levels


def occasion_labels(levels) -> tuple[str, ...]:
    """Occasion levels as they name sites, coordinates and table columns (``1.0`` as ``1``)."""
    return tuple(_level_name(lv) for lv in levels)


def iiv_cholesky(spec: ModelSpec, values: dict):
    """The Cholesky factor of the IIV covariance, ``(..., k, k)``, from omegas (and ``L_corr`` for a
    block): random effects are ``eta = L z`` with ``z`` standard normal."""
    omega = jnp.stack([jnp.asarray(values[f"omega_{p}"]) for p in spec.iiv.parameters], axis=-1)
    k = omega.shape[-1]
    corr = jnp.asarray(values["L_corr"]) if "L_corr" in values else jnp.broadcast_to(jnp.eye(k), omega.shape + (k,))
    return omega[..., :, None] * corr


def _zero_prediction(data, kernel) -> np.ndarray:
    """Records whose prediction is 0 whatever the parameters, by the engine's rule (``time_after_dose``):
    no dose acts on them, or the only doses at their instant contribute nothing at the moment they are
    given (into a depot or a peripheral compartment, or an infusion's start): only a bolus into the
    central compartment does. ``(N, O)`` booleans."""
    tad, n = time_after_dose(data.doses, data.sampling)
    doses = data.doses
    central = Doses(**{**{k: getattr(doses, k) for k in DOSE_ARRAYS},
                       "mask": np.asarray(doses.mask) & (np.asarray(doses.cmt) == kernel.central_cmt)
                       & (np.asarray(doses.rate) == 0)})
    tad_central, _ = time_after_dose(central, data.sampling)
    return (n == 0) | ((tad == 0) & ~(tad_central == 0))


def _check_data(spec: ModelSpec, data, blq_method: str, kernel) -> None:
    check_data(kernel, data, [p.name for p in spec.parameters])
    fit = np.asarray(data.fit_mask)
    blq = np.asarray(data.blq) & fit
    if blq_method == "M3" and np.isnan(np.asarray(data.lloq)[blq]).any():
        raise ModelSpecError("the BLQ method M3 needs an LLOQ for every BLQ record; add an LLOQ column or give the LLOQ (lloq=)")
    used = fit & ~blq  # fitted records with a measured value
    if spec.error.model in ("proportional", "exponential"):
        before = _zero_prediction(data, kernel) & used
        if before.any():
            rows = (np.asarray(data.row)[before] + 1).tolist()
            raise ModelSpecError(
                f"{len(rows)} fitted record(s) come before any dose, or at the instant of an absorbed dose "
                f"(rows {rows[:10]}): their prediction is 0, which the {spec.error.model} error model cannot fit; "
                "set MDV=1 on them or use an additive or combined error")
    if spec.error.model == "exponential":
        dv = np.asarray(data.dv)
        bad = used & ~(dv > 0)
        if bad.any():
            rows = (np.asarray(data.row)[bad] + 1).tolist()
            raise ModelSpecError(f"exponential error needs DV > 0; rows {rows[:10]} are not (flag them BLQ or MDV=1)")
    if not fit.any():
        raise ModelSpecError("the data have no fitted observations (EVID 0, MDV 0)")


def _centred_parameters(spec: ModelSpec, override: str | None, mask: np.ndarray, absorption=()) -> set[str]:
    """Which IIV parameters are sampled centred (``log_ind``) rather than non-centred (``eta_z``).

    Centred suits parameters the data inform well (a non-centred one would be strongly correlated
    with its typical value); non-centred suits weakly informed ones (a centred one forms a funnel
    with its omega). ``poppk.fit`` resolves ``auto`` from the data before building (a pilot's
    expected eta-shrinkage, :mod:`poppk._pilot`) and passes the result as ``override``. Without it,
    ``auto`` is centred when the median subject has at least ``RICH_DATA_OBS``
    fitted observations, except absorption parameters (the kernel's ``absorption``), which stay non-centred: a few
    points on the rising limb rarely pin down each subject's absorption, and with Michaelis-Menten
    elimination a centred KA made every NUTS tree hit the depth limit.
    """
    iiv = spec.iiv.parameters
    rich = np.median(mask.sum(axis=1)) >= RICH_DATA_OBS
    out = set()
    for p, c in iiv_choices(spec, override).items():
        if c == "auto":
            c = "centered" if rich and p not in absorption else "noncentered"
        if c == "centered":
            out.add(p)
    if spec.iiv.structure == "block" and len(iiv) > 1 and 0 < len(out) < len(iiv):
        # One multivariate normal: centred only if the data inform every parameter in it. (A block's
        # explicit choice is one word for all, so only "auto" or the pilot's choices get here.)
        out = set()
    return out


def iiv_choices(spec: ModelSpec, override=None) -> dict[str, str]:
    """Per IIV parameter, ``centered``, ``noncentered`` or ``auto``: ``override`` or the spec's
    ``iiv.parameterization`` (one word for all, or a table per parameter)."""
    choice = override or spec.iiv.parameterization
    per_param = dict(choice) if isinstance(choice, tuple) else {p: choice for p in spec.iiv.parameters}
    return {p: per_param.get(p, "auto") for p in spec.iiv.parameters}


def _describe(iiv, centred) -> str:
    if not iiv or len(centred) == len(iiv):
        return "centered" if iiv else "none"
    if not centred:
        return "noncentered"
    return f"centered ({', '.join(p for p in iiv if p in centred)}), noncentered " \
           f"({', '.join(p for p in iiv if p not in centred)})"


def observation(error_kind: str, pred, sig: dict, dv, mask, censored, lloq, censored_at=None):
    """The residual-error distribution around ``pred`` (N, O) and the values it scores.

    Padding and unfitted records get a harmless prediction (1) and value; censored (M3) records are
    scored at their LLOQ. The model and the fit's pointwise log likelihood and predictive draws
    (:func:`poppk.fit`) both use this, so they cannot disagree. ``dv=None`` gives ``obs=None``;
    ``censored_at`` is :class:`PKResidual`'s (the censored records as flat indices, known before tracing).
    """
    safe_pred = jnp.where(mask, pred, 1.0)
    if error_kind in ("proportional", "exponential"):
        safe_pred = jnp.maximum(safe_pred, 1e-30)
    obs = None if dv is None else jnp.where(mask & ~censored, dv, jnp.where(censored, lloq, 1.0))
    residual = PKResidual(safe_pred, error_kind, sd_add=sig.get("sigma_add", 0.0), sd_prop=sig.get("sigma_prop", 0.0),
                          sd_log=sig.get("sigma_log", 0.0), lloq=jnp.where(censored, lloq, 1.0), censored=censored,
                          censored_at=censored_at)
    return residual, obs


def sigma_prior(scale: float, sd_log: float | None):
    """A residual SD's prior: half-normal with ``scale``, or log-normal with median ``scale`` and ``sd_log``."""
    return dist.HalfNormal(scale) if sd_log is None else dist.LogNormal(jnp.log(scale), sd_log)


def priors(spec: ModelSpec, medians: dict, sigma_scales: dict, levels: dict) -> dict:
    """Every estimated population parameter's prior, ``{site name: numpyro Distribution}``: the one
    definition the model samples from and the diagnostics draw (prior against posterior).

    Typical values: log-normal with the spec's median (``medians``, in the data's units) and ``sd_log``;
    covariate effects: normal; omegas: half-normal with the spec's scale; residual SDs:
    :func:`sigma_prior` with ``sigma_scales`` (``"auto"`` resolved from the data).
    """
    out = {p.name: dist.LogNormal(jnp.log(medians[p.name]), p.prior.sd_log) for p in spec.parameters if p.fixed is None}
    for c in spec.covariates:
        if c.fixed is None:
            out.update({name: dist.Normal(c.mean, c.sd) for name in effect_names(c, levels)})
    out.update({f"omega_{p}": dist.HalfNormal(s) for p, s in zip(spec.iiv.parameters, spec.iiv.omega)})
    out.update({f"omega_iov_{p}": dist.HalfNormal(s) for p, s in zip(spec.iov.parameters, spec.iov.omega)})
    out.update({s: sigma_prior(sigma_scales[s], spec.error.sd_log(s)) for s in spec.error.sigmas})
    return out


def prior_spread(prior) -> float:
    """The SD a posterior is compared with to say how much the data informed it: the log-scale SD of a
    log-normal prior (compared on the log scale), else the prior's own SD."""
    if isinstance(prior, (dist.LogNormal, dist.Normal)):
        return float(prior.scale)
    return float(np.sqrt(prior.variance))


def _flip_flop_rates(spec: ModelSpec, kernel):
    """The kernel's absorption-rate parameter for the flip-flop wall, or ``None`` for no wall; a clear
    error, never silence, when the wall is asked for and the kernel cannot say its elimination rate."""
    ka = kernel.absorption_rate
    if spec.flip_flop != "exclude" or ka is None:
        return None
    names = {p.name: 1.0 for p in spec.parameters}
    if ka not in names:
        raise ModelSpecError(f"{spec.source}: kernel {spec.kernel} absorbs at rate {ka}, which [parameters] lacks")
    if kernel.elimination_rate({**dict(kernel.optional), **names}) is None:
        raise ModelSpecError(
            f"{spec.source}: kernel {spec.kernel} has first-order absorption ({ka}) but does not declare its "
            f"elimination rate, which the flip-flop wall ([model] flip_flop = \"exclude\") needs: define "
            f"elimination_rate(params) on the kernel class, or set flip_flop = \"allow\" and choose the mode by priors")
    return ka


def build_model(spec: ModelSpec, data, *, parameterization: str | None = None, record_pred: bool = False) -> BuiltModel:
    """Build the NumPyro model for ``spec`` on ``data``; checks the pair before any sampling.

    ``record_pred`` adds the noise-free concentrations as a deterministic site ``CONC``
    (N, O), for simulation and diagnostics (not stored by fits).
    """
    kernel = spec.make_kernel(data.dose_unit, data.conc_unit)
    wall = _flip_flop_rates(spec, kernel)
    fit_mask = np.asarray(data.fit_mask)
    has_blq = bool((np.asarray(data.blq) & fit_mask).any())
    blq_method = spec.blq if spec.blq != "auto" else ("M3" if has_blq else "none")
    _check_data(spec, data, blq_method, kernel)
    censored = np.asarray(data.blq) & fit_mask & (blq_method == "M3")
    censored_at = tuple(int(i) for i in np.flatnonzero(censored))
    mask = fit_mask & ~(np.asarray(data.blq) & (blq_method in ("M1", "none")))

    centred = _centred_parameters(spec, parameterization, mask, kernel.absorption)
    par = _describe(spec.iiv.parameters, centred)

    dv = np.asarray(data.dv)
    positive = dv[mask & ~censored & (dv > 0)]
    lloq = np.asarray(data.lloq)[censored]
    sigma_scales = {}
    for s in spec.error.sigmas:
        scale = spec.error.scale(s)
        if scale == "auto":
            scale = float(np.nanmedian(lloq)) if lloq.size else 0.1 * float(np.median(positive))
        sigma_scales[s] = float(scale)

    coding = covariate_coding(spec, data)
    levels = coding.levels
    who = _who(data)
    found = covariate_inputs(spec, coding, data, who=who)
    cov_values, changes, occasions, occ_levels = found
    segmented = found.segmented  # parameters per segment (N, K)
    iov = spec.iov.parameters
    n_iov = len(iov)
    n_kappa = len(occ_levels) * n_iov
    _note_imputations(spec, coding, data, who)
    medians = {p.name: prior_median(p.prior, data.dose_unit, data.conc_unit)
               for p in spec.parameters if p.prior is not None}
    prior = priors(spec, medians, sigma_scales, levels)
    given = {p.name for p in spec.parameters}
    kernel_params = tuple(kernel.parameters) + tuple(k for k in accepted_parameters(kernel) if k in given and k not in kernel.parameters)
    iiv = spec.iiv.parameters
    n_iiv = len(iiv)
    block = spec.iiv.structure == "block" and n_iiv > 1
    error_kind = spec.error.model

    n_subjects = data.n_subjects
    c_idx = np.asarray([k for k, p in enumerate(iiv) if p in centred], dtype=int)
    nc_idx = np.asarray([k for k, p in enumerate(iiv) if p not in centred], dtype=int)
    order = np.argsort(np.concatenate([c_idx, nc_idx]))  # back to the spec's order

    def model(doses, sampling, dv, mask, censored, lloq, covariates):
        theta = {}
        for p in spec.parameters:
            if p.fixed is not None:
                theta[p.name] = jnp.asarray(p.fixed)
            else:
                theta[p.name] = numpyro.sample(p.name, prior[p.name])
        if wall is not None:
            # Flip-flop (KA < K) fits oral data as well as KA > K: keep the typical values in the usual mode.
            k = kernel.elimination_rate(theta)
            numpyro.factor("no_flip_flop", jax.nn.log_sigmoid(FLIP_FLOP_WALL * jnp.log(theta[wall] / k)))
        effects = {}
        for c in spec.covariates:
            for name in effect_names(c, levels):
                effects[name] = jnp.asarray(c.fixed) if c.fixed is not None else numpyro.sample(name, prior[name])
        if segmented:  # per segment (n, K); the baseline's typical values locate the centred effects
            mu_k = segment_parameters(spec, levels, {**theta, **effects}, covariates, jnp.zeros((n_subjects, n_iiv)),
                                      occasions=occasions)
            mu = {p: jnp.log(v[:, 0]) for p, v in mu_k.items()}
        else:
            mu = log_typical(spec, levels, {**theta, **effects}, covariates, n_subjects)
        if n_iiv:
            omega = jnp.stack([numpyro.sample(f"omega_{p}", prior[f"omega_{p}"]) for p in iiv])
            loc = jnp.stack([mu[p] for p in iiv], axis=-1)
            if block:
                corr = numpyro.sample("L_corr", dist.LKJCholesky(n_iiv, spec.iiv.lkj_eta))
                tril = omega[:, None] * corr
        if n_iov:
            omega_iov = jnp.stack([numpyro.sample(f"omega_iov_{p}", prior[f"omega_iov_{p}"]) for p in iov])
        # eta_z: the non-centred IIV, then each occasion's standardised IOV (subject by subject, one block)
        n_nc = 0 if not n_iiv or (block and c_idx.size) else (n_iiv if block else nc_idx.size)
        with numpyro.plate("subject", n_subjects):
            # log_ind before eta_z: the sites' order sets the draws of a chain's initial point
            if n_iiv and block and c_idx.size:  # a block is centred as a whole
                tril_n = jnp.broadcast_to(tril, (n_subjects, n_iiv, n_iiv))
                eta = numpyro.sample("log_ind", dist.MultivariateNormal(loc, scale_tril=tril_n)) - loc
            elif n_iiv and not block and c_idx.size:
                scale = jnp.broadcast_to(omega[c_idx], (n_subjects, c_idx.size))
                centred_part = numpyro.sample("log_ind", dist.Normal(loc[:, c_idx], scale).to_event(1)) - loc[:, c_idx]
            z_all = (numpyro.sample("eta_z", dist.Normal(jnp.zeros((n_subjects, n_nc + n_kappa)), 1.0).to_event(1))
                     if n_nc + n_kappa else jnp.zeros((n_subjects, 0)))
            z, z_iov = z_all[:, :n_nc], z_all[:, n_nc:]
            if n_iiv and block and not c_idx.size:
                eta = z @ tril.T
            elif n_iiv and not block:
                parts = [centred_part] if c_idx.size else []
                if nc_idx.size:
                    parts.append(z * omega[nc_idx][None, :])
                eta = jnp.concatenate(parts, axis=-1)[:, order]
        if n_iiv:
            numpyro.deterministic("eta", eta)
        else:
            eta = jnp.zeros((n_subjects, 0))
        kappa = None
        if n_iov:
            kappa = numpyro.deterministic("kappa", z_iov.reshape(n_subjects, len(occ_levels), n_iov) * omega_iov[None, None, :])
        if segmented:  # (N, K): one value per segment
            ind = segment_parameters(spec, levels, {**theta, **effects}, covariates, eta, kernel_params, kappa=kappa,
                                     occasions=occasions)
            if kappa is not None:  # the tables' individual parameters: each subject's own, without the occasions'
                own = segment_parameters(spec, levels, {**theta, **effects}, covariates, eta, kernel_params,
                                         occasions=occasions)
        else:
            ind = individual_parameters(spec, levels, {**theta, **effects}, covariates, eta, n_subjects, kernel_params)
        if wall is not None and wall in iiv:
            # ... and each subject's too (with IIV on KA a subject can flip on its own).
            k_i = kernel.elimination_rate(ind)
            wall_i = jax.nn.log_sigmoid(FLIP_FLOP_WALL * jnp.log(ind[wall] / k_i))
            # one term per subject (N,): the Laplace fit compares subjects' modes one by one
            numpyro.factor("no_flip_flop_i", wall_i.sum(axis=1) if segmented else wall_i)
        for name in kernel_params:  # at baseline where covariates change in time, without the occasions' effects
            numpyro.deterministic(f"{name}_i", (own if kappa is not None else ind)[name][:, 0] if segmented else ind[name])
        pred = predict_jit(kernel, ind, doses, sampling, forward=kernel.forward_sensitivities, split=True)
        if record_pred:
            numpyro.deterministic("CONC", pred)
        sig = {s: numpyro.sample(s, prior[s]) for s in spec.error.sigmas}
        residual, obs = observation(error_kind, pred, sig, dv, mask, censored, lloq, censored_at)
        with handlers.mask(mask=mask):
            numpyro.sample("DV", residual, obs=obs)

    kwargs = dict(
        doses=prepare(kernel, data.doses, data.sampling, changes), sampling=data.sampling, dv=jnp.asarray(np.nan_to_num(dv, nan=0.0)),
        mask=jnp.asarray(mask), censored=jnp.asarray(censored),
        lloq=jnp.asarray(np.nan_to_num(np.asarray(data.lloq), nan=1.0)),
        covariates={k: jnp.asarray(v, dtype=float) for k, v in cov_values.items()},
    )
    population = list(spec.estimated)
    for c in spec.covariates:
        if c.fixed is None:
            population += effect_names(c, levels)
    population += [f"omega_{p}" for p in iiv] + [f"omega_iov_{p}" for p in iov] + list(spec.error.sigmas)
    prior_sd = {name: prior_spread(d) for name, d in prior.items()}
    init = {p: medians[p] for p in medians}
    init.update({f"omega_{p}": min(0.3, s) for p, s in zip(iiv, spec.iiv.omega)})
    init.update({f"omega_iov_{p}": min(0.1, s) for p, s in zip(iov, spec.iov.omega)})
    init.update({s: 0.5 * v if spec.error.sd_log(s) is None else v for s, v in sigma_scales.items()})
    for c in spec.covariates:  # effects start at their prior mean (NumPyro's default would be uniform(-2, 2))
        if c.fixed is None:
            names = effect_names(c, levels)
            init.update({n: c.mean for n in names})
    return BuiltModel(model, kwargs, spec, kernel, par, blq_method, sigma_scales, levels, tuple(population),
                      prior_sd, init, tuple(p for p in iiv if p in centred), censored_at, prior, coding, changes, occ_levels)


def _note_imputations(spec: ModelSpec, coding: CovariateCoding, data, who) -> None:
    """Warn (a :class:`DatasetWarning`) for each imputation used, with its value and subjects (``who``)."""
    for c in spec.covariates:
        if c.name in coding.fill:
            raw = np.asarray(data.covariate_values(c.covariate))
            gap = np.flatnonzero(_missing(raw))
            if gap.size:
                value = coding.fill[c.name]
                shown = (("reference" if value == 0 else f"level {coding.levels[c.name][int(value) - 1]}")
                         if c.kind == "categorical" else f"{value:g}")
                warnings.warn(f"{c.covariate} is missing for {who(gap)}: {c.name} takes {shown} "
                              f"(missing = {c.missing!r} in the spec)", DatasetWarning, stacklevel=3)
