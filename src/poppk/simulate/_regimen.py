"""Dosing regimens written the way a protocol writes them.

Grammar (case-insensitive; segments follow one another, joined by ``then``
or a comma)::

    regimen  := segment (("then" | ",") segment)*
    segment  := ["loading"] AMOUNT UNIT [ROUTE] ["over" <N> (h | min)] [FREQUENCY "x" DURATION]
    ROUTE    := po | oral | iv
    FREQUENCY:= qd | od | daily | bid | tid | qid | q<N>h | every <N> h | qw | weekly
    DURATION := <N> (d | day(s) | h | w | week(s) | dose(s))

A segment without a frequency is one dose; the next segment starts one of
its own dosing intervals later. The route is oral (into the model's depot)
unless ``iv`` (into its central compartment); ``over`` makes each dose an
infusion of that duration (into the depot for an oral route: zero-order
absorption). A model without a depot (IV models) takes ``iv`` regimens,
and refuses oral ones rather than dosing them somewhere else. Examples:
``"110 mg q12h x 28 d"``, ``"200 mg qd x 28 d"``, ``"loading 400 mg then
200 mg qd x 14 d"``, ``"110 mg bid x 7 d then 150 mg bid x 21 d"``,
``"1000 mg iv over 1 h q8h x 7 d"``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from ..errors import RegimenError
from ..pk import Doses, kernel_name
from ..units import DOSE_UNITS


_FREQ = {"qd": 24.0, "od": 24.0, "daily": 24.0, "bid": 12.0, "tid": 8.0, "qid": 6.0, "qw": 168.0, "weekly": 168.0}
_DURATION = {"h": 1.0, "hour": 1.0, "hours": 1.0, "d": 24.0, "day": 24.0, "days": 24.0, "w": 168.0, "week": 168.0,
             "weeks": 168.0, "wk": 168.0}
_SEGMENT = re.compile(
    r"^(?P<loading>loading\s+)?(?P<amount>\d+(?:\.\d+)?(?:e[+-]?\d+)?)\s*(?P<unit>[a-zµ]+)"
    r"(?:\s+(?P<route>po|oral|iv))?(?:\s+over\s+(?P<over>\d+(?:\.\d+)?)\s*(?P<ounit>h|hours?|min|minutes?))?"
    r"(?:\s+(?P<freq>qd|od|daily|bid|tid|qid|qw|weekly|q\s*(?P<qn>\d+(?:\.\d+)?)\s*h|every\s+(?P<en>\d+(?:\.\d+)?)\s*h)"
    r"(?:\s+(?:x|for)\s+(?P<dur>\d+(?:\.\d+)?)\s*(?P<dunit>[a-z]+))?)?\s*$")


ROUTES = ("oral", "iv")


@dataclass(frozen=True)
class Segment:
    """``n_doses`` doses of ``amount`` every ``interval`` hours (``interval`` 0: a single dose), by
    ``route`` (``oral`` into the depot, ``iv`` into the central compartment), each a bolus or, with
    ``duration`` > 0 (h), an infusion."""

    amount: float
    n_doses: int = 1
    interval: float = 0.0
    route: str = "oral"
    duration: float = 0.0


@dataclass(frozen=True)
class Regimen:
    """A dosing regimen: consecutive segments, amounts in ``unit``, times in hours from the first dose.

    Examples
    --------
    >>> r = Regimen.parse("110 mg q12h x 28 d")
    >>> r.n_doses, r.tau, r.last_dose_time
    (56, 12.0, 660.0)
    >>> Regimen.parse("loading 400 mg then 200 mg qd x 2 d").dose_times()
    (array([ 0., 24., 48.]), array([400., 200., 200.]))
    """

    segments: tuple[Segment, ...]
    unit: str = "mg"
    text: str = ""

    def __post_init__(self):
        if not self.segments:
            raise RegimenError("a regimen needs at least one dose")
        if self.unit not in DOSE_UNITS:
            raise RegimenError(f"unknown dose unit {self.unit!r}; use one of {', '.join(DOSE_UNITS)}")
        for s in self.segments:
            if not (s.amount > 0 and s.n_doses >= 1 and s.interval >= 0 and (s.n_doses == 1 or s.interval > 0)):
                raise RegimenError(f"invalid segment {s}: amount > 0, at least one dose, interval > 0 if repeated")
            if s.route not in ROUTES or not s.duration >= 0:
                raise RegimenError(f"invalid segment {s}: route one of {', '.join(ROUTES)}, infusion duration >= 0")

    @classmethod
    def parse(cls, text: str) -> Regimen:
        return parse_regimen(text)

    @property
    def label(self) -> str:
        return self.text or " then ".join(
            f"{s.amount:g} {self.unit}" + (" iv" if s.route == "iv" else "") + (f" over {s.duration:g} h" if s.duration else "")
            + (f" q{s.interval:g}h x {s.n_doses}" if s.n_doses > 1 else "")
            for s in self.segments)

    @property
    def tau(self) -> float:
        """Dosing interval of the last repeated segment (h): the steady-state interval."""
        for s in reversed(self.segments):
            if s.interval > 0:
                return s.interval
        raise RegimenError(f"{self.label}: a single dose has no dosing interval (no steady state)")

    @property
    def n_doses(self) -> int:
        return sum(s.n_doses for s in self.segments)

    def dose_times(self) -> tuple[np.ndarray, np.ndarray]:
        """Every dose: times (h) and amounts (``unit``)."""
        times, amounts, t = [], [], 0.0
        for k, s in enumerate(self.segments):
            gap = s.interval or (self.segments[k + 1].interval if k + 1 < len(self.segments) else 0.0) or 24.0
            times.append(t + gap * np.arange(s.n_doses) if s.interval else np.array([t]))
            amounts.append(np.full(s.n_doses, s.amount))
            t = times[-1][-1] + gap
        return np.concatenate(times), np.concatenate(amounts)

    @property
    def last_dose_time(self) -> float:
        return float(self.dose_times()[0][-1])

    @property
    def first_amount(self) -> float:
        return self.segments[0].amount

    def scaled(self, factor: float) -> Regimen:
        """The same schedule with every amount multiplied by ``factor``."""
        segs = tuple(Segment(s.amount * factor, s.n_doses, s.interval, s.route, s.duration) for s in self.segments)
        return Regimen(segs, self.unit)

    def to_doses(self, n: int, dose_unit: str, kernel=None) -> Doses:
        """Dose trains for ``n`` identical subjects in ``dose_unit`` (one ADDL train per segment), (n, K):
        oral doses into ``kernel``'s depot, IV doses into its central compartment (CMT 1 and 2 without a
        kernel: the oral models' numbering); infusions with their rate."""
        factor = DOSE_UNITS[self.unit] / DOSE_UNITS[dose_unit]
        times, _ = self.dose_times()
        starts, k = [], 0
        for s in self.segments:
            starts.append(times[k])
            k += s.n_doses
        depot = 1 if kernel is None else kernel.depot_cmt
        central = 2 if kernel is None else kernel.central_cmt
        if depot is None and any(s.route == "oral" for s in self.segments):
            raise RegimenError(f"{self.label}: {kernel_name(kernel)} has no depot (an IV model); write the regimen "
                               "with its route, e.g. '1000 mg iv over 1 h q8h x 7 d'")
        K = len(self.segments)
        amounts = np.asarray([s.amount * factor for s in self.segments])
        durations = np.asarray([s.duration for s in self.segments])
        row = dict(
            time=np.asarray(starts, float), amt=amounts, rate=np.where(durations > 0, amounts / np.where(durations > 0, durations, 1.0), 0.0),
            cmt=np.asarray([central if s.route == "iv" else depot for s in self.segments], np.int64),
            ii=np.asarray([s.interval for s in self.segments], float),
            addl=np.asarray([s.n_doses - 1 for s in self.segments], np.int64), ss=np.zeros(K, bool),
            order=np.arange(K, dtype=float), epoch=np.zeros(K, np.int64), mask=np.ones(K, bool))
        return Doses(**{name: np.broadcast_to(v, (n, K)).copy() for name, v in row.items()})

    def steady_doses(self, n: int, dose_unit: str, kernel=None) -> Doses:
        """The regimen's steady state: its last repeated segment's dose as an SS=1 record at time 0
        (every interval ``tau`` before it), ``(n, 1)``; the kernel's steady state is then exact (the
        infinite series of a closed form, the fixed point of an ODE), whatever the regimen's length."""
        last = next(s for s in reversed(self.segments) if s.interval > 0)
        one = Regimen((Segment(last.amount, 1, 0.0, last.route, last.duration),), self.unit).to_doses(n, dose_unit, kernel)
        return Doses(**{**{k: getattr(one, k) for k in ("time", "amt", "rate", "cmt", "addl", "order", "epoch", "mask")},
                        "ii": np.full((n, 1), last.interval), "ss": np.ones((n, 1), bool)})

    @property
    def routes(self) -> set[str]:
        return {s.route for s in self.segments}


