"""Model specifications: a small TOML format parsed into an immutable ``ModelSpec``.

Format (see ``models/*.toml`` for commented examples)::

    [model]
    name = "oral1cmt"
    kernel = "oral1cmt"                 # oral1cmt | oral1cmt_ode | oral1cmt_mm
    flip_flop = "exclude"               # exclude (typical KA > K) | allow
    ode_steps = 16                      # ODE kernels: Tsit5 steps between events
    solver = "fixed"                    # ODE kernels: fixed (graded grid), adaptive or stiff (implicit)

    [parameters]                        # typical values: log-normal prior (natural-scale
    CL = { median = 10, sd_log = 1.5 }  # median, log-scale SD), optional unit, or fixed
    F1 = { fixed = 1.0 }

    [iiv]                               # log-normal between-subject variability
    parameters = ["CL", "V", "KA"]
    omega = 0.5                         # half-normal scale of each SD (number or table)
    structure = "diagonal"              # or "block" (LKJ prior, lkj_eta)
    parameterization = "auto"           # auto | centered | noncentered, or per parameter:
                                        # { CL = "centered", KA = "noncentered" }

    [[covariates]]                      # kind: power | linear | exponential | categorical | dose
    parameter = "CL"                    # any parameter of the kernel
    covariate = "WT"                    # a data column; categorical also "APGR < 5" (a threshold)
    kind = "power"                      # (WT/70)^theta; see docs/guide/covariates.md for each kind
    reference = 70                      # categorical: the reference level (default: 0 if present,
                                        # else the most frequent), text levels as text ("female")
    effect = { mean = 0.75, sd = 0.25 } # Normal prior, or fixed = 0.75 (allometry)
    missing = "error"                   # or impute: "median", "mode", "reference" or a number
    interpolation = "locf"              # a covariate that changes within a subject: locf (from its
                                        # record on), nocb (NONMEM's: over the interval up to it) or
                                        # baseline (its first value throughout)
    name = "CL_WT"                      # optional site name (default PARAMETER_COVARIATE)

    [iov]                               # inter-occasion variability (log-normal, per subject and occasion)
    parameters = ["CL"]
    omega = 0.3                         # half-normal scale of each IOV SD (number or table)
    column = "OCC"                      # the occasion column of the data

    [error]
    model = "proportional"              # additive | proportional | combined | exponential
    sigma_prop = 0.3                    # half-normal scale; sigma_add may be "auto"; or a log-normal
                                        # prior: sigma_log = { median = 0.2, sd_log = 0.7 }

    [blq]
    method = "auto"                     # auto (M3 if the data have BLQ) | M3 | M1
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path

from ..errors import ModelSpecError
from ..pk import KERNELS, AbstractODEModel, accepted_parameters, load_kernel_file
from ..units import CONC_UNITS, DOSE_UNITS

ERROR_MODELS = {
    "additive": ("sigma_add",),
    "proportional": ("sigma_prop",),
    "combined": ("sigma_add", "sigma_prop"),
    "exponential": ("sigma_log",),
}
COVARIATE_KINDS = ("power", "linear", "exponential", "categorical", "dose")
#: Comparison operators of a threshold category (``covariate = "APGR < 5"``) and their words in names.
THRESHOLD_OPS = {"<=": "le", ">=": "ge", "==": "eq", "!=": "ne", "<": "lt", ">": "gt"}
#: How a missing covariate value may be filled, besides a number (``missing = ...``).
IMPUTATIONS = ("error", "median", "mode", "reference")
#: How a covariate that changes within a subject acts (``interpolation = ...``), see :class:`Covariate`.
INTERPOLATIONS = ("locf", "nocb", "baseline")
MODELS_DIR = Path(__file__).resolve().parent.parent / "models"


@dataclass(frozen=True)
class Prior:
    """Log-normal prior of a typical value: ``log(theta) ~ Normal(log(median), sd_log)``."""

    median: float
    sd_log: float
    unit: str | None = None


@dataclass(frozen=True)
class Parameter:
    name: str
    prior: Prior | None = None
    fixed: float | None = None


@dataclass(frozen=True)
class Covariate:
    """A covariate effect on a typical value, multiplying it by (log scale in brackets)

    - power: ``(cov / reference)^theta`` [``theta log(cov / reference)``], allometry with ``fixed``;
    - linear: ``1 + theta (cov - reference)`` [its log; must stay positive];
    - exponential: ``exp(theta (cov - reference))`` [``theta (cov - reference)``];
    - categorical: ``exp(theta_level)`` for each level other than ``reference`` (numbers or text), or
      for a threshold category (``threshold``, e.g. ``("<", 5)``: ``cov < 5``) ``exp(theta)`` where it holds;
    - dose: power on the subject's first dose amount.

    ``missing``: ``"error"`` (a missing value stops the fit, naming its rows), or the value a subject
    without one takes: ``"median"`` / ``"mode"`` of the fitted subjects, ``"reference"``, or a number.

    ``interpolation``, for a covariate whose value changes within a subject (on its records):
    ``"locf"`` (the default) -- each record's value acts from that record's time until the next change,
    last observation carried forward, missing values carried over; ``"nocb"`` -- each record's value
    acts over the interval that ends at it (NONMEM's ADVAN routines advance the system from one record
    to the next with the later record's values); ``"baseline"`` -- the subject's first value throughout.
    Before a subject's first recorded value, that value acts.
    """

    parameter: str
    covariate: str
    kind: str
    reference: float | str | None
    mean: float = 0.0
    sd: float = 1.0
    fixed: float | None = None
    threshold: tuple[str, float] | None = None
    missing: str | float = "error"
    label: str | None = None
    interpolation: str = "locf"

    @property
    def name(self) -> str:
        if self.label is not None:
            return self.label
        if self.kind == "dose":
            return f"{self.parameter}_DOSE"
        if self.threshold is not None:
            op, value = self.threshold
            return f"{self.parameter}_{self.covariate}_{THRESHOLD_OPS[op]}{value:g}".replace(".", "p").replace("-", "m")
        return f"{self.parameter}_{self.covariate}"

    @property
    def column(self) -> str | None:
        """The data column the effect reads (None for a dose effect)."""
        return None if self.kind == "dose" else self.covariate

    def describe(self, reference=None) -> str:
        """The effect in words, for tables (``power of WT/70 on CL``); ``reference`` the categorical
        reference level the data gave where the spec leaves it to the default."""
        ref = self.reference if self.reference is not None else reference
        ref = ref if isinstance(ref, str) else f"{ref:g}" if ref is not None else "the reference"
        if self.threshold is not None:
            return f"ratio of {self.parameter} where {self.covariate} {self.threshold[0]} {self.threshold[1]:g}"
        return {"power": f"power of {self.covariate}/{ref} on {self.parameter}",
                "dose": f"power of dose/{ref} on {self.parameter}",
                "linear": f"linear effect of ({self.covariate} - {ref}) on {self.parameter} (per unit)",
                "exponential": f"exponential effect of ({self.covariate} - {ref}) on {self.parameter} (log scale per unit)",
                "categorical": f"ratio of {self.parameter} against {self.covariate} = {ref} for {self.covariate} ="}[self.kind]


@dataclass(frozen=True)
class IIV:
    parameters: tuple[str, ...] = ()
    omega: tuple[float, ...] = ()
    structure: str = "diagonal"
    lkj_eta: float = 2.0
    #: "auto", "centered", "noncentered", or ((parameter, choice), ...) per IIV parameter.
    parameterization: str | tuple[tuple[str, str], ...] = "auto"


@dataclass(frozen=True)
class IOV:
    """Inter-occasion variability: on each of ``parameters``, a log-normal effect per subject and occasion
    (``kappa ~ Normal(0, omega_iov)``, half-normal prior scales ``omega``) beside the IIV, the occasion
    read from the data column ``column`` (its value on each record, carried forward like a
    time-varying covariate: an occasion starts at the first record that bears it)."""

    parameters: tuple[str, ...] = ()
    omega: tuple[float, ...] = ()
    column: str = "OCC"


@dataclass(frozen=True)
class ErrorModel:
    """Residual error: the model and each SD's prior.

    A SD's prior is half-normal with scale ``scale(name)`` (a number, or "auto" for ``sigma_add``), or
    log-normal with median ``scale(name)`` and log-scale SD ``sd_log(name)`` when the spec gives a table
    ``{ median = ..., sd_log = ... }``. The log-normal keeps the SD away from 0, where a half-normal
    lets the posterior reach values no assay and model achieve and, with few samples per subject, a
    funnel between the SD and the random effects that NUTS cannot sample (see ``models/oral1cmt.toml``).
    """

    model: str = "proportional"
    scales: tuple[tuple[str, float | str], ...] = ()
    log_sds: tuple[tuple[str, float], ...] = ()  # SDs with a log-normal prior: (name, log-scale SD)

    @property
    def sigmas(self) -> tuple[str, ...]:
        return ERROR_MODELS[self.model]

    def scale(self, name: str) -> float | str:
        """Half-normal scale, or the log-normal prior's median."""
        return dict(self.scales)[name]

    def sd_log(self, name: str) -> float | None:
        """Log-scale SD of the log-normal prior of ``name``; None for a half-normal prior."""
        return dict(self.log_sds).get(name)


@dataclass(frozen=True)
class ModelSpec:
    """An immutable model specification (see the module docstring for the format)."""

    name: str
    kernel: str
    parameters: tuple[Parameter, ...]
    iiv: IIV = field(default_factory=IIV)
    covariates: tuple[Covariate, ...] = ()
    iov: IOV = field(default_factory=IOV)
    error: ErrorModel = field(default_factory=ErrorModel)
    blq: str = "auto"
    flip_flop: str = "exclude"
    #: ODE kernels only: Tsit5 steps between consecutive events (``[model] ode_steps``; default the kernel's 16).
    ode_steps: int | None = None
    #: ODE kernels only: ``fixed`` (the default graded grid), ``adaptive`` (Tsit5 with error control, the
    #: reference) or ``stiff`` (implicit Kvaerno5 with error control) (``[model] solver``).
    ode_solver: str = "fixed"
    description: str = ""
    source: str = "<spec>"
    text: str = ""
    #: The user's Python file defining ``kernel`` (``[model] file``, resolved), or None for a bundled kernel.
    kernel_file: str | None = None

    def parameter(self, name: str) -> Parameter:
        for p in self.parameters:
            if p.name == name:
                return p
        raise ModelSpecError(f"{self.source}: no parameter {name!r}; the spec has "
                             f"{', '.join(p.name for p in self.parameters)}")

    @property
    def estimated(self) -> tuple[str, ...]:
        return tuple(p.name for p in self.parameters if p.fixed is None)

    def make_kernel(self, dose_unit: str = "mg", conc_unit: str = "mg/L"):
        """The structural kernel of this spec for data in the given units (with its solver options)."""
        from ..pk import get_kernel

        return get_kernel(self.kernel, dose_unit, conc_unit, **self.kernel_options)

    @property
    def kernel_options(self) -> dict:
        if self.ode_solver == "adaptive":
            return {"grid": 0}
        if self.ode_solver == "stiff":
            return {"grid": 0, "stiff": True}
        return {} if self.ode_steps is None else {"grid": self.ode_steps}

    def with_options(self, **changes) -> ModelSpec:
        """A new spec with fields replaced (e.g. ``iiv=...``)."""
        return replace(self, **changes)


def _err(source: str, key: str, message: str) -> ModelSpecError:
    return ModelSpecError(f"{source}: [{key}] {message}")


def _positive(source, key, value) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise _err(source, key, f"must be a positive number, got {value!r}")
    return float(value)


def _number(source, key, value) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _err(source, key, f"must be a number, got {value!r}")
    return float(value)


def _check_unit(source, key, unit):
    if unit is None:
        return None
    known = set(CONC_UNITS) | {f"{d}/h" for d in DOSE_UNITS}
    if unit not in known:
        raise _err(source, key, f"unknown unit {unit!r}; use a concentration unit or DOSEUNIT/h")
    return unit


_THRESHOLD = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*(<=|>=|==|!=|<|>)\s*([-+]?[0-9.]+(?:[eE][-+]?[0-9]+)?)\s*$")
_COVARIATE_KEYS = {"parameter", "covariate", "kind", "reference", "effect", "fixed", "missing", "name", "interpolation"}


def _covariate(source, key, c, names, kernel, known) -> Covariate:
    """One ``[[covariates]]`` entry -> :class:`Covariate`, or the error naming its key."""
    if not isinstance(c, dict):
        raise _err(source, key, "must be a table ([[covariates]] with parameter, covariate, kind, ...)")
    extra = set(c) - _COVARIATE_KEYS
    if extra:
        raise _err(source, key, f"unknown key(s) {', '.join(sorted(extra))}; keys are {', '.join(sorted(_COVARIATE_KEYS))}")
    for req in ("parameter", "kind"):
        if req not in c:
            raise _err(source, key, f"missing '{req}'")
    param = c["parameter"]
    if param not in names:
        if param in known:
            raise _err(source, key + ".parameter", f"{param} is a parameter of {kernel} but not of this spec; "
                                                    "add it to [parameters] (a prior or a fixed value)")
        raise _err(source, key + ".parameter", f"{kernel} has no parameter {param}; it takes {', '.join(sorted(known))}")
    kind = c["kind"]
    if kind not in COVARIATE_KINDS:
        raise _err(source, key + ".kind", f"must be one of {', '.join(COVARIATE_KINDS)}, got {kind!r}")
    if kind != "dose" and not isinstance(c.get("covariate"), str):
        raise _err(source, key, "missing 'covariate' (a column of the data, as a string)")
    column, threshold = c.get("covariate", "DOSE"), None
    if kind != "dose" and not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", column.strip()):
        m = _THRESHOLD.match(column)
        if m is None or kind != "categorical":
            raise _err(source, key + ".covariate", f"{column!r} is neither a column name nor, for kind = 'categorical', "
                                                   "a threshold like 'APGR < 5' (operators <, <=, >, >=, ==, !=)")
        column, threshold = m.group(1), (m.group(2), float(m.group(3)))
    column = column.strip()
    effect = c.get("effect", {"mean": 0.0, "sd": 1.0})
    fixed = c.get("fixed")
    if fixed is None and (not isinstance(effect, dict) or not ({"mean", "sd"} <= set(effect))):
        raise _err(source, key + ".effect", "give { mean = ..., sd = ... } or fixed = ...")
    ref = c.get("reference")
    if kind == "categorical":
        if threshold is not None and ref is not None:
            raise _err(source, key + ".reference", "a threshold category's reference is where the condition is false")
        if ref is not None and (isinstance(ref, bool) or not isinstance(ref, (int, float, str))):
            raise _err(source, key + ".reference", f"must be a level of {column} (a number or text), got {ref!r}")
        ref = float(ref) if isinstance(ref, (int, float)) else ref
    elif ref is None:
        raise _err(source, key, "missing 'reference' (the covariate value of the typical subject)")
    elif kind in ("power", "dose"):
        ref = _positive(source, key + ".reference", ref)
    else:
        ref = _number(source, key + ".reference", ref)
    missing = c.get("missing", "error")
    if not (missing in IMPUTATIONS or (isinstance(missing, (int, float)) and not isinstance(missing, bool))):
        raise _err(source, key + ".missing", f"must be one of {', '.join(IMPUTATIONS)} or a number, got {missing!r}")
    if kind == "dose" and missing != "error":
        raise _err(source, key + ".missing", "every subject has a first dose; missing applies to data columns")
    if missing == "median" and kind == "categorical":
        raise _err(source, key + ".missing", "a category has no median; use 'mode', 'reference' or a level")
    if missing == "mode" and kind != "categorical":
        raise _err(source, key + ".missing", "'mode' is for categorical covariates; use 'median' or a number")
    interpolation = c.get("interpolation", "locf")
    if interpolation not in INTERPOLATIONS:
        raise _err(source, key + ".interpolation", f"must be one of {', '.join(INTERPOLATIONS)}, got {interpolation!r}")
    label = c.get("name")
    if label is not None and not (isinstance(label, str) and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", label)):
        raise _err(source, key + ".name", f"must be a name of letters, digits and _, got {label!r}")
    return Covariate(param, column, kind, ref,
                     _number(source, key + ".effect.mean", effect.get("mean", 0.0)) if isinstance(effect, dict) else 0.0,
                     _positive(source, key + ".effect.sd", effect.get("sd", 1.0)) if isinstance(effect, dict) else 1.0,
                     None if fixed is None else _number(source, key + ".fixed", fixed),
                     threshold, float(missing) if isinstance(missing, (int, float)) else missing, label,
                     "baseline" if kind == "dose" else interpolation)


def _variability_scales(source, section, params, omega_raw, names) -> tuple[float, ...]:
    """``[section] parameters`` checked against the model's ``names`` and the half-normal scale of each
    one's SD (``omega``: one number, or a table per parameter), or the error naming the key."""
    for p in params:
        if p not in names:
            raise _err(source, f"{section}.parameters", f"{p} is not a parameter of this model")
    if isinstance(omega_raw, dict):
        missing = [p for p in params if p not in omega_raw]
        if missing:
            raise _err(source, f"{section}.omega", f"no scale for {', '.join(missing)}")
        return tuple(_positive(source, f"{section}.omega.{p}", omega_raw[p]) for p in params)
    return tuple(_positive(source, f"{section}.omega", omega_raw) for _ in params)


def _iov(source, raw, names) -> IOV:
    """The ``[iov]`` section -> :class:`IOV`, or the error naming its key."""
    if raw is None:
        return IOV()
    if not isinstance(raw, dict):
        raise _err(source, "iov", "must be a table: parameters = [...], omega = ..., column = \"OCC\"")
    extra = set(raw) - {"parameters", "omega", "column"}
    if extra:
        raise _err(source, "iov", f"unknown key(s) {', '.join(sorted(extra))}; keys are column, omega, parameters")
    params = raw.get("parameters", ())
    if not isinstance(params, list) or not params or not all(isinstance(p, str) for p in params):
        raise _err(source, "iov.parameters", "give the parameters with occasion-to-occasion variability, e.g. [\"CL\"]")
    omega = _variability_scales(source, "iov", params, raw.get("omega", 0.3), names)
    column = raw.get("column", "OCC")
    if not (isinstance(column, str) and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", column)):
        raise _err(source, "iov.column", f"must be the name of the data's occasion column, got {column!r}")
    return IOV(tuple(params), omega, column)


def parse_spec(text: str, source: str = "<spec>", kernel_file: str | Path | None = None) -> ModelSpec:
    """Parse TOML text into a :class:`ModelSpec`, raising :class:`ModelSpecError` with the key at fault.

    ``[model] file`` names a Python file of the user's own kernels (relative to the spec's folder when
    ``source`` is a file, else to the working directory), imported before ``kernel`` is looked up;
    ``kernel_file`` overrides where it is (a fit folder's copy, ``kernel.py``).
    """
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ModelSpecError(f"{source}: not valid TOML: {exc}") from None
    allowed = {"model", "parameters", "iiv", "iov", "covariates", "error", "blq"}
    for key in raw:
        if key not in allowed:
            raise _err(source, key, f"unknown section; sections are {', '.join(sorted(allowed))}")
    model = raw.get("model", {})
    kernel = model.get("kernel")
    resolved_file = None
    if "file" in model or kernel_file is not None:
        if kernel_file is not None:
            resolved_file = Path(kernel_file)
        else:
            if not isinstance(model["file"], str):
                raise _err(source, "model.file", "must be the path of a Python file, as a string")
            base = Path(source).parent if Path(source).is_file() else Path.cwd()
            resolved_file = (base / model["file"]).resolve()
        try:
            registered = load_kernel_file(resolved_file)
        except ModelSpecError as exc:
            raise _err(source, "model.file", str(exc)) from None
        if kernel not in registered and kernel not in KERNELS:
            raise _err(source, "model.kernel", f"{resolved_file.name} registers {', '.join(registered)}, not {kernel!r}")
    if kernel not in KERNELS:
        raise _err(source, "model.kernel", f"unknown structural model {kernel!r}; choose one of {', '.join(KERNELS)}")
    kcls = KERNELS[kernel]
    known = set(accepted_parameters(kcls))

    params = []
    table = raw.get("parameters", {})
    for name, value in table.items():
        key = f"parameters.{name}"
        if name not in known:
            raise _err(source, key, f"unknown parameter for {kernel}; it takes {', '.join(sorted(known))}")
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            value = {"fixed": value}
        if not isinstance(value, dict):
            raise _err(source, key, "must be a table like { median = 10, sd_log = 1 } or { fixed = 1 }")
        extra = set(value) - {"median", "sd_log", "fixed", "unit"}
        if extra:
            raise _err(source, key, f"unknown key(s) {', '.join(sorted(extra))}")
        if "fixed" in value:
            params.append(Parameter(name, fixed=_number(source, key + ".fixed", value["fixed"])))
        elif "median" in value and "sd_log" in value:
            prior = Prior(_positive(source, key + ".median", value["median"]),
                          _positive(source, key + ".sd_log", value["sd_log"]),
                          _check_unit(source, key + ".unit", value.get("unit")))
            params.append(Parameter(name, prior=prior))
        else:
            raise _err(source, key, "missing prior: give median and sd_log, or fixed")
    names = {p.name for p in params}
    for req in kcls.parameters:
        if req not in names:
            raise _err(source, f"parameters.{req}", f"missing: {kernel} needs a prior or fixed value for {req}")

    iiv_raw = raw.get("iiv", {})
    iiv_params = tuple(iiv_raw.get("parameters", ()))
    omega = _variability_scales(source, "iiv", iiv_params, iiv_raw.get("omega", 0.5), names)
    structure = iiv_raw.get("structure", "diagonal")
    if structure not in ("diagonal", "block"):
        raise _err(source, "iiv.structure", f"must be 'diagonal' or 'block', got {structure!r}")
    par = iiv_raw.get("parameterization", "auto")
    if isinstance(par, dict):
        if iiv_raw.get("structure") == "block":
            raise _err(source, "iiv.parameterization", "a block is centred or non-centred as a whole; give one word")
        for p, choice in par.items():
            if p not in iiv_params:
                raise _err(source, f"iiv.parameterization.{p}", f"{p} has no IIV (iiv.parameters: {list(iiv_params)})")
            if choice not in ("auto", "centered", "noncentered"):
                raise _err(source, f"iiv.parameterization.{p}", f"must be auto, centered or noncentered, got {choice!r}")
        par = tuple((p, par.get(p, "auto")) for p in iiv_params)
    elif par not in ("auto", "centered", "noncentered"):
        raise _err(source, "iiv.parameterization", f"must be auto, centered or noncentered (or a table), got {par!r}")
    iiv = IIV(iiv_params, omega, structure, _positive(source, "iiv.lkj_eta", iiv_raw.get("lkj_eta", 2.0)), par)

    iov = _iov(source, raw.get("iov"), names)
    covs = [_covariate(source, f"covariates[{i}]", c, names, kernel, known)
            for i, c in enumerate(raw.get("covariates", []))]
    seen = {}
    for i, c in enumerate(covs):
        if c.name in seen:
            raise _err(source, f"covariates[{i}]", f"repeats effect {c.name} (covariates[{seen[c.name]}]); "
                                                   "give one of them a different name = ...")
        seen[c.name] = i
    modes = {c.interpolation for c in covs} - {"baseline"}
    if len(modes) > 1:
        i = next(i for i, c in enumerate(covs) if c.interpolation == "nocb")
        raise _err(source, f"covariates[{i}].interpolation", "one model interpolates its time-varying covariates one "
                                                              "way: every effect locf, or every effect nocb (or baseline)")

    err_raw = raw.get("error", {})
    emodel = err_raw.get("model", "proportional")
    if emodel not in ERROR_MODELS:
        raise _err(source, "error.model", f"must be one of {', '.join(ERROR_MODELS)}, got {emodel!r}")
    extra = set(err_raw) - {"model", *ERROR_MODELS[emodel]}
    if extra:
        raise _err(source, "error", f"{', '.join(sorted(extra))} not used by the {emodel} model "
                                     f"(it takes {', '.join(ERROR_MODELS[emodel])})")
    defaults = {"sigma_add": "auto", "sigma_prop": 0.3, "sigma_log": 0.3}
    scales, log_sds = [], []
    for s in ERROR_MODELS[emodel]:
        v = err_raw.get(s, defaults[s])
        key = f"error.{s}"
        if isinstance(v, dict):  # log-normal prior: its median takes the place of the half-normal scale
            extra = set(v) - {"median", "sd_log"}
            if extra or not {"median", "sd_log"} <= set(v):
                raise _err(source, key, "a log-normal prior is a table { median = ..., sd_log = ... }"
                                        + (f"; unknown key(s) {', '.join(sorted(extra))}" if extra else ""))
            log_sds.append((s, _positive(source, key + ".sd_log", v["sd_log"])))
            v, key = v["median"], key + ".median"
        scales.append((s, v if v == "auto" and s == "sigma_add" else _positive(source, key, v)))
    blq = raw.get("blq", {}).get("method", "auto")
    if blq not in ("auto", "M3", "M1"):
        raise _err(source, "blq.method", f"must be auto, M3 or M1, got {blq!r}")
    flip = model.get("flip_flop", "exclude")
    if flip not in ("exclude", "allow"):
        raise _err(source, "model.flip_flop", f"must be 'exclude' or 'allow', got {flip!r}")
    steps = model.get("ode_steps")
    if steps is not None:
        if not isinstance(steps, int) or isinstance(steps, bool) or steps < 4:
            raise _err(source, "model.ode_steps", f"must be a whole number >= 4, got {steps!r}")

        if not issubclass(KERNELS[kernel], AbstractODEModel):
            raise _err(source, "model.ode_steps", f"{kernel} is a closed form; ode_steps applies to ODE kernels")
    solver = model.get("solver", "fixed")
    if solver not in ("fixed", "adaptive", "stiff"):
        raise _err(source, "model.solver", f"must be 'fixed', 'adaptive' or 'stiff', got {solver!r}")
    if solver != "fixed" and not issubclass(KERNELS[kernel], AbstractODEModel):
        raise _err(source, "model.solver", f"{kernel} is a closed form; solver applies to ODE kernels")
    if solver != "fixed" and steps is not None:
        raise _err(source, "model.ode_steps", f"sets the fixed grid's steps; solver = {solver!r} chooses its own")
    return ModelSpec(
        ode_steps=steps, ode_solver=solver, flip_flop=flip, name=str(model.get("name", Path(source).stem)), kernel=kernel, parameters=tuple(params), iiv=iiv,
        covariates=tuple(covs), iov=iov, error=ErrorModel(emodel, tuple(scales), tuple(log_sds)), blq=blq,
        description=str(model.get("description", "")), source=source, text=text,
        kernel_file=None if resolved_file is None else str(resolved_file),
    )


def load_spec(name_or_path: str | Path) -> ModelSpec:
    """A spec by name (``models/NAME.toml``, bundled) or from a TOML file path.

    >>> load_spec("oral1cmt").kernel
    'oral1cmt'
    """
    path = Path(name_or_path)
    if path.suffix != ".toml" and not path.exists():
        candidates = [MODELS_DIR / f"{name_or_path}.toml"]
        path = next((c for c in candidates if c.exists()), None)
        if path is None:
            available = sorted(p.stem for p in MODELS_DIR.glob("*.toml"))
            raise ModelSpecError(f"no model {name_or_path!r}; bundled models: {', '.join(available)}, "
                                 "or give a path to a .toml file")
    if not path.exists():
        raise ModelSpecError(f"no such model file: {path}")
    return parse_spec(path.read_text(), source=str(path))
