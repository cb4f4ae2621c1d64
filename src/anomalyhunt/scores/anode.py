"""ANODE (Nachman & Shih, PRD 101 (2020) 075042, arXiv:2001.04990).

Anomaly detection with density estimation: a conditional flow p_bkg(x | m) trained on the
sidebands is interpolated into the signal region, a second flow p_data(x | m) is trained on the
signal-region events themselves, and the score is the log density ratio
log p_data(x | m) - log p_bkg(x | m), evaluated at each event's own mjj. Where the SR holds a
localised excess the data density exceeds the interpolated background density.

Both flows share one feature preprocessing (fitted on all training events of the window), so the
ratio does not depend on it even for events clipped at the edge of the range.
"""

from __future__ import annotations

import os
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

    Params are the config's ``scores.anode`` block: ``flow`` (the settings of both flows, see
    :class:`~anomalyhunt.scores.flows.ConditionalFlow`); ``validation_fraction`` is read by the
    k-fold driver.
    """

    name = "anode"
    requires_regions = (SIDEBAND, SIGNAL_REGION)
    MANIFEST = "scorer.json"
    FILES = {"bkg": "flow_bkg.pt", "data": "flow_data.pt"}

    def __init__(
        self, params: dict[str, Any], *, seed: int, device: str = "cpu", threads: int = 1
    ) -> None:
        super().__init__(params, seed=seed, device=device, threads=threads)
        self.flow_params = dict(self.params.get("flow", {}))
        self.flows: dict[str, ConditionalFlow] = {}

    def _flow(self, which: str) -> ConditionalFlow:
        return ConditionalFlow(
            self.flow_params,
            seed=derive_seed(self.seed, "flow", which),
            device=self.device,
            threads=self.threads,
        )

    def fit(self, train: WindowData, valid: WindowData) -> ANODE:
        if not (train.region > 0).all() or not (valid.region > 0).all():
            raise AnomalyHuntError("ANODE data contain events outside the window")
        margin = self.flow_params.get("margin", ConditionalFlow.DEFAULTS["margin"])
        pre = Preprocessor(margin).fit(train.X, train.mjj)
        self.flows = {}
        for which, region in (("bkg", SIDEBAND), ("data", SIGNAL_REGION)):
            tr = region_part(train, region, "ANODE", "training")
            va = region_part(valid, region, "ANODE", "validation")
            self.flows[which] = self._flow(which).fit(tr.X, tr.mjj, va.X, va.mjj, preprocessor=pre)
        return self

    def score(self, data: WindowData) -> np.ndarray:
        if not self.flows:
            raise RuntimeError("ANODE: call fit() or load() first")
        ratio = self.flows["data"].log_prob(data.X, data.mjj) - self.flows["bkg"].log_prob(
            data.X, data.mjj
        )
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
            {"name": self.name, "params": self.params, "seed": self.seed}, path / self.MANIFEST
        )

    @classmethod
    def load(cls, path: str | os.PathLike, *, device: str = "cpu", threads: int = 1) -> ANODE:
        path = Path(path)
        meta = read_json(path / cls.MANIFEST)
        if meta.get("name") != cls.name:
            raise AnomalyHuntError(f"{path}: holds a '{meta.get('name')}' model, not '{cls.name}'")
        scorer = cls(meta["params"], seed=meta["seed"], device=device, threads=threads)
        scorer.flows = {
            which: ConditionalFlow.load(path / name, device=device, threads=threads)
            for which, name in cls.FILES.items()
        }
        return scorer
