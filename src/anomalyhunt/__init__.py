"""anomalyhunt: a model-agnostic resonance search in dijet mjj with machine-learned anomaly scores."""

__version__ = "0.1.0"

#: The four per-event features the anomaly scores see (never mjj itself).
FEATURES: tuple[str, ...] = ("mj_light", "delta_mj", "tau21_light", "tau21_heavy")
#: Columns of every features table: mjj (TeV), the four features, and the truth label (-1 unknown).
FEATURE_COLUMNS: tuple[str, ...] = ("mjj", *FEATURES, "label")
