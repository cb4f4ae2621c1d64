"""Anomaly scores: a registry of methods behind one Scorer interface, scored out of fold.

Importing this package registers every method module below, so ``get_scorer('cwola')`` works.
A new method is one module here with an ``@register``-ed Scorer, imported in this file, plus its
block under ``scores:`` in the config schema.
"""

from anomalyhunt.scores import (  # noqa: F401  (importing a method module registers it)
    anode,
    autoencoder,
    cathode,
    cwola,
    idealized,
    supervised,
)
from anomalyhunt.scores.base import (
    Scorer,
    WindowData,
    available,
    get_scorer,
    register,
    resolve_device,
)
from anomalyhunt.scores.kfold import SCORE_COLUMNS, empty_scores, score_out_of_fold

__all__ = [
    "SCORE_COLUMNS",
    "Scorer",
    "WindowData",
    "available",
    "empty_scores",
    "get_scorer",
    "register",
    "resolve_device",
    "score_out_of_fold",
]
