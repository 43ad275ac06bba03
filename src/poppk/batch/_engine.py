"""Many independent tasks on a Dask cluster, each result written once, a stopped run resumed.

The one way poppk runs many fits (SBC replications, bootstrap replicates, the candidates of a
covariate search step, a clinic's patients): :func:`run_tasks` sends each :class:`Task` to a
``dask.distributed`` cluster -- a :class:`~distributed.LocalCluster` of ``workers`` processes by
default, or the scheduler at ``scheduler`` -- and writes what each returns as it completes.

Contract of a task's function ``work(params) -> {"row": dict, "files": {name: bytes or str}}``:
a module-level function (Dask sends it by reference), deterministic given its ``params`` (each
task's seed is in them), writing nothing itself. The *driver* writes each result, so workers need no
shared file system and a task that runs twice (its worker died after finishing) is still written
once:

* ``OUT/tasks/KEY/`` holds the task's files and ``result.json`` (its row). It is written in a
  temporary folder and renamed into place, so it exists complete or not at all; it exists if and only
  if the task is done.
* ``OUT/batch.json`` records the workload and its settings. A rerun into the same folder with the
  same settings skips the done tasks (resume); with other settings it is refused.
* ``OUT/results.csv`` is the table of every done task's row, in task order, each exactly once.

A worker process that dies mid-task (killed, out of memory) is replaced by its nanny and its task
rescheduled by Dask (up to ``distributed.scheduler.allowed-failures`` times); a task that raises is
retried ``retries`` times, then reported in ``OUT/failed.csv`` and by a :class:`BatchError` once the
other tasks are done.

Cores: each local worker is one process with ``cores_per_worker`` cores (pinned to them, Linux) and
as many XLA devices, so its fits run their chains on its own cores and ``N`` workers on ``N`` cores do
not compete (see :class:`~poppk.batch.CoreBudget`).
"""

from __future__ import annotations

import json
import os
import shutil
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import pandas as pd

from ..errors import BatchError

MANIFEST = "batch.json"
RESULTS = "results.csv"
FAILED = "failed.csv"
TASKS = "tasks"


@dataclass(frozen=True)
class Task:
    """One unit of work: a unique, file-safe ``key`` (``rep-0007``) and the JSON-able ``params`` of its
    function (a seed among them)."""

    key: str
    params: dict = field(default_factory=dict)


@dataclass(frozen=True)
class BatchResult:
    """What :func:`run_tasks` did: the table of done tasks, how many ran now and how many were done before
    (a run with failed tasks raises instead)."""

    table: pd.DataFrame
    out: Path
    ran: int
    resumed: int
    seconds: float


def task_folder(out: str | Path, key: str) -> Path:
    return Path(out) / TASKS / key


def is_done(out: str | Path, key: str) -> bool:
    return (task_folder(out, key) / "result.json").exists()


def read_row(out: str | Path, key: str) -> dict:
    return json.loads((task_folder(out, key) / "result.json").read_text())


def write_result(out: str | Path, key: str, result: dict) -> bool:
    """Write a task's files and row atomically into ``OUT/tasks/KEY``; False (nothing written) if the
    task is already done."""
    final = task_folder(out, key)
    if (final / "result.json").exists():
        return False
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.parent / f".{key}.{uuid.uuid4().hex}"
    tmp.mkdir()
    for name, content in result.get("files", {}).items():
        path = tmp / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content if isinstance(content, bytes) else str(content).encode())
    (tmp / "result.json").write_text(json.dumps({"task": key, **result["row"]}, default=_json_default))
    if final.exists():  # an incomplete folder of an older poppk or a hand edit: replaced whole
        shutil.rmtree(final)
    os.rename(tmp, final)
    return True


def _json_default(value):
    import numpy as np

    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"not JSON-able: {type(value).__name__}")


def check_manifest(out: Path, workload: str, settings: dict) -> None:
    """Record the workload in ``OUT/batch.json``, or check a rerun against it (BatchError naming what
    differs: a resumed run must be the same workload with the same settings)."""
    path = out / MANIFEST
    settings = json.loads(json.dumps(settings, default=_json_default))
    if path.exists():
        old = json.loads(path.read_text())
        if old.get("workload") != workload:
            raise BatchError(f"{out} holds a {old.get('workload')} run, not {workload}; choose another --out")
        diff = sorted(k for k in set(old["settings"]) | set(settings) if old["settings"].get(k) != settings.get(k))
        if diff:
            shown = "; ".join(f"{k}: {old['settings'].get(k)!r} then, {settings.get(k)!r} now" for k in diff)
            raise BatchError(f"{out} holds a {workload} run with other settings ({shown}); rerun with the same "
                             "settings to resume it, or choose another --out")
        return
    out.mkdir(parents=True, exist_ok=True)
    tmp = out / f".{MANIFEST}.{uuid.uuid4().hex}"
    tmp.write_text(json.dumps({"workload": workload, "settings": settings}, indent=1))
    os.replace(tmp, path)


