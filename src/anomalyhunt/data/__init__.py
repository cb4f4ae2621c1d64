"""The data stage: events (embedded toy, LHCO R&D download or the user's file) -> features table.

Only the light modules are imported here; ``toy``, ``lhco`` and ``files`` (uproot) load on use.
"""

from anomalyhunt.data.features import LHCO_COLUMNS, compute_features, mjj

__all__ = ["LHCO_COLUMNS", "compute_features", "mjj"]
