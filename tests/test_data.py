"""Datasets: reading, validation rules (through the CLI), round trip.

Expected values come from the files written in each test: the rules are
those of NONMEM's data-item conventions (EVID/MDV/ADDL/II/SS).
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

import poppk
from poppk import DatasetError, DatasetWarning

HEADER = "ID,TIME,AMT,DV,EVID,MDV,CMT,II,ADDL,SS"
GOOD = [
    "1,0,100,.,1,1,1,0,0,0",
    "1,1,0,5.0,0,0,2,0,0,0",
    "1,4,0,3.0,0,0,2,0,0,0",
    "2,0,100,.,1,1,1,12,3,0",
    "2,2,0,4.0,0,0,2,0,0,0",
]

# (name, header, rows, expected row, expected column, text in message)
BAD_CASES = [
    ("missing_column", "ID,TIME,AMT", ["1,0,100"], None, "DV", "required column is missing"),
    ("non_numeric", HEADER, GOOD[:1] + ["1,1,0,abc,0,0,2,0,0,0"], 2, "DV", "not a number"),
    ("negative_amt", HEADER, ["1,0,-5,.,1,1,1,0,0,0", "1,1,0,5,0,0,2,0,0,0"], 1, "AMT", "negative"),
    ("negative_time", HEADER, ["1,-1,100,.,1,1,1,0,0,0", "1,1,0,5,0,0,2,0,0,0"], 1, "TIME", "negative"),
    ("time_backwards", HEADER, GOOD[:3] + ["1,2,0,4,0,0,2,0,0,0"], 4, "TIME", "backwards"),
    ("dose_without_amt", HEADER, ["1,0,.,.,1,1,1,0,0,0", "1,1,0,5,0,0,2,0,0,0"], 1, "AMT", "without a positive AMT"),
    ("addl_without_ii", HEADER, ["1,0,100,.,1,1,1,0,4,0", "1,1,0,5,0,0,2,0,0,0"], 1, "II", "ADDL"),
    ("ss_without_ii", HEADER, ["1,0,100,.,1,1,1,0,0,1", "1,1,0,5,0,0,2,0,0,0"], 1, "II", "SS needs a dosing interval"),
    ("duplicated", HEADER, GOOD[:2] + [GOOD[1]], 3, None, "duplicated record (same as row 2)"),
    ("unknown_evid", HEADER, GOOD[:1] + ["1,1,0,5,9,0,2,0,0,0"], 2, "EVID", "unknown EVID 9"),
    ("unknown_dose_cmt", HEADER, ["1,0,100,.,1,1,5,0,0,0", "1,1,0,5,0,0,2,0,0,0"], 1, "CMT", "dose into CMT 5, which oral1cmt does not have"),
    ("unknown_obs_cmt", HEADER, GOOD[:1] + ["1,1,0,5,0,0,1,0,0,0"], 2, "CMT", "observation of CMT 1 (depot)"),
    ("id_not_contiguous", HEADER, GOOD[:2] + GOOD[3:5] + ["1,6,0,2,0,0,2,0,0,0"], 5, "ID", "appears again"),
    ("blq_without_lloq", "ID,TIME,AMT,DV,EVID,MDV,BLQ", ["1,0,100,.,1,1,0", "1,1,0,.,0,0,1"], 2, "LLOQ", "LLOQ"),
    ("obs_without_dv", HEADER, GOOD[:1] + ["1,1,0,.,0,0,2,0,0,0"], 2, "DV", "has no DV"),
    ("bad_rate", HEADER + ",RATE", ["1,0,100,.,1,1,2,0,0,0,-3", "1,1,0,5,0,0,2,0,0,0,0"], 1, "RATE", "RATE must be 0"),
    ("modelled_duration", HEADER + ",RATE", ["1,0,100,.,1,1,1,0,0,0,-2", "1,1,0,5,0,0,2,0,0,0,0"], 1, "RATE",
     "the model parameter D1"),
    ("ss3", HEADER, ["1,0,100,.,1,1,1,12,0,3", "1,1,0,5,0,0,2,0,0,0"], 1, "SS", "SS must be 0, 1 or 2"),
]


def _write(tmp_path, name, header, rows):
    path = tmp_path / f"{name}.csv"
    path.write_text("\n".join([header, *rows]) + "\n")
    return path


@pytest.mark.parametrize("case", BAD_CASES, ids=[c[0] for c in BAD_CASES])
def test_bad_input_through_cli(tmp_path, cli, case):
    name, header, rows, row, column, text = case
    path = _write(tmp_path, name, header, rows)
    before = path.read_bytes()
    res = cli("predict", str(path), "--model", "oral1cmt", "--param", "CL=1", "--param", "V=10", "--param", "KA=1")
    assert res.returncode == 2, res.stderr
    assert "Traceback" not in res.stderr
    assert text in res.stderr
    if row is not None:
        assert f"row {row}" in res.stderr
    if column is not None:
        assert f"column {column}" in res.stderr
    assert path.read_bytes() == before  # the input is never modified


def test_every_violation_is_reported_at_once(tmp_path):
    path = _write(tmp_path, "many", HEADER, ["1,0,-5,.,1,1,1,0,0,0", "1,1,0,abc,0,0,2,0,0,0", "1,0.5,0,3,8,0,2,0,0,0"])
    with pytest.raises(DatasetError) as info:
        poppk.read_nonmem(path)
    found = {(v.row, v.column) for v in info.value.violations}
    assert {(1, "AMT"), (2, "DV"), (3, "EVID"), (3, "TIME")} <= found


def test_reads_good_file_with_trains_and_case_insensitive_names(tmp_path):
    path = _write(tmp_path, "good", HEADER.lower(), GOOD)
    data = poppk.read_nonmem(path)
    assert data.ids == (1, 2)
    assert data.n_observations == 3
    assert int(data.doses.addl[1, 0]) == 3 and float(data.doses.ii[1, 0]) == 12.0
    assert data.expanded_doses().time.shape == (2, 4)


def test_legal_but_odd_data_warn_and_are_kept(tmp_path):
    rows = ["1,0,0,1.0,0,0,2,0,0,0", "1,1,100,.,1,1,1,0,0,0", "1,2,0,3,0,0,2,0,0,0", "2,0,100,.,1,1,1,0,0,0"]
    path = _write(tmp_path, "odd", HEADER, rows)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        data = poppk.read_nonmem(path)
    messages = " | ".join(str(w.message) for w in caught if issubclass(w.category, DatasetWarning))
    assert "before the first dose" in messages
    assert "ID 2: no fitted observations" in messages
    assert data.n_subjects == 2 and data.n_observations == 2


def test_mdv_rows_are_carried_not_fitted(tmp_path):
    path = _write(tmp_path, "mdv", HEADER, GOOD[:2] + ["1,2,0,.,0,1,2,0,0,0", "1,4,0,3,0,0,2,0,0,0"])
    data = poppk.read_nonmem(path)
    assert np.asarray(data.present[0]).sum() == 3
    assert np.asarray(data.fit_mask[0]).sum() == 2
    pred = poppk.predict("oral1cmt", {"CL": 1.0, "V": 10.0, "KA": 1.0}, data)
    assert np.isfinite(pred[0, :3]).all()  # predictions at MDV=1 records too


def test_round_trip_to_frame(tmp_path):
    data = poppk.read_nonmem(poppk.datasets.path("theophylline"))
    frame = data.to_frame()
    original = pd.read_csv(poppk.datasets.path("theophylline"), na_values=["."])
    assert len(frame) == len(original)
    for col in ("ID", "TIME", "AMT", "EVID", "MDV", "CMT", "WT"):
        np.testing.assert_allclose(frame[col].to_numpy(float), original[col].to_numpy(float))
    np.testing.assert_allclose(frame["DV"].to_numpy(float), original["DV"].to_numpy(float), equal_nan=True)
    again = poppk.from_frame(frame)
    np.testing.assert_array_equal(np.asarray(again.dv), np.asarray(data.dv))


def test_units_are_declared_and_checked():
    from poppk.errors import UnitError
    from poppk.units import concentration_scale

    assert concentration_scale("mg", "ng/mL") == 1000.0
    assert concentration_scale("ug", "ng/mL") == 1.0
    with pytest.raises(UnitError):
        poppk.read_nonmem(poppk.datasets.path("theophylline"), conc_unit="furlongs")


def test_lloq_column_derives_blq(tmp_path):
    path = _write(tmp_path, "lloq", "ID,TIME,AMT,DV,LLOQ", ["1,0,100,.,.", "1,1,0,5,0.5", "1,30,0,0.1,0.5"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        data = poppk.read_nonmem(path)
    assert np.asarray(data.blq[0]).tolist()[:2] == [False, True]


def test_empty_and_binary_files_are_clear_errors(tmp_path, cli):
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    binary = tmp_path / "bin.csv"
    binary.write_bytes(b"\xff\xfe\x00\x81garbage")
    for path, text in ((empty, "empty"), (binary, "UTF-8")):
        res = cli("predict", str(path), "--model", "oral1cmt", "--param", "CL=1", "--param", "V=1", "--param", "KA=1")
        assert res.returncode == 2 and text in res.stderr and "Traceback" not in res.stderr
