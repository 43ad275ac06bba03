"""Many-fit workloads on Dask (poppk.batch) and virtual populations sharded across devices.

Where the expected values come from:

* a task's result is what the same task gives run alone in this process (same seeds): the cluster
  must change where tasks run, never what they compute;
* exactly once: every task key appears once in ``results.csv`` after a worker process was killed
  mid-run (SIGKILL; Dask's nanny restarts it and the scheduler reruns its task) and after an
  interrupted run (SIGINT to ``poppk sbc``) is rerun -- a task done before the interruption is not
  run again (its file is untouched);
* the covariate search is judged against the simulation's truth: clearance scales with weight
  (exponent 1), age and sex have no effect;
* sharded simulation against the same patients on one device; the streamed population summary against
  exact quantiles (numpy) of the very same patients, rebuilt from the documented seeds.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import poppk
from poppk.batch import Task, resample_subjects, run_tasks


def _square(params):
    if params.get("fail"):
        raise ValueError(f"task {params['x']} cannot be done")
    return {"row": {"x": params["x"], "x2": params["x"] ** 2}, "files": {"sub/note.txt": f"x={params['x']}"}}


def test_results_written_once_resumed_and_settings_checked(tmp_path):
    out = tmp_path / "run"
    r = run_tasks("t", [Task(f"k{i}", {"x": i}) for i in range(3)], _square, out, settings={"a": 1}, workers=0,
                  progress=None)
    assert r.ran == 3 and r.table.x2.tolist() == [0, 1, 4]
    stamp = (out / "tasks" / "k0" / "result.json").stat().st_mtime_ns
    assert (out / "tasks" / "k1" / "sub" / "note.txt").read_text() == "x=1"
    r = run_tasks("t", [Task(f"k{i}", {"x": i}) for i in range(5)], _square, out, settings={"a": 1}, workers=0,
                  progress=None)
    assert (r.ran, r.resumed) == (2, 3)
    assert (out / "tasks" / "k0" / "result.json").stat().st_mtime_ns == stamp  # not rerun
    assert pd.read_csv(out / "results.csv").task.tolist() == [f"k{i}" for i in range(5)]
    with pytest.raises(poppk.BatchError, match="other settings.*a: 1 then, 2 now"):
        run_tasks("t", [Task("k0", {"x": 0})], _square, out, settings={"a": 2}, workers=0, progress=None)
    with pytest.raises(poppk.BatchError, match="holds a t run, not other"):
        run_tasks("other", [Task("k0", {"x": 0})], _square, out, settings={"a": 1}, workers=0, progress=None)
    assert not list((out / "tasks").glob(".*")), "no temporary folder is left behind"


def test_failed_tasks_reported_after_the_others_and_retried_on_rerun(tmp_path):
    tasks = [Task(f"k{i}", {"x": i, "fail": i == 1}) for i in range(3)]
    with pytest.raises(poppk.BatchError, match=r"1 of 3 t tasks failed.*k1: ValueError: task 1 cannot be done"):
        run_tasks("t", tasks, _square, tmp_path, workers=0, progress=None)
    assert pd.read_csv(tmp_path / "results.csv").task.tolist() == ["k0", "k2"]
    assert pd.read_csv(tmp_path / "failed.csv").task.tolist() == ["k1"]
    r = run_tasks("t", [Task(t.key, {"x": t.params["x"]}) for t in tasks], _square, tmp_path, workers=0, progress=None)
    assert r.ran == 1 and not (tmp_path / "failed.csv").exists()


def test_resample_subjects_keeps_strata_sizes():
    """Stratified bootstrap: each stratum keeps its number of subjects; IDs renumbered 1..N in draw order."""
    frame = pd.DataFrame({"ID": np.repeat(np.arange(1, 11), 2), "TIME": np.tile([0.0, 1.0], 10), "AMT": 0.0, "DV": 1.0,
                          "ARM": np.repeat([0] * 7 + [1] * 3, 2)})
    for seed in range(5):
        b = resample_subjects(frame, np.random.default_rng(seed), strata="ARM")
        base = b.groupby("ID").first()
        assert base.index.tolist() == list(range(1, 11))
        assert (base.ARM == 0).sum() == 7 and (base.ARM == 1).sum() == 3
        assert (b.groupby("ID").size() == 2).all()


def _worker_processes():
    import psutil

    return [p for p in psutil.Process().children(recursive=True)
            if "spawn_main" in " ".join(p.cmdline()) or "forkserver" in " ".join(p.cmdline())]


def test_local_cluster_matches_one_process_and_survives_a_killed_worker(tmp_path):
    """SBC of a small design: 4 replications on a LocalCluster of 2 worker processes, one of them
    killed (SIGKILL) once the first replication is written; every replication appears exactly once and
    equals the same replication run in this process (same seeds)."""
    kw = dict(design="sparse", reps=4, chains=1, warmup=150, samples=150, progress=None)
    ref, _ = poppk.batch.sbc("oral1cmt_additive", tmp_path / "one", workers=0, **kw)
    out = tmp_path / "cluster"
    killed = []

    def killer():
        deadline = time.time() + 300
        while time.time() < deadline and not killed:
            if list((out / "tasks").glob("rep-*/result.json")):
                workers = _worker_processes()
                if workers:
                    workers[0].send_signal(signal.SIGKILL)
                    killed.append(workers[0].pid)
                return
            time.sleep(0.2)

    thread = threading.Thread(target=killer, daemon=True)
    thread.start()
    got, _ = poppk.batch.sbc("oral1cmt_additive", out, workers=2, **kw)
    thread.join()
    assert killed, "a worker process was killed during the run"
    assert got["task"].tolist() == [f"rep-{r:04d}" for r in range(4)]  # each exactly once, in order
    cols = [c for c in ref.columns if c.startswith(("rank_", "true_", "q50_", "in90_"))]
    pd.testing.assert_frame_equal(got[cols], ref[cols])


def test_interrupted_sbc_resumes_without_rerunning_done_tasks(tmp_path, cli):
    out = tmp_path / "sbc"
    args = ["sbc", "oral1cmt_additive", "--design", "sparse", "--reps", "3", "--chains", "1", "--warmup", "120",
            "--samples", "120", "--workers", "1", "--out", str(out)]
    env = dict(os.environ, MPLBACKEND="Agg")
    proc = subprocess.Popen([sys.executable, "-m", "poppk.cli", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=env)
    deadline = time.time() + 300
    while time.time() < deadline and not list((out / "tasks").glob("rep-*/result.json")):
        time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130, stderr
    assert "rerun the same command to resume" in stdout + stderr
    done = sorted(p.parent.name for p in (out / "tasks").glob("rep-*/result.json"))
    assert 1 <= len(done) < 3
    stamps = {d: (out / "tasks" / d / "result.json").stat().st_mtime_ns for d in done}
    r = cli(*args)
    assert r.returncode == 0, r.stderr
    assert f"{len(done)} of 3 tasks already done" in r.stdout
    table = pd.read_csv(out / "results.csv")
    assert table.task.tolist() == ["rep-0000", "rep-0001", "rep-0002"]
    assert {d: (out / "tasks" / d / "result.json").stat().st_mtime_ns for d in done} == stamps
    assert (out / "sbc_summary.csv").exists() and (out / "ranks.png").exists()


def test_batch_commands_refuse_bad_input(tmp_path, cli, theo_quick_fit):
    r = cli("sbc", "no_such_model", "--reps", "2", "--workers", "0", "--out", str(tmp_path / "a"))
    assert r.returncode == 2 and "no model 'no_such_model'" in r.stderr and "Traceback" not in r.stderr
    data = tmp_path / "theo.csv"
    poppk.datasets.load("theophylline").to_frame().to_csv(data, index=False)
    r = cli("covsearch", str(data), "--model", "oral1cmt_additive", "--covariates", "WT,HEIGHT", "--workers", "0",
            "--out", str(tmp_path / "b"))
    assert r.returncode == 2 and "--covariates HEIGHT: not a covariate column" in r.stderr
    r = cli("covsearch", str(data), "--model", "oral1cmt_additive", "--covariates", "WT", "--parameters", "Q",
            "--workers", "0", "--out", str(tmp_path / "b"))
    assert r.returncode == 2 and "--parameters Q: not a parameter" in r.stderr
    r = cli("bootstrap", str(theo_quick_fit), "--n", "0", "--workers", "0", "--out", str(tmp_path / "c"))
    assert r.returncode == 2 and "--n must be at least 1" in r.stderr
    r = cli("dose", str(theo_quick_fit), "--patients", str(tmp_path / "empty"), "--target", "Cminss=3:",
            "--workers", "0", "--out", str(tmp_path / "d"))
    assert r.returncode == 2 and "no patient files" in r.stderr
    r = cli("sbc", "oral1cmt_additive", "--reps", "1", "--workers", "-1", "--out", str(tmp_path / "e"))
    assert r.returncode == 2 and "--workers must be 0" in r.stderr


def test_clinic_doses_equal_one_patient_at_a_time(tmp_path, cli, theo_quick_fit):
    """``poppk dose --patients FOLDER`` gives each patient the recommendation ``poppk dose --patient FILE``
    gives that patient alone (the same posterior and scoring, run as tasks)."""
    frame = poppk.datasets.load("theophylline").to_frame()
    patients = tmp_path / "patients"
    patients.mkdir()
    for sid in (1, 2):
        frame[frame.ID == sid].to_csv(patients / f"patient{sid}.csv", index=False)
    common = ["--target", "Cminss=3:", "--doses", "160,320,640", "--method", "map"]
    r = cli("dose", str(theo_quick_fit), "--patients", str(patients), *common, "--workers", "0",
            "--out", str(tmp_path / "clinic"))
    assert r.returncode == 0, r.stderr
    table = pd.read_csv(tmp_path / "clinic" / "results.csv")
    assert table.file.tolist() == ["patient1.csv", "patient2.csv"]
    for sid in (1, 2):
        one = cli("dose", str(theo_quick_fit), "--patient", str(patients / f"patient{sid}.csv"), *common,
                  "--out", str(tmp_path / f"one{sid}"))
        assert one.returncode == 0, one.stderr
        alone = pd.read_csv(tmp_path / f"one{sid}" / "dose_options.csv")
        row = table[table.file == f"patient{sid}.csv"].iloc[0]
        assert row.recommended == alone.loc[alone.recommended, "regimen"].iloc[0]
        assert row.p_target == pytest.approx(alone.loc[alone.recommended, "p_target"].iloc[0], abs=1e-12)


def test_sharded_simulation_equals_one_device(theo_quick_fit):
    """The root conftest gives JAX 4 CPU host devices: the same 1,000 patients split across 2 and 4
    devices give what one device gives."""
    from poppk.simulate import exposure_metrics, parse_regimen, simulation_devices, virtual_population

    assert simulation_devices() == 1 and simulation_devices(8) == 4  # CPU: only when asked; at most those there are
    fit = poppk.load_fit(theo_quick_fit)
    reg = parse_regimen("320 mg q12h x 7 d")
    params = virtual_population(fit, 1000, seed=3).parameters()
    one, band1 = exposure_metrics(fit.spec, params, reg, dose_unit="mg", conc_unit="mg/L", devices=1, chunk=400)
    for d in (2, 4):
        many, band = exposure_metrics(fit.spec, params, reg, dose_unit="mg", conc_unit="mg/L", devices=d, chunk=400)
        for k in one:
            np.testing.assert_allclose(many[k], one[k], rtol=1e-12, atol=0, equal_nan=True)
        np.testing.assert_allclose(band, band1, rtol=1e-12, atol=0)


def test_streamed_population_summary_matches_exact_quantiles(theo_quick_fit):
    """population_summary in chunks of 2,000 against numpy's quantiles of the same 10,000 patients
    (rebuilt from its documented seeds): within the histogram's bin, 0.23%; P(target) per replicate exact."""
    from poppk.simulate import Target, exposure_metrics, parse_regimen, population_summary, virtual_population

    fit = poppk.load_fit(theo_quick_fit)
    reg, target = parse_regimen("320 mg q12h x 7 d"), Target.parse("Cminss=3:")
    n, chunk, R, seed = 10_000, 2_000, 25, 4
    s = population_summary(fit, reg, n, target=target, chunk=chunk, n_replicates=R, seed=seed).set_index("metric")
    shared = fit.population_draws(R, np.random.default_rng([seed, 2**31]))
    parts, reps = [], []
    for k, first in enumerate(range(0, n, chunk)):
        pop = virtual_population(fit, chunk, seed=[seed, k], draws=shared, first=first)
        parts.append(exposure_metrics(fit.spec, pop.parameters(), reg, dose_unit="mg", conc_unit="mg/L")[0])
        reps.append(pop.replicate)
    replicate = np.concatenate(reps)
    for metric in ("AUCtau_ss", "Cmax_ss", "Cmin_ss"):
        x = np.concatenate([p[metric] for p in parts])
        assert s.loc[metric, "mean"] == pytest.approx(x.mean(), rel=1e-12)
        for q in (5, 50, 95):
            assert s.loc[metric, f"q{q}"] == pytest.approx(np.quantile(x, q / 100), rel=2.4e-3)
    hit = target.contains(np.concatenate([p["Cmin_ss"] for p in parts]))
    per_rep = np.array([hit[replicate == r].mean() for r in range(R)])
    assert s.loc[f"P({target.label})", "q50"] == pytest.approx(np.median(per_rep), abs=1e-12)


