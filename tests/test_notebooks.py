"""Every notebook in notebooks/ runs top to bottom (tiny sampler settings, POPPK_NOTEBOOK_QUICK=1).

The notebooks run in order in one output folder, as a user working through them would, so that the
later ones reuse the fits the earlier ones saved. Failures of all notebooks are reported together.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest


NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("*.ipynb"))


def execute(path: Path, out: Path, timeout: int = 900) -> None:
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    env = {"POPPK_NOTEBOOK_QUICK": "1", "POPPK_NOTEBOOK_OUT": str(out), "MPLBACKEND": "module://matplotlib_inline.backend_inline"}
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)  # the kernel inherits the environment of the process that starts it
    try:
        NotebookClient(nb, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": str(out)}}).execute()
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def test_there_are_notebooks_for_each_step():
    names = [p.name for p in NOTEBOOKS]
    for step in ("nca", "fit", "comparison", "regimen", "toxicity", "theophylline", "efficacy"):
        assert any(step in n for n in names), (step, names)


@pytest.mark.slow  # 11-12 min on 2 cores, the default run's longest test; run in .ci/run's slow step
def test_every_notebook_runs(tmp_path):
    failures = []
    for path in NOTEBOOKS:
        try:
            execute(path, tmp_path)
        except Exception as exc:  # noqa: BLE001 - collect every notebook's failure
            failures.append(f"{path.name}: {str(exc)[-3000:]}")
    assert not failures, "\n\n".join(failures)
    assert (tmp_path / "fits" / "oral1cmt_mm" / "posterior.nc").exists()
    assert (tmp_path / "fits" / "theophylline" / "export" / "tables.xlsx").exists()
