"""Test configuration for the tests and the doctests of ``src/poppk`` alike: JAX made strict, as
STYLE.md asks (float64, rank promotion raises), and four host devices so fits run their chains in
parallel (set before JAX starts, as the CLI does)."""

from __future__ import annotations

import os

os.environ.setdefault("MPLBACKEND", "Agg")  # figures to files in tests, never a window

from poppk import set_host_devices  # noqa: E402

set_host_devices(4)

import jax  # noqa: E402

jax.config.update("jax_enable_x64", True)
jax.config.update("jax_numpy_rank_promotion", "raise")

#: The example model files beside the bundled specs are user files, imported through their specs
#: (``[model] file``, poppk.pk.load_kernel_file), never as modules of the package.
collect_ignore_glob = ["src/poppk/models/*.py"]
