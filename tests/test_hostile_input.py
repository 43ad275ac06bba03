"""Hostile input: random and malformed CSVs, wrong encodings, huge values, empty files, and random
regimen / target text. Each either loads or fails with a clear poppk error (CLI: exit 2, no
traceback), never another exception or a hang, and the input file is never modified.

Reference: the contract in DESIGN.md ("bad input is reported once, completely ... DatasetError").
"""

from __future__ import annotations

import hashlib
import string
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import poppk
from poppk import DatasetError, PoppkError
from poppk.simulate import Regimen, RegimenError, Target, parse_regimen

COLUMNS = ["ID", "TIME", "AMT", "DV", "EVID", "MDV", "CMT", "II", "ADDL", "SS", "RATE", "BLQ", "LLOQ", "WT",
           "id", "time", "Dv", "CENS", "LOQ", "SEX", "", " ", "ID", "x y", "é"]
CELLS = st.one_of(
    st.integers(-3, 5).map(str), st.sampled_from(["", ".", "NA", "nan", "inf", "-inf", "1e308", "1e-320", "-0",
                                                  "9" * 400, "1,5", "\"3\"", "0x10", "1e999", "TRUE", " 2 "]),
    st.floats(allow_nan=True, allow_infinity=True).map(repr), st.text(max_size=6))


