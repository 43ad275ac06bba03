"""The dosing engine's one rule for where a sample stands in each dose train (``poppk.pk.train_position``,
``poppk.pk.time_after_dose``), used by the closed forms, diagnostics (TAD, DOSE_N) and the checks of
records before any dose.

Reference: NONMEM's event semantics (a dose at the sample's time counts when its record comes first;
additional doses sort after every record at their time, so a sample at a dosing time is a trough; a reset,
EVID 3 or 4, or an SS=1 dose starts a new epoch). The expected values are worked out by hand below.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

import poppk
from poppk.pk import Doses, Sampling, time_after_dose

# One subject. Records, in file order:
#   t=0   sample (before the dose record)        -> no dose yet: TAD NaN, 0 doses
#   t=0   dose 100, ADDL 2, II 12 (doses at 0, 12, 24)
#   t=12  sample: the ADDL dose at 12 sorts after it -> trough: TAD 12, 1 dose
#   t=30  sample                                   -> TAD 30 - 24 = 6, 3 doses
#   t=40  EVID 3 reset (epoch 1)
#   t=45  sample                                   -> no dose in its epoch: NaN, 0
#   t=50  dose 100, SS=1, II 24 (epoch 2)
#   t=60  sample                                   -> TAD 10, steady state (inf doses)
EXPECTED_TAD = [np.nan, 12.0, 6.0, np.nan, 10.0]
EXPECTED_N = [0.0, 1.0, 3.0, 0.0, np.inf]


def _row(*values, dtype=float):
    return np.asarray([values], dtype=dtype)


def test_time_after_dose_by_hand():
    doses = Doses(time=_row(0.0, 50.0), amt=_row(100.0, 100.0), rate=_row(0.0, 0.0), cmt=_row(1, 1, dtype=int), ii=_row(12.0, 24.0),
                  addl=_row(2, 0, dtype=int), ss=_row(False, True, dtype=bool), order=_row(1.0, 6.0),
                  epoch=_row(0, 2, dtype=int), mask=_row(True, True, dtype=bool))
    sampling = Sampling(time=_row(0.0, 12.0, 30.0, 45.0, 60.0), order=_row(0.0, 2.0, 3.0, 5.0, 7.0),
                        epoch=_row(0, 0, 0, 1, 2, dtype=int))
    tad, n = time_after_dose(doses, sampling)
    np.testing.assert_array_equal(tad[0], EXPECTED_TAD)
    np.testing.assert_array_equal(n[0], EXPECTED_N)


def test_time_after_dose_from_nonmem_records():
    """The same records read as a user writes them: the reader's epochs and order give the same answer."""
    rows = [
        dict(ID=1, TIME=0, AMT=0, DV=0.1, EVID=0, MDV=0, ADDL=0, II=0, SS=0),
        dict(ID=1, TIME=0, AMT=100, DV=".", EVID=1, MDV=1, ADDL=2, II=12, SS=0),
        dict(ID=1, TIME=12, AMT=0, DV=1.0, EVID=0, MDV=0, ADDL=0, II=0, SS=0),
        dict(ID=1, TIME=30, AMT=0, DV=1.0, EVID=0, MDV=0, ADDL=0, II=0, SS=0),
        dict(ID=1, TIME=40, AMT=0, DV=".", EVID=3, MDV=1, ADDL=0, II=0, SS=0),
        dict(ID=1, TIME=45, AMT=0, DV=0.1, EVID=0, MDV=0, ADDL=0, II=0, SS=0),
        dict(ID=1, TIME=50, AMT=100, DV=".", EVID=1, MDV=1, ADDL=0, II=24, SS=1),
        dict(ID=1, TIME=60, AMT=0, DV=1.0, EVID=0, MDV=0, ADDL=0, II=0, SS=0),
    ]
    data = poppk.from_frame(pd.DataFrame(rows).astype(str), warn=False)
    tad, n = time_after_dose(data.doses, data.sampling)
    present = np.asarray(data.present)[0]
    np.testing.assert_array_equal(tad[0][present], EXPECTED_TAD)
    np.testing.assert_array_equal(n[0][present], EXPECTED_N)


def test_the_closed_form_follows_the_same_rule():
    """Where the rule says no dose acts (NaN TAD), the closed form predicts 0; where it does, not 0."""
    rows = [dict(ID=1, TIME=0, AMT=100, DV=".", EVID=1, MDV=1, CMT=1), dict(ID=1, TIME=5, AMT=0, DV=1, EVID=0, MDV=0, CMT=2),
            dict(ID=1, TIME=6, AMT=0, DV=".", EVID=3, MDV=1, CMT=2), dict(ID=1, TIME=7, AMT=0, DV=1, EVID=0, MDV=0, CMT=2)]
    data = poppk.from_frame(pd.DataFrame(rows).astype(str), warn=False)
    c = poppk.predict("oral1cmt", {"CL": 1.0, "V": 10.0, "KA": 1.0}, data)
    tad, _ = time_after_dose(data.doses, data.sampling)
    present = np.asarray(data.present)
    assert ((c[present] == 0) == np.isnan(tad[present])).all()
