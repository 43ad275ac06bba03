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
    # The rules stated in poppk._config.compilation_cache_dir (README, "Compilation cache").
    from poppk._config import compilation_cache_dir

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
    code = ("import jax, poppk._config as c\n"
            "jax.config.update('jax_compilation_cache_dir', {mine!r})\n"
            "c.configure_jax(); assert jax.config.jax_compilation_cache_dir == {mine!r}\n")
    res = subprocess.run([sys.executable, "-c", code.format(mine=str(tmp_path / "mine"))], capture_output=True,
                         text=True)
    assert res.returncode == 0, res.stderr
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    code = ("import jax, poppk._config as c\n"
            "c.configure_jax(); assert jax.config.jax_compilation_cache_dir is None\n")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env={**os.environ, "POPPK_CACHE_DIR": str(blocker / "xla")})
    assert res.returncode == 0, res.stderr
