"""Statistics of the bump hunt: background functions and their fits, pyhf tests, look-elsewhere."""

from anomalyhunt.stats.batch import BatchFit, fit_batch
from anomalyhunt.stats.fit import FunctionFit, fit_function, max_free_parameters
from anomalyhunt.stats.functions import FUNCTIONS, SQRT_S, bin_masks, get_function, sr_groups
from anomalyhunt.stats.model import build_model, eigen_variations, observations
from anomalyhunt.stats.select import fit_family, select_function
from anomalyhunt.stats.significance import discovery, upper_limit, z_fast
from anomalyhunt.stats.trials import (
    global_significance,
    gross_vitells,
    gross_vitells_multi,
    toy_scans,
)

__all__ = [
    "FUNCTIONS",
    "SQRT_S",
    "BatchFit",
    "FunctionFit",
    "bin_masks",
    "build_model",
    "discovery",
    "eigen_variations",
    "fit_batch",
    "fit_family",
    "fit_function",
    "get_function",
    "global_significance",
    "gross_vitells",
    "gross_vitells_multi",
    "max_free_parameters",
    "observations",
    "select_function",
    "sr_groups",
    "toy_scans",
    "upper_limit",
    "z_fast",
]
