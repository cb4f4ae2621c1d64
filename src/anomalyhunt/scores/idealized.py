"""The idealized anomaly detector: SR data vs a perfectly modelled background sample.

If the background in the signal region were known exactly, a classifier of SR data (label 1)
against an independent background sample of the same region (label 0) would learn the likelihood
ratio p_data / p_bkg = 1 + (S/B) p_sig / p_bkg, which is monotonic in the optimal anomaly score.
CWoLa and CATHODE approximate that background sample (sidebands, a sideband density model); the
idealized detector uses the simulator itself, so it is their upper bound. It needs simulation,
so it runs on toy data only (see :class:`~anomalyhunt.scores.simulation.Simulation`).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from anomalyhunt.errors import AnomalyHuntError
from anomalyhunt.regions import SIGNAL_REGION
from anomalyhunt.scores.base import WindowData, register
from anomalyhunt.scores.supervised import ReferenceScorer


@register
class Idealized(ReferenceScorer):
    """Training-fold SR data (label 1) vs simulated SR background (label 0), ensemble-averaged.

    The parameters are the config's ``scores.idealized`` block (its ``validation_fraction`` is
    read by the k-fold driver).

    Parameters
    ----------
    reference_factor : float, default 2.0
        The reference sample holds this many times as many events as the data it is trained
        against (training and validation separately, disjoint parts of one stream). The classes
        are weighted equally, so the factor only lowers the noise of the background side.

    Other Parameters
    ----------------
    classifier, ensemble, hgb, mlp, seed, device, threads
        As for :class:`~anomalyhunt.scores.supervised.ReferenceScorer`.
    """

    name = "idealized"
    requires_regions = (SIGNAL_REGION,)

    def __init__(self, *, reference_factor: float = 2.0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.reference_factor = float(reference_factor)
        if not self.reference_factor > 0:
            raise AnomalyHuntError(
                f"scores.idealized.reference_factor must be > 0, got {reference_factor}"
            )

    def fit(self, train: WindowData, valid: WindowData) -> Idealized:
        sim = self._need_simulation()
        factor = self.reference_factor
        d_tr, d_va = train.subset(train.in_sr), valid.subset(valid.in_sr)
        for what, d in (("training", d_tr), ("validation", d_va)):
            if len(d) == 0:
                raise AnomalyHuntError(f"idealized: the {what} data have no signal-region events")
        n_tr = max(int(round(factor * len(d_tr))), 1)
        n_va = max(int(round(factor * len(d_va))), 1)
        ref = sim.background(n_tr + n_va)
        X = self.inputs(
            np.concatenate([d_tr.X, ref.X[:n_tr]]), np.concatenate([d_tr.mjj, ref.mjj[:n_tr]])
        )
        y = np.r_[np.ones(len(d_tr)), np.zeros(n_tr)].astype(np.int64)
        X_val = self.inputs(
            np.concatenate([d_va.X, ref.X[n_tr:]]), np.concatenate([d_va.mjj, ref.mjj[n_tr:]])
        )
        y_val = np.r_[np.ones(len(d_va)), np.zeros(n_va)].astype(np.int64)
        self.model = self._new_ensemble(self.seed)
        self.model.fit(X, y, X_val, y_val)
        return self
