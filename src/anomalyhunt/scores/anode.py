"""ANODE (Nachman & Shih, PRD 101 (2020) 075042, arXiv:2001.04990).

Anomaly detection with density estimation: a conditional flow p_bkg(x | m) trained on the
sidebands is interpolated into the signal region, a second flow p_data(x | m) is trained on the
signal-region events themselves, and the score is their log density ratio. Where the SR holds a
localised excess the data density exceeds the interpolated background density.

The paper evaluates the ratio at each event's own mjj (``mjj_evaluation: own``). That is fine for
SR events, but a bump hunt also cuts on the score in the sidebands, and there the SR flow is
extrapolated outside the mjj range it was trained on: its density drifts with mjj, the cut keeps
sideband events at a rate unlike the SR's, and the sideband fit is sculpted (a background-only
search found Z_local 7.9 that way). By default (``sr_marginal``) both densities are therefore
averaged over the SR's mjj distribution (at its quantiles) before the ratio is taken,
p(x | SR) = mean_k p(x | m_k), so the score is one function of the features alone, the same
for every event of the window, like CATHODE's classifier.

Both flows share one feature preprocessing (fitted on all training events of the window), so the
ratio does not depend on it even for events clipped at the edge of the range.
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
from anomalyhunt.scores.base import Scorer, WindowData, register
from anomalyhunt.scores.flows import ConditionalFlow, Preprocessor

#: Scores are clipped to +-this: beyond it a log ratio means nothing and inf/NaN would break cuts.
LOG_RATIO_CLIP = 1000.0
#: SR mjj quantiles at which ``sr_marginal`` evaluates both flows (an average over the SR).
MJJ_QUANTILES = (0.1, 0.3, 0.5, 0.7, 0.9)
MJJ_EVALUATIONS = ("sr_marginal", "own")


def region_part(data: WindowData, region: int, method: str, what: str) -> WindowData:
    """The events of one region, or a clear error when there are none."""
    sel = data.region == region
    if not sel.any():
        label = {SIDEBAND: "sideband", SIGNAL_REGION: "signal-region"}[region]
        raise AnomalyHuntError(f"{method} {what} data have no {label} events")
    return data.subset(sel)


@register
class ANODE(Scorer):
    """Log density ratio of an SR data flow to a sideband background flow.

    The parameters are the config's ``scores.anode`` block (its ``validation_fraction`` is read
    by the k-fold driver).

    Parameters
    ----------
    flow : mapping, optional
        Keyword arguments of both flows (:class:`~anomalyhunt.scores.flows.ConditionalFlow`;
        missing ones take its defaults).
    mjj_evaluation : {"sr_marginal", "own"}, default "sr_marginal"
        Where the densities are evaluated: averaged over the SR mjj distribution, or at each
        event's own mjj as in the paper (module docstring).
    seed, device, threads
        As for :class:`~anomalyhunt.scores.base.Scorer`.
    """

    name = "anode"
    requires_regions = (SIDEBAND, SIGNAL_REGION)
    MANIFEST = "scorer.json"
    FILES = {"bkg": "flow_bkg.pt", "data": "flow_data.pt"}

    def __init__(
        self,
        *,
        flow: Mapping[str, Any] | None = None,
        mjj_evaluation: str = "sr_marginal",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.flow = dict(flow or {})
        self.mjj_evaluation = mjj_evaluation
        if self.mjj_evaluation not in MJJ_EVALUATIONS:
            raise AnomalyHuntError(
                f"ANODE: mjj_evaluation '{self.mjj_evaluation}' is not one of {MJJ_EVALUATIONS}"
            )
        self.flows: dict[str, ConditionalFlow] = {}
        self.mjj_points: np.ndarray | None = None

    def _flow(self, which: str) -> ConditionalFlow:
        return ConditionalFlow.from_config(
            self.flow,
            seed=derive_seed(self.seed, "flow", which),
            device=self.device,
            threads=self.threads,
        )

    def fit(self, train: WindowData, valid: WindowData) -> ANODE:
        if not (train.region > 0).all() or not (valid.region > 0).all():
            raise AnomalyHuntError("ANODE data contain events outside the window")
        flows = {which: self._flow(which) for which in ("bkg", "data")}
        pre = Preprocessor(flows["bkg"].margin).fit(train.X, train.mjj)
        self.flows = {}
        for which, region in (("bkg", SIDEBAND), ("data", SIGNAL_REGION)):
            tr = region_part(train, region, "ANODE", "training")
            va = region_part(valid, region, "ANODE", "validation")
            self.flows[which] = flows[which].fit(tr.X, tr.mjj, va.X, va.mjj, preprocessor=pre)
            if region == SIGNAL_REGION:
                self.mjj_points = np.quantile(tr.mjj, MJJ_QUANTILES)
        return self

    def _log_density(self, which: str, data: WindowData) -> np.ndarray:
        flow = self.flows[which]
        if self.mjj_evaluation == "own":
            return flow.log_prob(data.X, data.mjj)
        from scipy.special import logsumexp

        logs = [flow.log_prob(data.X, np.full(len(data), m)) for m in self.mjj_points]
        return logsumexp(np.stack(logs), axis=0) - np.log(len(logs))

    def background_template(self, mjj: np.ndarray, seed: int) -> np.ndarray:
        if not self.flows:
            raise RuntimeError("ANODE: call fit() or load() first")
        return self.flows["bkg"].sample(mjj, seed=seed)

    def score(self, data: WindowData) -> np.ndarray:
        if not self.flows:
            raise RuntimeError("ANODE: call fit() or load() first")
        ratio = self._log_density("data", data) - self._log_density("bkg", data)
        ratio = np.nan_to_num(ratio, nan=0.0, posinf=LOG_RATIO_CLIP, neginf=-LOG_RATIO_CLIP)
        return np.clip(ratio, -LOG_RATIO_CLIP, LOG_RATIO_CLIP)

    def save(self, path: str | os.PathLike) -> None:
        """A directory: the two flows plus this scorer's settings (written last)."""
        if not self.flows:
            raise RuntimeError("ANODE: nothing to save before fit()")
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        for which, name in self.FILES.items():
            self.flows[which].save(path / name)
        write_json(
            {
                "name": self.name,
                "params": self.get_params(),
                "seed": self.seed,
                "mjj_points": [float(m) for m in self.mjj_points],
            },
            path / self.MANIFEST,
        )

    @classmethod
    def load(cls, path: str | os.PathLike, *, device: str = "cpu", threads: int = 1) -> ANODE:
        path = Path(path)
        meta = read_json(path / cls.MANIFEST)
        if meta.get("name") != cls.name:
            raise AnomalyHuntError(f"{path}: holds a '{meta.get('name')}' model, not '{cls.name}'")
        scorer = cls.from_config(meta["params"], seed=meta["seed"], device=device, threads=threads)
        scorer.flows = {
            which: ConditionalFlow.load(path / name, device=device, threads=threads)
            for which, name in cls.FILES.items()
        }
        scorer.mjj_points = np.asarray(meta["mjj_points"], dtype=np.float64)
        return scorer
