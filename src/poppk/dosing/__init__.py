"""PK-guided dose individualisation: one patient's posterior, candidate regimens, the virtual trial."""

from ._posterior import PatientPosterior, patient_posterior
from ._recommend import DoseRecommendation, candidate_regimens, choose, evaluate_regimens, recommend_dose, virtual_trial

__all__ = ["DoseRecommendation", "PatientPosterior", "candidate_regimens", "choose", "evaluate_regimens",
           "patient_posterior", "recommend_dose", "virtual_trial"]
