"""Generate the reconstructed LXI-15029 trial's efficacy table (deterministic, fixed seed).

What the paper reports (Results, "Efficacy", and Fig. 4): of the 24 patients, 20 were evaluable; no CR
or PR; best response SD in 8 (disease control rate 40%, 8/20, 95% CI 21.7-60.6); median PFS from the
first dose 29 days (95% CI 29-141, Kaplan-Meier); one patient with fibrosarcoma at 20 mg BID had SD
for 344 days (cycles 1-11, PD at cycle 12); "no relationship was found between Ctrough and median PFS
or DCR"; tumour types as Table 1 (breast 10, fibrosarcoma 4, leiomyosarcoma 4, one each of adrenal
gland cancer, chondrosarcoma, neuroendocrine carcinoma, neurofibrosarcoma, soft tissue sarcoma and
synovial sarcoma).

Generating relationship: **none**. Who is evaluable, who has SD and the tumour types are drawn at
random, independently of exposure (and of dose); the one constraint is the paper's 344-day patient
(fibrosarcoma, 20 mg). Tumour assessments follow the protocol (RECIST 1.1 at week 4 and every 8 weeks):
the 12 patients with PD as best response progress at the first assessment (day 29); the SD patients
progress at later assessments, days 85, 85, 141, 141, 197, 253 and 344 (the paper's patient), and one is
censored at day 141 (still on study at data cut-off). With these times the Kaplan-Meier median is 29
days with 95% CI 29-141 (log-log Greenwood bands, SAS's default, as the paper used): the paper's figures
exactly (``tests/test_efficacy.py`` checks it with lifelines). ``PFS_LO_DAYS`` is each progression's
previous assessment on that schedule (0 for progression at the first one; 309 days for the 344-day
patient, whose PD came between scans), so the progression happened in ``(PFS_LO_DAYS, PFS_DAYS]``: the
interval censoring that periodic scans impose (empty for the censored patient and the non-evaluable ones).

Run ``python -m poppk.datasets._make_lxi15029_efficacy`` to rewrite ``lxi15029_efficacy.csv``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

SEED = 15029
TUMOURS = {"breast cancer": 10, "fibrosarcoma": 4, "leiomyosarcoma": 4, "adrenal gland cancer": 1,
           "chondrosarcoma": 1, "neuroendocrine carcinoma": 1, "neurofibrosarcoma": 1, "soft tissue sarcoma": 1,
           "synovial sarcoma": 1}
#: Days of progression (or censoring) of the SD patients; the last is the paper's 344-day patient.
SD_TIMES = (85, 85, 141, 141, 197, 253, 344)
SD_CENSORED = 141
FIRST_ASSESSMENT = 29
#: Scans every 8 weeks after the first.
ASSESSMENT_INTERVAL = 56


def previous_assessment(day: float) -> float:
    """The last scheduled assessment before ``day`` (0 before the first): day 29, then every 56 days."""
    if day <= FIRST_ASSESSMENT:
        return 0.0
    return float(FIRST_ASSESSMENT + ASSESSMENT_INTERVAL * int(np.ceil((day - FIRST_ASSESSMENT) / ASSESSMENT_INTERVAL) - 1))


def simulate(doses: pd.Series) -> pd.DataFrame:
    """The efficacy table for patients 1..24 with ``doses`` (mg BID, indexed by ID)."""
    rng = np.random.default_rng(SEED)
    ids = doses.index.to_numpy()
    # The paper's 344-day patient: a 20 mg patient with fibrosarcoma.
    long_sd = int(rng.choice(ids[doses.to_numpy() == 20]))
    others = [i for i in ids if i != long_sd]
    tumours = [t for t, n in TUMOURS.items() for _ in range(n)]
    tumours.remove("fibrosarcoma")
    tumour = dict(zip(rng.permutation(others), tumours, strict=True))
    tumour[long_sd] = "fibrosarcoma"
    not_evaluable = set(rng.choice(others, size=4, replace=False).tolist())
    evaluable = [i for i in others if i not in not_evaluable]
    sd = rng.choice(evaluable, size=7, replace=False).tolist()
    outcomes = [(float(t), 1) for t in SD_TIMES[:-1]] + [(float(SD_CENSORED), 0)]
    sd_outcome = dict(zip(sd, [outcomes[k] for k in rng.permutation(len(outcomes))], strict=True))
    rows = []
    for i in ids:
        row = {"ID": int(i), "DOSE": float(doses[i]), "TUMOR_TYPE": tumour[i]}
        if i in not_evaluable:
            row.update(EVALUABLE=0, BEST_RESPONSE="NE", DC=np.nan, PFS_DAYS=np.nan, PFS_EVENT=np.nan)
        elif i == long_sd:
            row.update(EVALUABLE=1, BEST_RESPONSE="SD", DC=1, PFS_DAYS=SD_TIMES[-1], PFS_EVENT=1)
        elif i in sd_outcome:
            t, event = sd_outcome[i]
            row.update(EVALUABLE=1, BEST_RESPONSE="SD", DC=1, PFS_DAYS=t, PFS_EVENT=event)
        else:
            row.update(EVALUABLE=1, BEST_RESPONSE="PD", DC=0, PFS_DAYS=float(FIRST_ASSESSMENT), PFS_EVENT=1)
        rows.append(row)
    out = pd.DataFrame(rows)
    out["PFS_LO_DAYS"] = [previous_assessment(t) if e == 1 else np.nan for t, e in zip(out["PFS_DAYS"], out["PFS_EVENT"])]
    for c in ("DC", "PFS_EVENT"):
        out[c] = out[c].astype("Int64")
    return out


def main() -> None:
    here = Path(__file__).parent
    ae = pd.read_csv(here / "lxi15029_ae.csv").set_index("ID")
    simulate(ae["DOSE"]).to_csv(here / "lxi15029_efficacy.csv", index=False)


if __name__ == "__main__":
    main()
