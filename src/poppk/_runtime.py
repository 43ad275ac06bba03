"""JAX configuration that poppk's entry points apply before computing: float64, host devices, the
compilation cache, and Ctrl-C handling for the command line.

Nothing here runs on import. ``configure_jax`` is called by the public functions
that create arrays; ``set_host_devices`` must be called before JAX starts
(the CLI does it from ``--chains``; in a notebook call it in the first cell).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

CACHE_ENV = "POPPK_CACHE_DIR"
#: The compilation cache is pruned to this size (least recently used programs first), at most once a day.
CACHE_MAX_BYTES = 2**30
PRUNE_EVERY_S = 86400.0
#: Programs that compile faster than this are not cached (JAX's default, 1 s, keeps too few of a fit's
#: programs to help a re-run; the benchmarks page has the measurement).
CACHE_MIN_COMPILE_S = 0.01


def configure_jax() -> None:
    """Switch JAX to float64 and turn on the compilation cache (idempotent)."""
    import jax

    if not jax.config.jax_enable_x64:
        jax.config.update("jax_enable_x64", True)
    _enable_compilation_cache(jax)


def compilation_cache_dir() -> Path | None:
    """Where compiled programs are kept between runs: ``$POPPK_CACHE_DIR`` (``off`` turns the cache off),
    else ``$XDG_CACHE_HOME/poppk/xla`` or ``~/.cache/poppk/xla``."""
    value = os.environ.get(CACHE_ENV)
    if value is not None:
        return None if value.strip().lower() in {"", "off", "0", "no", "false"} else Path(value).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "poppk" / "xla"


def _enable_compilation_cache(jax) -> None:
    """JAX's persistent compilation cache in :func:`compilation_cache_dir`, unless JAX already has one.

    Compiling a model's sampler, pilot and predictions is about half of a short fit's time; a run that compiles the same programs again -- the same model on the same data,
    a re-run notebook, ``poppk demo`` a second time -- loads them from disk instead. The programs are
    the same executables, so results are bit-identical with and without the cache. A user's own
    ``JAX_COMPILATION_CACHE_DIR`` (or ``jax.config``) setting is left alone. The cache takes effect only
    if set before JAX's first compilation in the process; poppk's entry points call this first.
    """
    if jax.config.jax_compilation_cache_dir is not None:
        return
    path = compilation_cache_dir()
    if path is None:
        return
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / f".probe-{os.getpid()}"
        probe.touch()
        probe.unlink()
    except OSError:
        return  # read-only home or the like: run without a cache rather than fail
    _prune(path, CACHE_MAX_BYTES)
    jax.config.update("jax_compilation_cache_dir", str(path))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", CACHE_MIN_COMPILE_S)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
    # No JAX eviction: its LRU scans every entry under a file lock at each write (0.57 s per write with
    # 20,000 entries, measured; a fit writes 20-50), so poppk prunes here instead, once a day.
    jax.config.update("jax_compilation_cache_max_size", -1)


def _prune(path: Path, max_bytes: int, every_s: float = PRUNE_EVERY_S) -> None:
    """Delete the least recently used compiled programs (``*-cache`` files, by access or modification
    time) until ``path`` holds at most ``max_bytes``; at most once per ``every_s`` (``path/.pruned``).
    A program deleted while another process reads it is recompiled there (JAX warns); nothing fails."""
    import time

    stamp = path / ".pruned"
    try:
        if stamp.exists() and time.time() - stamp.stat().st_mtime < every_s:
            return
        stamp.touch()
        entries, total = [], 0
        with os.scandir(path) as found:
            for entry in found:
                if entry.name.endswith("-cache") and entry.is_file():
                    st = entry.stat()
                    entries.append((max(st.st_atime, st.st_mtime), st.st_size, entry.path))
                    total += st.st_size
        for _, size, name in sorted(entries):
            if total <= max_bytes:
                break
            os.unlink(name)
            total -= size
    except OSError:
        pass  # a cache that cannot be pruned is still a cache


def compilation_cache_info() -> tuple[Path | None, int, int]:
    """(folder, compiled programs, bytes) of the compilation cache JAX uses now (``None, 0, 0`` when off).

    Call :func:`configure_jax` first to turn poppk's cache on."""
    import jax

    where = jax.config.jax_compilation_cache_dir
    if where is None:
        return None, 0, 0
    path = Path(where)
    programs = sorted(path.glob("*-cache")) if path.is_dir() else []
    return path, len(programs), sum(f.stat().st_size for f in programs)


def clear_compilation_cache() -> tuple[Path | None, int, int]:
    """Delete every compiled program in the cache; returns what :func:`compilation_cache_info` said before."""
    path, n, size = compilation_cache_info()
    if path is not None and path.is_dir():
        for f in path.iterdir():
            if f.is_file() and f.name.endswith(("-cache", "-atime")):
                f.unlink()
    return path, n, size


def chain_method(chains: int) -> str:
    """How NumPyro runs ``chains`` chains: ``parallel`` (one device each: CPU devices from
    :func:`set_host_devices`, or several GPUs), else ``vectorized`` on an accelerator (the chains
    batched into one program on the one GPU: it is idle between a single chain's small kernels), else
    ``sequential`` (one CPU device: vectorized chains would all wait for the longest trajectory)."""
    import jax

    if chains <= 1 or jax.local_device_count() >= chains:
        return "parallel"
    return "sequential" if jax.default_backend() == "cpu" else "vectorized"


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
