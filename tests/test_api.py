"""The public API and import hygiene (STYLE.md: no global configuration changed on import)."""

from __future__ import annotations

import subprocess
import sys

import poppk


def test_import_changes_no_global_state():
    code = ("import jax, poppk, poppk.cli\n"
            "from jax._src import xla_bridge\n"
            "assert not xla_bridge._backends, 'JAX backend initialised on import'\n"
            "assert not jax.config.jax_enable_x64, 'x64 switched on by import'\n")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr


def test_public_names_exist():
    for name in poppk.__all__:
        assert hasattr(poppk, name), name
