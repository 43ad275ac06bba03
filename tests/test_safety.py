"""Results people can trust: reproducible fits, fit folders written whole or not at all, damaged
folders named precisely.

Reference: the contract of DESIGN.md and the issue (bit-identical summary.csv for the same data,
spec and seed; atomic fit folders; ``--force`` to replace).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

import poppk
from poppk import FitError, load_fit


def _fit_cli(cli, out, *extra, env=None):
    return cli("fit", str(poppk.datasets.path("theophylline")), "--model", "oral1cmt_additive", "--out", str(out),
               "--chains", "2", "--warmup", "100", "--samples", "100", "--seed", "5", "--no-progress", *extra,
               env=env)


@pytest.mark.slow  # two full CLI fits (88 s); run in .ci/run's slow step
def test_same_seed_gives_bit_identical_results_and_records_how(tmp_path, cli):
    # a: compiled afresh without the compilation cache; b: compiled into an empty cache; c: loaded from it.
    cache = tmp_path / "xla"
    for name, where in (("a", "off"), ("b", str(cache)), ("c", str(cache))):
        res = _fit_cli(cli, tmp_path / name, env={"POPPK_CACHE_DIR": where})
        assert res.returncode == 0, res.stderr[-2000:]
    assert any(cache.glob("*-cache")), "the first cached run left no compiled programs"
    for name in ("b", "c"):
        assert (tmp_path / "a" / "summary.csv").read_bytes() == (tmp_path / name / "summary.csv").read_bytes()
        assert (tmp_path / "a" / "individual.csv").read_bytes() == (tmp_path / name / "individual.csv").read_bytes()
    a, c = load_fit(tmp_path / "a"), load_fit(tmp_path / "c")
    np.testing.assert_array_equal(a.draws("CL"), c.draws("CL"))
    info = json.loads((tmp_path / "a" / "fit.json").read_text())
    assert {"poppk", "jax", "numpyro", "arviz", "python"} <= set(info["versions"])
    assert info["command"].startswith("poppk fit ") and "--seed 5" in info["command"]
    assert info["compilation_cache"] is None
    assert json.loads((tmp_path / "c" / "fit.json").read_text())["compilation_cache"] == str(cache)
    res = _fit_cli(cli, tmp_path / "b")  # exists: refused, untouched
    assert res.returncode == 2 and "--force" in res.stderr
    assert (tmp_path / "b" / "summary.csv").read_bytes() == (tmp_path / "a" / "summary.csv").read_bytes()
    res = _fit_cli(cli, tmp_path / "b", "--force", "--seed", "6")
    assert res.returncode == 0 and (tmp_path / "b" / "summary.csv").read_bytes() != (tmp_path / "a" / "summary.csv").read_bytes()


def test_interrupted_save_leaves_nothing_behind(theo_quick_fit, tmp_path, monkeypatch):
    fit = load_fit(theo_quick_fit)

    def boom(*a, **k):
        raise KeyboardInterrupt  # Ctrl-C half-way through writing the folder

    monkeypatch.setattr(type(fit), "individual", boom)
    with pytest.raises(KeyboardInterrupt):
        fit.save(tmp_path / "fit")
    assert list(tmp_path.iterdir()) == []  # neither the folder nor a partial one


def test_interrupted_replacement_keeps_the_old_folder(theo_quick_fit, tmp_path, monkeypatch):
    import shutil

    target = tmp_path / "fit"
    shutil.copytree(theo_quick_fit, target)
    before = (target / "summary.csv").read_bytes()
    fit = load_fit(theo_quick_fit)
    monkeypatch.setattr(type(fit), "individual", lambda *a, **k: (_ for _ in ()).throw(RuntimeError("crash")))
    with pytest.raises(RuntimeError):
        fit.save(target, force=True)
    assert (target / "summary.csv").read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fit"]


def test_ctrl_c_during_a_fit_writes_no_folder(tmp_path):
    out = tmp_path / "fit"
    env = dict(os.environ, MPLBACKEND="Agg")
    proc = subprocess.Popen([sys.executable, "-m", "poppk.cli", "fit", str(poppk.datasets.path("lxi15029")),
                             "--model", "oral1cmt", "--conc-unit", "ng/mL", "--out", str(out), "--chains", "2",
                             "--warmup", "2000", "--samples", "2000"],  # with a progress bar, as a user runs it
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                            # Ctrl-C as at a terminal: a test run started in the background (`pytest &`)
                            # passes SIGINT down ignored, and Python then never raises KeyboardInterrupt.
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.time() + 120
    while time.time() < deadline and "fitting" not in (proc.stdout.readline() or ""):
        pass
    time.sleep(5)  # compiling or sampling
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err[-2000:]
    assert "interrupted" in err and "Traceback" not in err
    assert not out.exists() and list(tmp_path.iterdir()) == []


def test_ctrl_c_inside_a_garbage_collector_callback_is_kept_for_later(monkeypatch):
    # Found by the fresh-clone run: Ctrl-C arrived while JAX's gc callback ran; the KeyboardInterrupt raised
    # there was only printed ("Exception ignored in _xla_gc_callback"), and the fit ran on and wrote its folder.
    # The CLI's handler records it instead, and check_interrupted (before a fit folder is written) raises it.
    import gc

    from poppk import _runtime as _config

    monkeypatch.setattr(_config, "_interrupted", False)
    returned = []

    def callback(phase, info):
        _config._on_sigint(signal.SIGINT, sys._getframe())  # Ctrl-C arriving here must not raise here
        returned.append(phase)

    gc.callbacks.append(callback)
    try:
        gc.collect()
    finally:
        gc.callbacks.remove(callback)
    assert returned
    with pytest.raises(KeyboardInterrupt):
        _config.check_interrupted()
    with pytest.raises(KeyboardInterrupt):  # anywhere else it raises at once, as Python's own handler does
        _config._on_sigint(signal.SIGINT, sys._getframe())


@pytest.mark.parametrize("damage", ["posterior.nc", "fit.json", "data.csv", "spec.toml"])
def test_damaged_folders_name_the_piece(theo_quick_fit, tmp_path, damage, cli):
    import shutil

    folder = tmp_path / "fit"
    shutil.copytree(theo_quick_fit, folder)
    (folder / damage).write_bytes(b"\x00garbage{")
    with pytest.raises(FitError, match=damage.replace(".", r"\.")):
        load_fit(folder)
    res = cli("report", str(folder))
    assert res.returncode == 2 and damage in res.stderr and "Traceback" not in res.stderr