def _weight_data(n=48, seed=3, times=(0.5, 2, 6, 12)) -> pd.DataFrame:
    """Oral one-compartment data: CL = 5 (WT/70)^1 exp(eta), eta ~ N(0, 0.15); AGE and SEX drawn but
    without effect; exponential residual error 0.15."""
    rng = np.random.default_rng(seed)
    wt = np.exp(rng.normal(np.log(70), 0.3, n))
    age, sex = rng.uniform(20, 80, n), rng.integers(0, 2, n)
    rows = []
    for i in range(n):
        cov = dict(WT=wt[i], AGE=age[i], SEX=sex[i])
        rows.append(dict(ID=i + 1, TIME=0.0, AMT=100.0, DV=np.nan, EVID=1, MDV=1, CMT=1, **cov))
        rows += [dict(ID=i + 1, TIME=t, AMT=0.0, DV=1.0, EVID=0, MDV=0, CMT=2, **cov) for t in times]
    frame = pd.DataFrame(rows)
    data = poppk.from_frame(frame, warn=False)
    cl = 5 * (wt / 70) ** 1.0 * np.exp(rng.normal(0, 0.15, n))
    v = 50 * np.exp(rng.normal(0, 0.15, n))
    pred = poppk.predict("oral1cmt", {"CL": cl, "V": v, "KA": np.full(n, 1.5)}, data)
    present = np.asarray(data.present)
    frame.loc[np.asarray(data.row)[present], "DV"] = (pred * np.exp(rng.normal(0, 0.15, pred.shape)))[present]
    return frame


