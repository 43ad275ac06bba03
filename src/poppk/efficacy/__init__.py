"""Exposure-efficacy: time to event (PFS) and response (disease control) against posterior exposure.

* :func:`fit_survival`: Bayesian parametric survival (exponential, Weibull, log-logistic) with each
  patient's exposure taken from the PK posterior; the hazard (or time) ratio per doubling of exposure.
* :func:`kaplan_meier`, :func:`logrank`, :func:`median_with_ci` (lifelines) and :func:`survival_vpc`.
* :func:`benefit_risk`: candidate regimens scored on P(target), P(toxicity), P(response) and median time
  to event, with a :class:`Utility` the user states.
* :func:`detection_power`: how often a trial of that design would detect an effect of a given size.
* Binary and ordinal responses (disease control, best response) use the same machinery as toxicity:
  :func:`poppk.tox.fit_exposure_response` with the response column (0/1, or ordered grades) and
  ``subset=True`` for responses assessed in evaluable patients only.
"""

from ._benefit_risk import TERMS as TERMS
from ._benefit_risk import BenefitRisk as BenefitRisk
from ._benefit_risk import Utility as Utility
from ._benefit_risk import benefit_risk as benefit_risk
from ._km import kaplan_meier as kaplan_meier
from ._km import logrank as logrank
from ._km import median_with_ci as median_with_ci
from ._km import survival_vpc as survival_vpc
from ._power import detection_power as detection_power
from ._survival import MODELS as MODELS
from ._survival import SurvivalResult as SurvivalResult
from ._survival import assessed as assessed
from ._survival import event_table as event_table
from ._survival import fit_survival as fit_survival
from ._survival import log_interval_likelihood as log_interval_likelihood
from ._survival import log_likelihood as log_likelihood
from ._survival import record_log_likelihood as record_log_likelihood
from ._survival import sample_survival_model as sample_survival_model
from ._survival import schedule_of as schedule_of
from ._survival import simulate_times as simulate_times

__all__ = ["MODELS", "TERMS", "BenefitRisk", "SurvivalResult", "Utility", "assessed", "benefit_risk", "detection_power",
           "event_table", "fit_survival", "kaplan_meier", "log_interval_likelihood", "log_likelihood", "logrank",
           "median_with_ci", "record_log_likelihood", "sample_survival_model", "schedule_of", "simulate_times",
           "survival_vpc"]