def digest(text: str) -> str:
    """A short fingerprint of a spec's or a table's text, for ``settings`` (a rerun on changed input is refused)."""
    import hashlib

    return hashlib.sha256(text.encode()).hexdigest()[:16]


def spec_payload(spec) -> dict:
    """What a task needs to rebuild ``spec`` on a worker (:func:`spec_from`): its text, source and kernel file."""
    return {"spec_text": spec.text, "spec_source": spec.source, "kernel_file": spec.kernel_file}


def spec_from(params: dict, extra: str = ""):
    """The spec a task was sent (:func:`spec_payload`), with ``extra`` TOML appended (covariate effects)."""
    from ..model import parse_spec

    return parse_spec(params["spec_text"] + extra, source=params["spec_source"], kernel_file=params.get("kernel_file"))


def diagnostics_file(diag: dict) -> str:
    """A fit's convergence diagnostics as a task's ``diagnostics.json``."""
    return json.dumps({k: diag[k] for k in ("divergences", "max_r_hat", "min_ess_bulk", "warnings")})


def _run_one(work: Callable, params: dict) -> tuple[dict, float]:
    """A task as a worker runs it: its function, timed where it runs (not from its submission, which would
    count its wait in the queue), then JAX's caches cleared (a worker runs many fits; without this about
    70 fits in one process exhausted LLVM's code memory)."""
    import jax

    t0 = time.perf_counter()
    result = work(params)
    seconds = time.perf_counter() - t0
    jax.clear_caches()
    return result, seconds


def run_tasks(workload: str, tasks: list[Task], work: Callable, out: str | Path, *, settings: dict | None = None,
              workers: int = 1, scheduler: str | None = None, cores_per_worker: int = 1, retries: int = 2,
              progress: Callable[[str], None] | None = print, describe: Callable[[dict], str] | None = None,
              client=None) -> BatchResult:
    """Run ``work(task.params)`` for every task not yet done in ``out``; write each result as it completes.

    Parameters
    ----------
    workload : str
        Its name, recorded with ``settings`` in ``OUT/batch.json`` (a resumed run must match them).
    tasks : list of Task
        Unique keys; the table follows their order.
    work : callable
        Module-level ``work(params) -> {"row": {...}, "files": {...}}`` (see the module docstring).
    out : path
        The run's folder.
    workers : int
        Worker processes of a local Dask cluster; ``0`` runs the tasks one after the other in this
        process, without Dask (the reference a cluster's results are compared with).
    scheduler : str, optional
        Address of a running Dask scheduler (``tcp://host:8786``); ``workers`` is then ignored.
    cores_per_worker : int
        Cores (and XLA devices) each worker's fits use.
    retries : int
        Times a task that raises is retried before it counts as failed.
    client : distributed.Client, optional
        A client already open (:class:`cluster_client`), for a workload of several rounds of tasks (a
        covariate search's steps); ``workers`` and ``scheduler`` are then ignored.

    Returns
    -------
    BatchResult

    Raises
    ------
    BatchError
        Settings that differ from the folder's earlier run, duplicate keys, or tasks that failed after
        their retries (raised once every other task is done and written; rerun to retry them).

    Examples
    --------
    >>> import tempfile
    >>> from poppk.batch import Task, run_tasks
    >>> def square(params):
    ...     return {"row": {"x": params["x"], "x2": params["x"] ** 2}, "files": {"note.txt": "done"}}
    >>> out = tempfile.mkdtemp()
    >>> r = run_tasks("demo", [Task(f"t{x}", {"x": x}) for x in range(3)], square, out, workers=0, progress=None)
    >>> r.table.x2.tolist(), r.ran
    ([0, 1, 4], 3)
    >>> run_tasks("demo", [Task(f"t{x}", {"x": x}) for x in range(4)], square, out, workers=0, progress=None).ran
    1
    """
    out = Path(out)
    keys = [t.key for t in tasks]
    if len(set(keys)) != len(keys):
        raise BatchError(f"task keys must be unique; {len(keys) - len(set(keys))} repeat")
    check_manifest(out, workload, settings or {})
    start = time.perf_counter()
    say = progress or (lambda _msg: None)
    pending = [t for t in tasks if not is_done(out, t.key)]
    resumed = len(tasks) - len(pending)
    if resumed:
        say(f"{workload}: {resumed} of {len(tasks)} tasks already done in {out}; running the other {len(pending)}")
    failed: dict[str, str] = {}
    done = resumed

    def finished(task: Task, outcome: tuple[dict, float] | None, error: BaseException | None = None) -> None:
        """Record a task's outcome as it arrives: its result written (and counted), or its error kept."""
        nonlocal done
        if error is not None:
            failed[task.key] = f"{type(error).__name__}: {error}"
            say(f"[{task.key}] failed: {failed[task.key]}")
            return
        result, seconds = outcome
        write_result(out, task.key, result)
        done += 1
        extra = f": {describe(result['row'])}" if describe else ""
        say(f"[{done}/{len(tasks)}] {task.key} in {seconds:.0f} s{extra}")

    try:
        if pending and client is not None:
            _submit_all(client, pending, work, retries, finished, say)
        elif pending and workers == 0 and scheduler is None:
            for task in pending:
                try:
                    outcome = _run_one(work, task.params)
                except Exception as exc:  # noqa: BLE001 -- a task's failure is reported, the others go on
                    finished(task, None, exc)
                    continue
                finished(task, outcome)
        elif pending:
            with cluster_client(workers, scheduler, cores_per_worker) as own:
                _submit_all(own, pending, work, retries, finished, say)
    except KeyboardInterrupt:
        say(f"interrupted: {done} of {len(tasks)} tasks done and kept in {out}; rerun the same command to resume")
        raise
    table = collect(out, keys)
    table.to_csv(out / RESULTS, index=False)
    if failed:
        pd.DataFrame({"task": list(failed), "error": list(failed.values())}).to_csv(out / FAILED, index=False)
        first = next(iter(failed.items()))
        raise BatchError(f"{len(failed)} of {len(tasks)} {workload} tasks failed after {retries} retries "
                         f"(first: {first[0]}: {first[1]}); the errors are in {out / FAILED}; the other tasks' "
                         f"results are in {out / RESULTS}; rerun the same command to retry the failed ones")
    if (out / FAILED).exists():
        (out / FAILED).unlink()
    return BatchResult(table, out, len(pending), resumed, time.perf_counter() - start)