@pytest.mark.slow
def test_covariate_search_selects_the_true_effect(tmp_path, cli):
    """Forward then backward on simulated data with one true effect (WT on CL) and two null ones."""
    data = tmp_path / "wt.csv"
    _weight_data().to_csv(data, index=False)
    out = tmp_path / "cs"
    r = cli("covsearch", str(data), "--model", "oral1cmt", "--covariates", "WT,AGE,SEX", "--parameters", "CL",
            "--chains", "2", "--warmup", "300", "--samples", "300", "--workers", "2", "--out", str(out), timeout=1500)
    assert r.returncode == 0, r.stderr
    assert "selected: CL-WT " in r.stdout
    first = pd.read_csv(out / "steps" / "forward-1.csv")
    assert first.iloc[0].change == "+CL-WT" and first.iloc[0].decision == "added"
    assert "CL_WT" in (out / "selected.toml").read_text() or "covariate = \"WT\"" in (out / "selected.toml").read_text()
    assert json.loads((out / "batch.json").read_text())["workload"] == "covsearch"


def test_simulate_stream_cli_on_two_host_devices(tmp_path, cli, theo_quick_fit):
    """``poppk simulate --stream --devices 2`` as a user runs it: the summary of 20,000 patients equals
    ``population_summary`` of the same seeds on one device (the documented chunk seeds, devices changed)."""
    from poppk.simulate import Target, population_summary

    r = cli("simulate", str(theo_quick_fit), "--regimen", "320 mg q12h x 7 d", "--n", "20000", "--stream",
            "--devices", "2", "--chunk", "5000", "--target", "Cminss=3:", "--out", str(tmp_path))
    assert r.returncode == 0, r.stderr
    assert "on 2 device(s)" in r.stdout
    got = pd.read_csv(tmp_path / "summary_streamed.csv")
    ref = population_summary(poppk.load_fit(theo_quick_fit), "320 mg q12h x 7 d", 20000, chunk=5000,
                             target=Target.parse("Cminss=3:"), devices=1)
    np.testing.assert_allclose(got[["mean", "q5", "q50", "q95"]].to_numpy(), ref[["mean", "q5", "q50", "q95"]].to_numpy(),
                               rtol=1e-9)


