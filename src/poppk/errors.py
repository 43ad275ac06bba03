"""Domain exceptions.

Every error poppk raises on purpose is a :class:`PoppkError`; the command line
prints its message and exits with status 2, without a traceback.
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
