"""The fit folder is defined once (``poppk.fit.folder``) and carries a format version.

References: the format itself (``poppk.fit.folder.FORMAT_VERSION`` = 1, the list ``FILES``). A folder
written before versions existed is that folder with ``format_version`` absent from ``fit.json``
(wave-1 folders had the same files and keys), so it is made here by deleting the key from a real fit.
"""

from __future__ import annotations

import json
import shutil
import warnings

import pytest

from poppk import FitError, load_fit
from poppk.fit import FitFolderWarning, FitRecord, folder


def test_a_new_folder_has_every_file_and_carries_the_version(theo_quick_fit):
    assert sorted(p.name for p in theo_quick_fit.iterdir() if p.is_file()) == sorted(folder.FILES)
    info = json.loads((theo_quick_fit / "fit.json").read_text())
    assert info["format_version"] == folder.FORMAT_VERSION == 1
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a current folder loads without a word
        fit = load_fit(theo_quick_fit)
    assert fit.record.format_version == 1 and fit.record.dose_unit == "mg"


def test_a_folder_from_before_versions_is_upgraded_with_a_message(theo_quick_fit, tmp_path):
    old = tmp_path / "old"
    shutil.copytree(theo_quick_fit, old)
    info = json.loads((old / "fit.json").read_text())
    del info["format_version"]
    (old / "fit.json").write_text(json.dumps(info))
    with pytest.warns(FitFolderWarning, match="format 0"):
        fit = load_fit(old)
    assert fit.info["format_version"] == folder.FORMAT_VERSION
    fit.save(tmp_path / "resaved")  # saved again: upgraded on disk
    assert json.loads((tmp_path / "resaved" / "fit.json").read_text())["format_version"] == folder.FORMAT_VERSION


def test_a_folder_of_a_newer_format_is_refused_by_version(theo_quick_fit, tmp_path, cli):
    new = tmp_path / "new"
    shutil.copytree(theo_quick_fit, new)
    info = json.loads((new / "fit.json").read_text())
    info["format_version"] = folder.FORMAT_VERSION + 1
    (new / "fit.json").write_text(json.dumps(info))
    with pytest.raises(FitError, match="format 2.*newer poppk"):
        load_fit(new)
    res = cli("export", str(new))
    assert res.returncode == 2 and "newer poppk" in res.stderr and "Traceback" not in res.stderr


def test_the_record_names_a_missing_or_mistyped_key():
    good = {"population": ["CL"], "prior_sd": {"CL": 1}, "log_scale": [], "kernel_params": ["CL"],
            "dose_unit": "mg", "conc_unit": "mg/L", "seed": 3, "command": "poppk fit"}
    record = FitRecord.from_info(good)
    assert record.seed == 3 and record.extra == {"command": "poppk fit"}
    assert FitRecord.from_info(record.to_info()) == record
    with pytest.raises(FitError, match="'kernel_params'"):
        FitRecord.from_info({k: v for k, v in good.items() if k != "kernel_params"})
    with pytest.raises(FitError, match="'population' should be a list"):
        FitRecord.from_info({**good, "population": "CL"})
