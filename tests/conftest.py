"""Fixtures: a helper to run the CLI as a user would, and a short real fit (JAX's strict settings are in
the root ``conftest.py``, shared with the doctests)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def run_cli(*args: str, cwd: str | os.PathLike | None = None, timeout: float = 600,
            env: dict | None = None) -> subprocess.CompletedProcess:
    """Run ``python -m poppk.cli ARGS`` in a subprocess (``env``: variables to add); return the completed process."""
    env = {**os.environ, **(env or {})}
    env.setdefault("MPLBACKEND", "Agg")
    return subprocess.run(
        [sys.executable, "-m", "poppk.cli", *args],
        capture_output=True, text=True, cwd=cwd, env=env, timeout=timeout,
    )


@pytest.fixture
def cli():
    return run_cli


@pytest.fixture(scope="session")
def theo_quick_fit(tmp_path_factory):
    """A short theophylline fit (additive error, 2 chains x 300 + 300) saved as a fit folder.

    Used where a real posterior is needed but its precision is not under test
    (simulation, exposure-response, dosing).
    """
    import poppk

    data = poppk.datasets.load("theophylline")
    f = poppk.fit(data, "oral1cmt_additive", chains=2, warmup=300, samples=300, progress=False, seed=1)
    return f.save(tmp_path_factory.mktemp("theo_quick") / "fit")
