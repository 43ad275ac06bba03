"""The public API and import hygiene (STYLE.md: no global configuration changed on import)."""

from __future__ import annotations

import os
import subprocess
import sys

import poppk


def test_import_changes_no_global_state():
    code = ("import jax, poppk, poppk.cli\n"
            "from jax._src import xla_bridge\n"
            "assert not xla_bridge._backends, 'JAX backend initialised on import'\n"
            "assert not jax.config.jax_enable_x64, 'x64 switched on by import'\n"
            "assert jax.config.jax_compilation_cache_dir is None, 'compilation cache set on import'\n")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr


def test_public_names_exist():
    for name in poppk.__all__:
        assert hasattr(poppk, name), name


def test_compilation_cache_location(monkeypatch, tmp_path):
    # The rules stated in poppk._runtime.compilation_cache_dir (README, "Compilation cache").
    from poppk._runtime import compilation_cache_dir

    monkeypatch.delenv("POPPK_CACHE_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert compilation_cache_dir() == tmp_path / "poppk" / "xla"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert compilation_cache_dir() == tmp_path / "home" / ".cache" / "poppk" / "xla"
    monkeypatch.setenv("POPPK_CACHE_DIR", str(tmp_path / "mine"))
    assert compilation_cache_dir() == tmp_path / "mine"
    for off in ("off", "OFF", "", "0"):
        monkeypatch.setenv("POPPK_CACHE_DIR", off)
        assert compilation_cache_dir() is None


def test_compilation_cache_respects_jax_setting_and_unwritable_dirs(tmp_path):
    # A user's own JAX cache directory wins; a directory that cannot be written leaves the cache off.
    code = ("import jax, poppk._runtime as c\n"
            "jax.config.update('jax_compilation_cache_dir', {mine!r})\n"
            "c.configure_jax(); assert jax.config.jax_compilation_cache_dir == {mine!r}\n")
    res = subprocess.run([sys.executable, "-c", code.format(mine=str(tmp_path / "mine"))], capture_output=True,
                         text=True)
    assert res.returncode == 0, res.stderr
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    code = ("import jax, poppk._runtime as c\n"
            "c.configure_jax(); assert jax.config.jax_compilation_cache_dir is None\n")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env={**os.environ, "POPPK_CACHE_DIR": str(blocker / "xla")})
    assert res.returncode == 0, res.stderr


def test_compilation_cache_is_pruned_least_recently_used_first_once_a_day(tmp_path):
    # Sizes and times set by hand: 5 programs of 100 bytes, used at times 1..5; a 250-byte limit keeps
    # the two most recent (300 bytes would exceed it), and a second call within the day does nothing.
    from poppk._runtime import _prune

    for i in range(1, 6):
        f = tmp_path / f"jit_p{i}-cache"
        f.write_bytes(b"x" * 100)
        os.utime(f, (1000.0 * i, 1000.0 * i))
    (tmp_path / "unrelated.txt").write_text("kept")
    _prune(tmp_path, 250)
    assert sorted(f.name for f in tmp_path.glob("*-cache")) == ["jit_p4-cache", "jit_p5-cache"]
    assert (tmp_path / "unrelated.txt").exists() and (tmp_path / ".pruned").exists()
    _prune(tmp_path, 50)  # within a day of the last pruning: untouched
    assert len(list(tmp_path.glob("*-cache"))) == 2
    _prune(tmp_path, 50, every_s=0.0)
    assert list(tmp_path.glob("*-cache")) == []


def test_cache_command_reports_and_clears(tmp_path, cli):
    # Two fake programs of known size; the command counts them, --clear deletes them (and only them).
    cache = tmp_path / "xla"
    cache.mkdir()
    for name in ("jit_a-cache", "jit_b-cache"):
        (cache / name).write_bytes(b"x" * 2**20)
    (cache / "notes.txt").write_text("not a program")
    res = cli("cache", env={"POPPK_CACHE_DIR": str(cache)})
    assert res.returncode == 0 and f"{cache}: 2 compiled programs, 2.0 MiB" in res.stdout, res.stderr
    res = cli("cache", "--clear", env={"POPPK_CACHE_DIR": str(cache)})
    assert res.returncode == 0 and "cleared" in res.stdout
    assert [f.name for f in cache.iterdir() if not f.name.startswith(".")] == ["notes.txt"]
    res = cli("cache", env={"POPPK_CACHE_DIR": "off"})
    assert res.returncode == 0 and "off" in res.stdout


def test_chain_method_follows_the_devices(monkeypatch):
    # NumPyro's three ways of running chains (numpyro.infer.MCMC's chain_method): one device per chain,
    # else batched on an accelerator, else one after the other on a CPU (rule in poppk._runtime.chain_method).
    import jax

    from poppk._runtime import chain_method

    monkeypatch.setattr(jax, "local_device_count", lambda: 1)
    monkeypatch.setattr(jax, "default_backend", lambda: "cpu")
    assert (chain_method(1), chain_method(4)) == ("parallel", "sequential")
    monkeypatch.setattr(jax, "default_backend", lambda: "gpu")
    assert chain_method(4) == "vectorized"
    monkeypatch.setattr(jax, "local_device_count", lambda: 4)
    assert chain_method(4) == "parallel"


def test_python_dash_m_poppk_is_the_command():
    # `python -m poppk` (what a benchmark runs where no console script is installed) = `poppk`.
    res = subprocess.run([sys.executable, "-m", "poppk", "--help"], capture_output=True, text=True)
    assert res.returncode == 0 and "usage: poppk" in res.stdout, res.stderr
