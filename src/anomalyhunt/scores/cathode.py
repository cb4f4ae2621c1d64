"""CATHODE (Hallin et al., PRD 106 (2022) 055006, arXiv:2109.00546).

Classifying anomalies through outer density estimation: a conditional flow p_bkg(x | m) trained on
the sidebands is sampled in the signal region, at mjj values drawn from a kernel density estimate
of the SR mjj distribution, to make a synthetic background sample (``oversampling`` times the SR
size). A classifier trained to tell the SR data (label 1) from these samples (label 0) approaches
the likelihood ratio p_data / p_bkg in the SR, like an idealized CWoLa, and its output is the
score. Because the samples follow the interpolated mjj dependence of the background, features
correlated with mjj do not fake a signal, unlike in CWoLa hunting.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from anomalyhunt.config import derive_seed
from anomalyhunt.errors import AnomalyHuntError
from anomalyhunt.io import read_json, write_json
from anomalyhunt.regions import SIDEBAND, SIGNAL_REGION
from anomalyhunt.scores.anode import region_part
from anomalyhunt.scores.base import Scorer, WindowData, register
from anomalyhunt.scores.classifiers import check_kind
from anomalyhunt.scores.ensemble import Ensemble
from anomalyhunt.scores.flows import ConditionalFlow, Preprocessor


def sample_mjj(values: np.ndarray, n: int, seed: int) -> np.ndarray:
    """``n`` mjj values from a Gaussian KDE of ``values``, kept inside their observed range.

    The range cut (by rejection) stops the KDE tails from leaking out of the signal region.
    """
    from scipy.stats import gaussian_kde

    values = np.asarray(values, dtype=np.float64)
    if len(values) < 2 or np.ptp(values) <= 0:
        raise AnomalyHuntError("CATHODE: too few distinct SR mjj values for a density estimate")
    kde = gaussian_kde(values)
    rng = np.random.default_rng(seed)
    lo, hi = values.min(), values.max()
    out: list[np.ndarray] = []
    have = 0
    while have < n:
        draw = kde.resample(int(1.2 * (n - have)) + 16, seed=rng)[0]
        draw = draw[(draw >= lo) & (draw <= hi)]
        out.append(draw)
        have += len(draw)
    return np.concatenate(out)[:n]


@register
class CATHODE(Scorer):
    """Classifier of SR data vs sideband-flow samples interpolated into the SR.

    The parameters are the config's ``scores.cathode`` block (its ``validation_fraction`` is read
    by the k-fold driver).

    Parameters
    ----------
    flow : mapping, optional
        Keyword arguments of the sideband flow (:class:`~anomalyhunt.scores.flows.ConditionalFlow`;
        missing ones take its defaults).
    oversampling : float, default 4.0
        Flow samples per SR event (training and validation alike).
    classifier : {"hgb", "mlp"}, default "hgb"
        The ensemble members' classifier.
    ensemble : int, default 3
        Members of the classifier ensemble.
    hgb, mlp : mapping, optional
        Keyword arguments of the two classifiers; only the chosen one's is used.
    seed, device, threads
        As for :class:`~anomalyhunt.scores.base.Scorer`.
    """

    name = "cathode"
    requires_regions = (SIDEBAND, SIGNAL_REGION)
    MANIFEST = "scorer.json"
    FLOW_FILE = "flow_bkg.pt"

    def __init__(
        self,
        *,
        flow: Mapping[str, Any] | None = None,
        oversampling: float = 4.0,
        classifier: str = "hgb",
        ensemble: int = 3,
        hgb: Mapping[str, Any] | None = None,
        mlp: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.flow = dict(flow or {})
        self.oversampling = float(oversampling)
        if not self.oversampling > 0:
            raise AnomalyHuntError(
                f"scores.cathode.oversampling must be > 0, got {self.oversampling}"
            )
        self.classifier = check_kind(classifier, "scores.cathode.classifier")
        self.ensemble = int(ensemble)
        self.hgb, self.mlp = dict(hgb or {}), dict(mlp or {})
        self.flow_model: ConditionalFlow | None = None
        self.model: Ensemble | None = None

    def _background(self, sr_mjj_ref: np.ndarray, n_sr: int, label: str) -> np.ndarray:
        """Synthetic SR background: flow samples at KDE-drawn mjj values."""
        n = max(1, int(round(self.oversampling * n_sr)))
        m = sample_mjj(sr_mjj_ref, n, derive_seed(self.seed, "kde", label))
        return self.flow_model.sample(m, seed=derive_seed(self.seed, "sample", label))

    def fit(self, train: WindowData, valid: WindowData) -> CATHODE:
        if not (train.region > 0).all() or not (valid.region > 0).all():
            raise AnomalyHuntError("CATHODE data contain events outside the window")
        sb, sb_val = (
            region_part(d, SIDEBAND, "CATHODE", w)
            for d, w in ((train, "training"), (valid, "validation"))
        )
        sr, sr_val = (
            region_part(d, SIGNAL_REGION, "CATHODE", w)
            for d, w in ((train, "training"), (valid, "validation"))
        )
        flow = ConditionalFlow.from_config(
            self.flow,
            seed=derive_seed(self.seed, "flow", "bkg"),
            device=self.device,
            threads=self.threads,
        )
        # ranges from all training events, so samples can reach wherever SR data lie
        pre = Preprocessor(flow.margin).fit(train.X, train.mjj)
        self.flow_model = flow.fit(sb.X, sb.mjj, sb_val.X, sb_val.mjj, preprocessor=pre)
        bkg = self._background(sr.mjj, len(sr), "train")
        bkg_val = self._background(sr.mjj, len(sr_val), "valid")
        X = np.concatenate([sr.X, bkg.astype(np.float32)])
        y = np.r_[np.ones(len(sr)), np.zeros(len(bkg))].astype(np.int64)
        X_val = np.concatenate([sr_val.X, bkg_val.astype(np.float32)])
        y_val = np.r_[np.ones(len(sr_val)), np.zeros(len(bkg_val))].astype(np.int64)
        self.model = Ensemble(
            self.classifier,
            getattr(self, self.classifier),
            self.ensemble,
            seed=derive_seed(self.seed, "classifier"),
            device=self.device,
            threads=self.threads,
        )
        # the classifiers weight both classes equally, so oversampling only adds statistics
        self.model.fit(X, y, X_val, y_val)
        return self

    def background_template(self, mjj: np.ndarray, seed: int) -> np.ndarray:
        if self.flow_model is None:
            raise RuntimeError("CATHODE: call fit() or load() first")
        return self.flow_model.sample(mjj, seed=seed)

    def score(self, data: WindowData) -> np.ndarray:
        if self.model is None:
            raise RuntimeError("CATHODE: call fit() or load() first")
        return self.model.predict_proba(data.X)

    def save(self, path: str | os.PathLike) -> None:
        """A directory: the sideband flow, the classifier ensemble and this scorer's settings."""
        if self.model is None or self.flow_model is None:
            raise RuntimeError("CATHODE: nothing to save before fit()")
        path = Path(path)
        self.model.save(path)
        self.flow_model.save(path / self.FLOW_FILE)
        write_json(
            {"name": self.name, "params": self.get_params(), "seed": self.seed},
            path / self.MANIFEST,
        )

    @classmethod
    def load(cls, path: str | os.PathLike, *, device: str = "cpu", threads: int = 1) -> CATHODE:
        path = Path(path)
        meta = read_json(path / cls.MANIFEST)
        if meta.get("name") != cls.name:
            raise AnomalyHuntError(f"{path}: holds a '{meta.get('name')}' model, not '{cls.name}'")
        scorer = cls.from_config(meta["params"], seed=meta["seed"], device=device, threads=threads)
        scorer.model = Ensemble.load(path, device=device, threads=threads)
        scorer.flow_model = ConditionalFlow.load(
            path / cls.FLOW_FILE, device=device, threads=threads
        )
        return scorer