@pytest.mark.slow
def test_sbc_on_a_cluster_started_by_dask_scheduler_and_dask_worker(tmp_path, cli):
    """``--scheduler ADDRESS``: the cluster a user starts with ``dask scheduler`` and ``dask worker``
    (2 single-thread workers) runs the same replications as this process does alone."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    dask = str(Path(sys.executable).parent / "dask")
    address = f"tcp://127.0.0.1:{port}"
    procs = [subprocess.Popen([dask, "scheduler", "--host", "127.0.0.1", "--port", str(port), "--no-dashboard"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]
    try:
        time.sleep(3)
        procs.append(subprocess.Popen([dask, "worker", address, "--nworkers", "2", "--nthreads", "1", "--no-dashboard"],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        args = ["--design", "sparse", "--reps", "2", "--chains", "1", "--warmup", "100", "--samples", "100"]
        r = cli("sbc", "oral1cmt_additive", *args, "--scheduler", address, "--out", str(tmp_path / "ext"))
        assert r.returncode == 0, r.stderr
    finally:
        for p in reversed(procs):
            p.terminate()
            p.wait(timeout=60)
    ref = cli("sbc", "oral1cmt_additive", *args, "--workers", "0", "--out", str(tmp_path / "one"))
    assert ref.returncode == 0, ref.stderr
    got, one = pd.read_csv(tmp_path / "ext" / "results.csv"), pd.read_csv(tmp_path / "one" / "results.csv")
    cols = [c for c in one.columns if c.startswith(("rank_", "true_", "q50_"))]
    pd.testing.assert_frame_equal(got[cols], one[cols])
