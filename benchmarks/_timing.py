"""Timing helpers shared by the benchmarks (not part of the package)."""
import time

import jax
import numpy as np


def compile_and_time(fn, *args, repeats: int = 3, calls: int = 10) -> tuple[float, float]:
    """``(seconds per call, seconds to compile)`` of ``jax.jit(fn)``: the first call compiles, then the best of
    ``repeats`` runs of ``calls`` calls each (the least disturbed by other work on the machine)."""
    jitted = jax.jit(fn)
    t = time.perf_counter()
    jax.block_until_ready(jitted(*args))
    compile_s = time.perf_counter() - t
    best = np.inf
    for _ in range(repeats):
        t = time.perf_counter()
        for _ in range(calls):
            jax.block_until_ready(jitted(*args))
        best = min(best, (time.perf_counter() - t) / calls)
    return best, compile_s
