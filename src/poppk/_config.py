"""JAX configuration that poppk's entry points apply before computing.

Nothing here runs on import. ``ensure_x64`` is called by the public functions
that create arrays; ``set_host_devices`` must be called before JAX starts
(the CLI does it from ``--chains``; in a notebook call it in the first cell).
"""

from __future__ import annotations

import os
import re


def ensure_x64() -> None:
    """Switch JAX to float64 (idempotent)."""
    import jax

    if not jax.config.jax_enable_x64:
        jax.config.update("jax_enable_x64", True)


def set_host_devices(n: int) -> None:
    """Ask XLA for ``n`` CPU devices so that ``n`` chains run in parallel.

    Has an effect only before JAX initialises its backends (before the first
    array is created).
    """
    flags = os.environ.get("XLA_FLAGS", "")
    flags = re.sub(r"--xla_force_host_platform_device_count=\S+", "", flags)
    os.environ["XLA_FLAGS"] = f"{flags} --xla_force_host_platform_device_count={int(n)}".strip()
