"""Domain exceptions: one :class:`PoppkError` subclass per kind of failure.

Every error poppk raises on purpose is a :class:`PoppkError`; the command line
prints its message and exits with status 2, without a traceback. Messages say
what was wrong, where (row and column, spec key, ID) and what to do, in terms of
the API (command-line flags are the command line's to add).

>>> from poppk.errors import PoppkError, RegimenError
>>> issubclass(RegimenError, PoppkError)
True
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Violation:
    """One broken rule in a dataset.

    ``row`` is the 1-based data row of the input file (the header is row 0),
    ``None`` when the violation concerns the whole file.
    """

    row: int | None
    column: str | None
    message: str

    def __str__(self) -> str:
        where = []
        if self.row is not None:
            where.append(f"row {self.row}")
        if self.column is not None:
            where.append(f"column {self.column}")
        prefix = ", ".join(where)
        return f"{prefix}: {self.message}" if prefix else self.message


class PoppkError(Exception):
    """Base class of every error poppk raises deliberately."""


class DatasetError(PoppkError):
    """A dataset breaks one or more rules; ``violations`` lists all of them."""

    def __init__(self, violations: list[Violation] | str, source: str | None = None):
        if isinstance(violations, str):
            violations = [Violation(None, None, violations)]
        self.violations = tuple(sorted(violations, key=lambda v: (v.row is None, v.row or 0)))
        self.source = source
        head = f"{source}: " if source else ""
        n = len(self.violations)
        lines = [f"{head}{n} problem{'s' if n != 1 else ''} in the dataset:"]
        lines += [f"  - {v}" for v in self.violations]
        super().__init__("\n".join(lines))


class ModelSpecError(PoppkError):
    """A model specification is invalid or does not fit the data."""


class FitError(PoppkError):
    """A fit folder is missing, damaged, or a fit cannot be run."""


class SolverError(PoppkError):
    """The ODE solver (or the steady-state iteration) failed: a prediction is not finite."""


class UnitError(PoppkError):
    """An unknown or inconsistent unit."""


class EventError(PoppkError):
    """Dose or sampling event arrays of the wrong shape or content for the dosing engine."""


class NCAError(PoppkError):
    """Non-compartmental analysis asked with unknown settings, or with no profile it can analyse."""


class EfficacyError(PoppkError):
    """An exposure-efficacy model that cannot be fitted or read: a bad event table (times, censoring
    flags, IDs) or folder."""


class ExportError(PoppkError):
    """Tables that cannot be exported as asked (an unknown format)."""


class RegimenError(PoppkError):
    """A regimen text or object that cannot be understood (``"110 mg q12h x 28 d"`` is one)."""


class SimulationError(PoppkError):
    """A simulation that cannot be run as asked: no patients, a missing covariate, a regimen without steady state."""


class DosingError(PoppkError):
    """Dose individualisation that cannot be done: a bad target, no candidate regimen, an unusable patient record."""


class BatchError(PoppkError):
    """A many-task run (SBC, bootstrap, covariate search, a clinic's doses) that cannot start or resume, or
    whose tasks failed after their retries (the others are kept; rerunning retries the failed ones)."""


class ToxicityModelError(PoppkError):
    """An exposure-toxicity model that cannot be fitted or read: a bad adverse-event table, event or folder."""


__all__ = ["BatchError", "DatasetError", "DosingError", "EfficacyError", "EventError", "ExportError", "FitError", "ModelSpecError", "NCAError", "PoppkError", "RegimenError",
           "SimulationError", "SolverError", "ToxicityModelError", "UnitError", "Violation"]
