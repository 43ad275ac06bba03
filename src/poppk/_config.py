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


_interrupted = False


def _on_sigint(signum, frame):
    import gc

    global _interrupted
    _interrupted = True
    if frame is not None and frame.f_code in {getattr(cb, "__code__", None) for cb in gc.callbacks}:
        return  # raised here it would only be printed; check_interrupted raises it at the next checkpoint
    raise KeyboardInterrupt


def guard_interrupts() -> None:
    """Remember Ctrl-C even where Python cannot raise it (the CLI calls this).

    A KeyboardInterrupt raised while Python runs a garbage-collector callback (JAX registers one) is
    only printed ("Exception ignored in ..."), and the program goes on: a fit interrupted then ran to
    the end and wrote its folder. With this handler the interrupt is recorded (and not raised inside a
    garbage-collector callback), and :func:`check_interrupted`, called between the phases of a fit and
    before any fit folder is written, raises it. A SIGINT that the shell set to be ignored (a command
    started with ``&``) stays ignored.
    """
    import signal

    if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
        signal.signal(signal.SIGINT, _on_sigint)


def check_interrupted() -> None:
    """Raise KeyboardInterrupt if Ctrl-C came since :func:`guard_interrupts` (see there)."""
    if _interrupted:
        raise KeyboardInterrupt