def parse_regimen(text: str) -> Regimen:
    """Parse regimen text (see the module docstring) into a :class:`Regimen`; :class:`RegimenError` if malformed."""
    if not isinstance(text, str) or not text.strip():
        raise RegimenError("empty regimen; write it like '110 mg q12h x 28 d'")
    parts = [p.strip() for p in re.split(r"\s*(?:,|\bthen\b)\s*", text.strip().lower()) if p.strip()]
    segments, unit = [], None
    for part in parts:
        m = _SEGMENT.match(re.sub(r"\s+", " ", part))
        if not m:
            raise RegimenError(
                f"cannot read {part!r} in regimen {text!r}; write each part like '110 mg q12h x 28 d', "
                "'200 mg qd x 14 d' or 'loading 400 mg'")
        u = m["unit"]
        if u not in DOSE_UNITS:
            raise RegimenError(f"unknown dose unit {u!r} in {text!r}; use one of {', '.join(DOSE_UNITS)}")
        if unit is not None and u != unit:
            raise RegimenError(f"mixed dose units ({unit}, {u}) in {text!r}; use one unit")
        unit = u
        amount = float(m["amount"])
        if amount <= 0:
            raise RegimenError(f"dose amount must be positive in {part!r}")
        route = "iv" if m["route"] == "iv" else "oral"
        duration = 0.0
        if m["over"] is not None:
            duration = float(m["over"]) / (60.0 if m["ounit"].startswith("min") else 1.0)
            if duration <= 0:
                raise RegimenError(f"infusion duration must be positive in {part!r}")
        if m["freq"] is None:
            segments.append(Segment(amount, route=route, duration=duration))
            continue
        interval = float(m["qn"] or m["en"] or 0) or _FREQ[m["freq"]]
        if interval <= 0:
            raise RegimenError(f"dosing interval must be positive in {part!r}")
        if m["dur"] is None:
            raise RegimenError(f"{part!r} repeats without a duration; add one, e.g. 'x 28 d' or 'x 10 doses'")
        dur, dunit = float(m["dur"]), m["dunit"]
        if dunit in ("dose", "doses"):
            n = dur
        elif dunit in _DURATION:
            n = dur * _DURATION[dunit] / interval
        else:
            raise RegimenError(f"unknown duration unit {dunit!r} in {part!r}; use h, d, w or doses")
        if abs(n - round(n)) > 1e-9 or round(n) < 1:
            raise RegimenError(f"{part!r}: the duration is not a whole number of {interval:g}-h intervals")
        segments.append(Segment(amount, int(round(n)), interval, route, duration))
    return Regimen(tuple(segments), unit, text.strip())


__all__ = ["ROUTES", "Regimen", "RegimenError", "Segment", "parse_regimen"]
