"""Commands added by later parts of poppk (NCA, fitting, ...)."""

from __future__ import annotations


def add_commands(sub) -> None:
    return None