def _digest(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _load(path):
    """read_nonmem; returns None on a clean DatasetError; anything else propagates."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return poppk.read_nonmem(path, dose_unit="mg", conc_unit="mg/L")
        except DatasetError as exc:
            assert str(exc).strip(), "an error must say something"
            return None


@st.composite
def csv_texts(draw):
    cols = draw(st.lists(st.sampled_from(COLUMNS), min_size=0, max_size=10))
    n = draw(st.integers(0, 8))
    rows = [[draw(CELLS) for _ in cols] for _ in range(n)]
    sep = draw(st.sampled_from([",", ",", ";", "\t"]))
    quote = lambda c: '"' + c.replace('"', '""') + '"' if any(ch in c for ch in ',;\t"\n\r') else c  # noqa: E731
    lines = [sep.join(quote(c) for c in cols)] + [sep.join(quote(c) for c in r) for r in rows]
    return "\n".join(lines) + draw(st.sampled_from(["", "\n", "\r\n", "\n\n"]))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=csv_texts(), encoding=st.sampled_from(["utf-8", "utf-8-sig", "utf-16", "latin-1"]))
def test_random_csv_loads_or_fails_cleanly(tmp_path, text, encoding):
    path = tmp_path / "random.csv"
    try:
        path.write_bytes(text.encode(encoding))
    except UnicodeEncodeError:
        path.write_bytes(text.encode("utf-8", "replace"))
    before = _digest(path)
    data = _load(path)
    assert _digest(path) == before, "the input file was modified"
    if data is not None:
        assert data.n_subjects >= 1
        assert np.isfinite(np.asarray(data.sampling.time)[np.asarray(data.present)]).all()


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=st.lists(st.tuples(st.integers(1, 3), st.floats(0, 1e6), st.sampled_from([0, 0, 10, 1e300]),
                               st.floats(-1e300, 1e300, allow_nan=False), st.sampled_from([0, 1, 2, 4])),
                     min_size=1, max_size=12))
def test_random_but_well_formed_records_load_or_name_a_row(tmp_path, rows):
    """Numeric records with extreme values: loaded, or every problem named with a row and a column."""
    path = tmp_path / "records.csv"
    lines = ["ID,TIME,AMT,DV,EVID"]
    lines += [f"{i},{t!r},{a!r},{'.' if e in (1, 4) else repr(dv)},{e}" for i, t, a, dv, e in sorted(rows)]
    path.write_text("\n".join(lines) + "\n")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            poppk.read_nonmem(path)
    except DatasetError as exc:
        for v in exc.violations:
            assert v.row is not None or v.column is not None or "dose" in v.message or "observation" in v.message, v


@pytest.mark.parametrize("content", [
    b"", b"\n\n\n", b"ID,TIME,AMT,DV\n", "ID,TIME,AMT,DV\n1,0,100,.\n1,1,0,5\n".encode("utf-16"),
    "ID;TIME;AMT;DV\n1;0;100;.\n1;1;0;5\n".encode(), b"\x00\x01\x02" * 100, "ID,TIME,AMT,DV\n1,0,100,.\n1,1,0,5é\n".encode("latin-1"),
    b"ID,TIME,AMT,DV\n1,0,1e400,.\n1,1,0,5\n", b"ID,TIME,AMT,DV\n1,0,100,.\n1,1e308,0,5\n",
    ("ID,TIME,AMT,DV," + ",".join(f"C{k}" for k in range(2000)) + "\n1,0,100,." + ",1" * 2000 + "\n").encode(),
    b'ID,TIME,AMT,DV\n"1,0,100,.\n1,1,0,5\n',
])
def test_hostile_files_through_the_cli(tmp_path, cli, content):
    path = tmp_path / "hostile.csv"
    path.write_bytes(content)
    res = cli("nca", str(path), timeout=120)
    assert res.returncode in (0, 2), res.stderr[-2000:]
    assert "Traceback" not in res.stderr and "Traceback" not in res.stdout
    if res.returncode == 2:
        assert "error:" in res.stderr
    assert path.read_bytes() == content


REGIMEN_WORDS = ["110", "mg", "q12h", "x", "28", "d", "then", "loading", "bid", "qd", ",", "every", "h", "doses",
                 "0", "-5", "1e9", "ug", "g", "for", "weeks", "0.5", "tid", "q0h", "q", "1e-300", "µg"]


@settings(max_examples=400, deadline=2000)
@given(st.one_of(st.lists(st.sampled_from(REGIMEN_WORDS), max_size=12).map(" ".join),
                 st.text(alphabet=string.printable + "µé", max_size=60)))
def test_random_regimen_text_parses_or_says_why(text):
    try:
        reg = parse_regimen(text)
    except RegimenError as exc:
        assert str(exc)
        return
    assert reg.n_doses >= 1 and all(s.amount > 0 for s in reg.segments)
    times, amounts = reg.dose_times()
    assert np.all(np.diff(times) > 0) and np.isfinite(times).all()


@settings(max_examples=200, deadline=2000)
@given(amount=st.integers(1, 2000), freq=st.sampled_from([("qd", 24), ("bid", 12), ("tid", 8), ("q6h", 6),
                                                          ("q48h", 48)]), days=st.integers(1, 60))
def test_wellformed_regimens_count_their_doses(amount, freq, days):
    word, tau = freq
    if (days * 24) % tau:
        with pytest.raises(RegimenError, match="whole number"):
            parse_regimen(f"{amount} mg {word} x {days} d")
        return
    reg = parse_regimen(f"{amount} mg {word} x {days} d")
    assert reg.n_doses == days * 24 // tau and reg.tau == tau and reg.segments[0].amount == amount


def test_long_regimen_text_does_not_hang():
    with pytest.raises(RegimenError):
        parse_regimen("1" * 5000 + " mg q" + "1" * 5000 + "x")
    with pytest.raises(RegimenError):
        parse_regimen(" then ".join(["10 mg qd x"] * 2000))


@settings(max_examples=300, deadline=2000)
@given(st.one_of(st.text(alphabet="AUCs=:.-+e0123456789inf ,", max_size=30), st.text(max_size=30)))
def test_random_target_text_parses_or_says_why(text):
    try:
        t = Target.parse(text)
    except PoppkError as exc:
        assert str(exc)
        return
    assert t.low < t.high


def test_regimen_objects_validate_themselves():
    from poppk.simulate import Segment

    with pytest.raises(RegimenError):
        Regimen((Segment(-1.0),))
    with pytest.raises(RegimenError):
        Regimen((Segment(10.0, 3, 0.0),))
    with pytest.raises(RegimenError):
        Regimen(())
