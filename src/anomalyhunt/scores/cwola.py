"""CWoLa hunting (Collins, Howe, Nachman, PRL 121 (2018) 241803; PRD 99 (2019) 014038).

Classification Without Labels: a classifier trained to tell signal-region events (label 1) from
sideband events (label 0) using only the four jet features learns nothing from a smooth
background whose features barely depend on mjj, but picks up a localised resonance that is present
in the SR only. Its output P(SR | x) is the anomaly score. mjj itself is never an input, or the
classifier would simply learn the window boundaries.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from anomalyhunt.errors import AnomalyHuntError
from anomalyhunt.io import read_json, write_json
from anomalyhunt.regions import SIDEBAND, SIGNAL_REGION
from anomalyhunt.scores.base import Scorer, WindowData, register
from anomalyhunt.scores.classifiers import check_kind, is_network
from anomalyhunt.scores.decorrelate import LocationScale
from anomalyhunt.scores.ensemble import Ensemble
from anomalyhunt.scores.penalties import METHODS as PENALTIES
from anomalyhunt.scores.penalties import classifier_for

#: The values of ``scores.cwola.decorrelate``.
DECORRELATE: tuple[str, ...] = ("none", "location_scale", *PENALTIES)


@register
class CWoLa(Scorer):
    """SR-vs-SB classifier ensemble.

    The parameters are the config's ``scores.cwola`` block (its ``validation_fraction`` is read by
    the k-fold driver).

    Parameters
    ----------
    classifier : {"hgb", "mlp"}, default "hgb"
        The ensemble members' classifier.
    ensemble : int, default 3
        Members of the ensemble (:class:`~anomalyhunt.scores.ensemble.Ensemble`).
    decorrelate : {"none", "location_scale", "disco", "adversary"}, default "none"
        ``location_scale`` feeds the classifier features with their mjj-dependent median and
        inter-quartile range removed (:class:`~anomalyhunt.scores.decorrelate.LocationScale`).
        ``disco`` and ``adversary`` penalise the dependence of the output on mjj for the sideband
        events while the network trains (:mod:`~anomalyhunt.scores.penalties`); they need
        ``classifier="mlp"``.
    decorrelation_strength : float, default 10.0
        Weight of the ``disco`` or ``adversary`` penalty (unused otherwise).
    hgb, mlp : mapping, optional
        Keyword arguments of :class:`~anomalyhunt.scores.classifiers.HGBClassifier` and
        :class:`~anomalyhunt.scores.classifiers.MLPClassifier` (missing ones take their
        defaults); only the chosen classifier's is used.
    seed, device, threads
        As for :class:`~anomalyhunt.scores.base.Scorer`.
    """

    name = "cwola"
    requires_regions = (SIDEBAND, SIGNAL_REGION)
    MANIFEST = "scorer.json"

    @classmethod
    def uses_torch(cls, params: Mapping[str, Any]) -> bool:
        return is_network(params)

    def __init__(
        self,
        *,
        classifier: str = "hgb",
        ensemble: int = 3,
        decorrelate: str = "none",
        decorrelation_strength: float = 10.0,
        hgb: Mapping[str, Any] | None = None,
        mlp: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.classifier = check_kind(classifier, "scores.cwola.classifier")
        self.ensemble = int(ensemble)
        self.hgb, self.mlp = dict(hgb or {}), dict(mlp or {})
        self.decorrelate = decorrelate
        self.decorrelation_strength = float(decorrelation_strength)
        self.kind, self.params = classifier_for(
            self.classifier,
            getattr(self, self.classifier),
            self.decorrelate,
            self.decorrelation_strength,
            "scores.cwola",
            DECORRELATE,
        )
        self.model: Ensemble | None = None
        self.decorrelator: LocationScale | None = None

    def _inputs(self, data: WindowData) -> np.ndarray:
        if self.decorrelate in PENALTIES:  # mjj rides along for the penalty, never an input
            return np.column_stack([data.X, data.mjj])
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
        self.model = Ensemble(
            self.kind,
            self.params,
            self.ensemble,
            seed=self.seed,
            device=self.device,
            threads=self.threads,
        )
        self.model.fit(self._inputs(train), y, self._inputs(valid), y_val)
        return self

    def score(self, data: WindowData) -> np.ndarray:
        if self.model is None:
            raise RuntimeError("CWoLa: call fit() or load() first")
        return self.model.predict_proba(self._inputs(data))

    def save(self, path: str | os.PathLike) -> None:
        """A directory: the ensemble's member files plus this scorer's settings."""
        if self.model is None:
            raise RuntimeError("CWoLa: nothing to save before fit()")
        path = Path(path)
        self.model.save(path)
        write_json(
            {
                "name": self.name,
                "params": self.get_params(),
                "seed": self.seed,
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
        scorer = cls.from_config(meta["params"], seed=meta["seed"], device=device, threads=threads)
        scorer.model = Ensemble.load(path, device=device, threads=threads)
        if meta.get("decorrelator"):
            scorer.decorrelator = LocationScale.from_dict(meta["decorrelator"])
        return scorer
