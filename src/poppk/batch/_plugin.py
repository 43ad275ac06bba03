"""The worker plugin that sizes each Dask worker (imported only where a cluster is used: Dask takes a
second to import)."""

from __future__ import annotations

import os

from distributed import WorkerPlugin


class CoreBudget(WorkerPlugin):
    """A Dask worker plugin giving each worker process its share of the machine before JAX starts there.

    ``cores`` XLA host devices (so a fit's chains run in parallel on them, or one after the other on one),
    and, for a local cluster, the process pinned to its own ``cores`` CPUs (worker ``i`` of the
    cluster gets CPUs ``i*cores .. i*cores+cores-1`` of those the cluster may use, wrapping around).
    XLA's own thread flags do not bound its compiler threads (measured: a fit's CPU time exceeded its
    wall time by 30% with ``intra_op_parallelism_threads=1``); the CPU affinity does.
    """

    idempotent = True
    name = "poppk-core-budget"

    def __init__(self, cores: int = 1, pin: bool = False):
        self.cores, self.pin = int(cores), bool(pin)

    def setup(self, worker) -> None:
        size_process(self.cores, _worker_index(worker.name) if self.pin else None)


def _worker_index(name) -> int | None:
    try:
        return int(name)
    except (TypeError, ValueError):
        return None


def size_process(cores: int, index: int | None = None) -> None:
    """Ask XLA for ``cores`` host devices (if JAX has not started in this process) and, given a worker
    ``index``, pin every thread of the process to that worker's CPUs."""
    import jax

    from .._runtime import set_host_devices

    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(cores)
    if not _backends_started(jax):
        set_host_devices(cores)
    if index is not None and hasattr(os, "sched_setaffinity"):
        allowed = sorted(os.sched_getaffinity(0))
        cpus = {allowed[(index * cores + k) % len(allowed)] for k in range(cores)}
        for tid in os.listdir("/proc/self/task"):
            try:
                os.sched_setaffinity(int(tid), cpus)
            except OSError:
                pass  # a thread that ended meanwhile


def _backends_started(jax) -> bool:
    try:
        from jax._src import xla_bridge

        return bool(xla_bridge._backends)
    except (ImportError, AttributeError):
        return False


__all__ = ["CoreBudget", "size_process"]