def collect(out: str | Path, keys: list[str]) -> pd.DataFrame:
    """The rows of the done tasks among ``keys``, in that order (one row per task)."""
    rows = [read_row(out, k) for k in keys if is_done(out, k)]
    return pd.DataFrame(rows)


def _submit_all(client, pending, work, retries, finished, say) -> None:
    """Every pending task to ``client``'s cluster; each outcome to ``finished`` as it completes."""
    from distributed import as_completed

    say(f"dask: {len(client.scheduler_info(n_workers=-1)['workers'])} workers at {client.scheduler.address}"
        + (f" (dashboard {client.dashboard_link})" if client.dashboard_link else ""))
    futures = [client.submit(_run_one, work, task.params, key=f"poppk-{task.key}-{uuid.uuid4().hex[:8]}",
                             retries=retries, pure=False) for task in pending]
    task_of = {f.key: task for f, task in zip(futures, pending)}
    for future in as_completed(futures):
        if future.status == "error":
            finished(task_of[future.key], None, future.exception())
        else:
            finished(task_of[future.key], future.result())
        future.release()


class cluster_client:
    """A Dask client: on the scheduler at ``scheduler``, or on a new local cluster of ``workers`` worker
    processes of ``cores`` cores each (closed on exit). Either way each worker gets :class:`~poppk.batch.CoreBudget`."""

    def __init__(self, workers: int = 1, scheduler: str | None = None, cores: int = 1):
        if scheduler is None and workers < 1:
            raise BatchError(f"--workers must be at least 1, got {workers}")
        if cores < 1:
            raise BatchError(f"--cores-per-worker must be at least 1, got {cores}")
        self.workers, self.scheduler, self.cores = workers, scheduler, cores
        self.cluster = self.client = None

    def __enter__(self):
        import logging

        from distributed import Client, LocalCluster

        logging.getLogger("distributed").setLevel(logging.ERROR)  # a killed worker is Dask's routine, not news
        if self.scheduler is None:
            self.cluster = LocalCluster(n_workers=self.workers, threads_per_worker=1, processes=True,
                                        dashboard_address=":0", silence_logs=logging.ERROR)
            self.client = Client(self.cluster)
        else:
            try:
                self.client = Client(self.scheduler, timeout="20s")
            except (OSError, TimeoutError) as exc:
                raise BatchError(f"cannot reach the Dask scheduler at {self.scheduler}: {exc}") from None
        from ._plugin import CoreBudget

        self.client.register_plugin(CoreBudget(self.cores, pin=self.scheduler is None))
        return self.client

    def __exit__(self, *exc):
        if self.client is not None:
            self.client.close()
        if self.cluster is not None:
            self.cluster.close()
        return False


__all__ = ["BatchResult", "Task", "check_manifest", "cluster_client", "collect", "diagnostics_file", "digest", "is_done",
           "read_row", "run_tasks", "spec_from", "spec_payload", "task_folder", "write_result"]
