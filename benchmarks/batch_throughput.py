"""Throughput of a many-fit workload on a local Dask cluster: the same SBC replications with 1 worker,
2 workers of 1 core, and 1 worker of 2 cores (its chains in parallel).

Run:  .venv/bin/python benchmarks/batch_throughput.py [REPS]      (default 8 replications)

Each configuration runs the same replications (sparse design, ``oral1cmt_additive``, 2 chains x
(300 + 300)) into a fresh folder, timed from the call to the last result written (cluster start-up
included); prints tasks per minute, the ratio to 1 worker, and the process tree's CPU seconds per
wall second (at most the cores given if the workers do not oversubscribe). Appends to
``benchmarks/results/batch_throughput.csv``. Not part of CI (a few minutes on 2 cores).
"""

import datetime
import os
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
import psutil

import poppk


def cpu_seconds() -> float:
    me = psutil.Process()
    total = sum(me.cpu_times()[:2]) + me.cpu_times().children_user + me.cpu_times().children_system
    for child in me.children(recursive=True):
        try:
            total += sum(child.cpu_times()[:2])
        except psutil.NoSuchProcess:
            pass
    return total


def main() -> int:
    reps = int(sys.argv[1]) if len(sys.argv) > 1 else 8
    rows = []
    for workers, cores in ((1, 1), (2, 1), (1, 2)):
        out = Path(tempfile.mkdtemp()) / "sbc"
        t0, c0 = time.perf_counter(), cpu_seconds()
        cpu = []
        ranks, _ = poppk.batch.sbc("oral1cmt_additive", out, design="sparse", reps=reps, chains=2, warmup=300,
                                   samples=300, workers=workers, cores_per_worker=cores,
                                   progress=lambda _m: cpu.append(cpu_seconds()))
        wall = time.perf_counter() - t0
        used = (max(cpu) if cpu else cpu_seconds()) - c0
        rows.append({"workers": workers, "cores_per_worker": cores, "reps": reps, "seconds": round(wall, 1),
                     "tasks_per_min": round(60 * reps / wall, 2), "cpu_per_wall": round(used / wall, 2),
                     "median_task_s": float(ranks["seconds"].median()), "cpus": len(os.sched_getaffinity(0)),
                     "command": "benchmarks/batch_throughput.py " + " ".join(sys.argv[1:]),
                     "date": datetime.date.today().isoformat()})
        print(rows[-1], flush=True)
    table = pd.DataFrame(rows)
    table["vs_1_worker"] = (table["tasks_per_min"] / table["tasks_per_min"].iloc[0]).round(2)
    print(table.drop(columns=["command"]).to_string(index=False))
    path = Path(__file__).parent / "results" / "batch_throughput.csv"
    table.to_csv(path, mode="a", header=not path.exists(), index=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
