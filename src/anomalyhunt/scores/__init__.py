"""Anomaly scores: a registry of methods behind one Scorer interface, scored out of fold.

Importing this package imports every module in it, which registers each ``@register``-ed
Scorer, so ``get_scorer('cwola')`` works. A new method is one module here plus its block under
``scores:`` in the config schema; nothing else lists it.
"""

import importlib
import pkgutil

from anomalyhunt.scores.base import (
    Scorer,
    WindowData,
    available,
    get_scorer,
    register,
    resolve_device,
)
from anomalyhunt.scores.kfold import SCORE_COLUMNS, empty_scores, score_out_of_fold

for _module in pkgutil.iter_modules(__path__):
    if not _module.name.startswith("_"):
        importlib.import_module(f"{__name__}.{_module.name}")

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
