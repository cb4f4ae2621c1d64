"""CWoLa hunting (Collins, Howe, Nachman, PRL 121 (2018) 241803; PRD 99 (2019) 014038).

Classification Without Labels: a classifier trained to tell signal-region events (label 1) from
sideband events (label 0) using only the four jet features learns nothing from a smooth
background whose features barely depend on mjj, but picks up a localised resonance that is present
in the SR only. Its output P(SR | x) is the anomaly score. mjj itself is never an input, or the
classifier would simply learn the window boundaries.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from anomalyhunt.errors import AnomalyHuntError
from anomalyhunt.io import read_json, write_json
from anomalyhunt.regions import SIDEBAND, SIGNAL_REGION
from anomalyhunt.scores.base import Scorer, WindowData, register
from anomalyhunt.scores.classifiers import CLASSIFIERS, Ensemble
from anomalyhunt.scores.decorrelate import LocationScale


@register
class CWoLa(Scorer):
    """SR-vs-SB classifier ensemble; params are the config's ``scores.cwola`` block.

    Keys: ``classifier`` ('hgb' or 'mlp'), ``ensemble`` (members), and the chosen classifier's own
    block (``hgb`` or ``mlp``). ``validation_fraction`` is read by the k-fold driver.
    """

    name = "cwola"
    requires_regions = (SIDEBAND, SIGNAL_REGION)
    MANIFEST = "scorer.json"

    def __init__(
        self, params: dict[str, Any], *, seed: int, device: str = "cpu", threads: int = 1
    ) -> None:
        super().__init__(params, seed=seed, device=device, threads=threads)
        self.classifier = self.params.get("classifier", "hgb")
        if self.classifier not in CLASSIFIERS:
            raise AnomalyHuntError(
                f"scores.cwola.classifier '{self.classifier}' unknown; use one of {sorted(CLASSIFIERS)}"
            )
        self.n_members = int(self.params.get("ensemble", 3))
        self.decorrelate = self.params.get("decorrelate", "none")
        if self.decorrelate not in ("none", "location_scale"):
            raise AnomalyHuntError(
                f"scores.cwola.decorrelate '{self.decorrelate}' unknown; use none or location_scale"
            )
        self.ensemble: Ensemble | None = None
        self.decorrelator: LocationScale | None = None

    def _inputs(self, data: WindowData) -> np.ndarray:
        if self.decorrelator is None:
            return data.X
        return self.decorrelator.transform(data.X, data.mjj)

    @staticmethod
    def _labels(data: WindowData, what: str) -> np.ndarray:
        inside = data.region > 0
        if not inside.all():
            raise AnomalyHuntError(f"CWoLa {what} data contain events outside the window")
        y = (data.region == SIGNAL_REGION).astype(np.int64)
        for region, label in ((SIGNAL_REGION, "signal-region"), (SIDEBAND, "sideband")):
            if not (data.region == region).any():
                raise AnomalyHuntError(f"CWoLa {what} data have no {label} events")
        return y

    def fit(self, train: WindowData, valid: WindowData) -> CWoLa:
        y = self._labels(train, "training")
        y_val = self._labels(valid, "validation")
        if self.decorrelate == "location_scale":
            self.decorrelator = LocationScale().fit(train.X, train.mjj)
        self.ensemble = Ensemble(
            self.classifier,
            self.params.get(self.classifier, {}),
            self.n_members,
            seed=self.seed,
            device=self.device,
            threads=self.threads,
        )
        self.ensemble.fit(self._inputs(train), y, self._inputs(valid), y_val)
        return self

    def score(self, data: WindowData) -> np.ndarray:
        if self.ensemble is None:
            raise RuntimeError("CWoLa: call fit() or load() first")
        return self.ensemble.predict_proba(self._inputs(data))

    def save(self, path: str | os.PathLike) -> None:
        """A directory: the ensemble's member files plus this scorer's settings."""
        if self.ensemble is None:
            raise RuntimeError("CWoLa: nothing to save before fit()")
        path = Path(path)
        self.ensemble.save(path)
        write_json(
            {
                "name": self.name, "params": self.params, "seed": self.seed,
                "decorrelator": None if self.decorrelator is None else self.decorrelator.to_dict(),
            },
            path / self.MANIFEST,
        )

    @classmethod
    def load(cls, path: str | os.PathLike, *, device: str = "cpu", threads: int = 1) -> CWoLa:
        path = Path(path)
        meta = read_json(path / cls.MANIFEST)
        if meta.get("name") != cls.name:
            raise AnomalyHuntError(f"{path}: holds a '{meta.get('name')}' model, not '{cls.name}'")
        scorer = cls(meta["params"], seed=meta["seed"], device=device, threads=threads)
        scorer.ensemble = Ensemble.load(path, device=device, threads=threads)
        if meta.get("decorrelator"):
            scorer.decorrelator = LocationScale.from_dict(meta["decorrelator"])
        return scorer
