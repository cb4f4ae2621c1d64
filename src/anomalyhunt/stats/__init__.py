"""Statistics of the bump hunt: sideband fits, pyhf significance and limits, look-elsewhere."""

from anomalyhunt.stats.fit import SQRT_S, SidebandFit, dijet, fit_sidebands, fit_sidebands_batch
from anomalyhunt.stats.model import build_model, observations
from anomalyhunt.stats.significance import discovery, upper_limit, z_fast
from anomalyhunt.stats.trials import (
    global_significance,
    gross_vitells,
    gross_vitells_multi,
    toy_scans,
)

__all__ = [
    "SQRT_S",
    "SidebandFit",
    "build_model",
    "dijet",
    "discovery",
    "fit_sidebands",
    "fit_sidebands_batch",
    "global_significance",
    "gross_vitells",
    "gross_vitells_multi",
    "observations",
    "toy_scans",
    "upper_limit",
    "z_fast",
]
