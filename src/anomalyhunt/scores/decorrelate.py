"""Remove each feature's mjj dependence before an SR-vs-SB classifier sees it.

Jet masses grow with the jets' pT, so a classifier of signal-region against sideband events learns
mjj from them: its background efficiency rises towards the SR centre, a smooth hump that a tight
cut turns into a bump of the same width as a broad signal (and that no sideband fit can tell from
one). The remedy is the one of designed-decorrelated taggers (DDT): measure each feature's median
and inter-quartile range as a smooth function of mjj, and replace the feature by its distance from
the median in units of that range. Tails and their order are kept, so an event that is anomalous
at its own mjj stays anomalous; the first two moments no longer carry mjj.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from anomalyhunt.errors import AnomalyHuntError

#: Equal-count mjj slices in which the medians and ranges are measured.
N_SLICES = 8


def _interp(x: np.ndarray, xp: np.ndarray, fp: np.ndarray) -> np.ndarray:
    """Piecewise-linear through (xp, fp), continued linearly beyond the end points.

    The outer half-slices (an eighth of the events each) lie beyond the first and last slice
    centres; holding the value constant there would leave their mjj dependence in.
    """
    y = np.interp(x, xp, fp)
    if xp.size < 2:
        return y
    lo, hi = x < xp[0], x > xp[-1]
    y[lo] = fp[0] + (x[lo] - xp[0]) * (fp[1] - fp[0]) / (xp[1] - xp[0])
    y[hi] = fp[-1] + (x[hi] - xp[-1]) * (fp[-1] - fp[-2]) / (xp[-1] - xp[-2])
    return y


class LocationScale:
    """Per-feature median and inter-quartile range, linear in ln mjj between slice centres."""

    def __init__(self, n_slices: int = N_SLICES) -> None:
        self.n_slices = n_slices
        self.centres: np.ndarray | None = None
        self.median: np.ndarray | None = None
        self.iqr: np.ndarray | None = None

    def fit(self, X: np.ndarray, mjj: np.ndarray) -> LocationScale:
        X = np.asarray(X, dtype=np.float64)
        lm = np.log(np.asarray(mjj, dtype=np.float64))
        if len(X) < 10 * self.n_slices:
            raise AnomalyHuntError(
                f"mjj decorrelation needs at least {10 * self.n_slices} events, got {len(X)}"
            )
        order = np.argsort(lm, kind="stable")
        parts = np.array_split(order, self.n_slices)
        self.centres = np.array([np.median(lm[p]) for p in parts])
        q = np.stack([np.quantile(X[p], [0.25, 0.5, 0.75], axis=0) for p in parts])  # (S, 3, F)
        self.median = q[:, 1, :]
        self.iqr = np.maximum(q[:, 2, :] - q[:, 0, :], 1e-12)
        return self

    def transform(self, X: np.ndarray, mjj: np.ndarray) -> np.ndarray:
        if self.centres is None:
            raise RuntimeError("LocationScale: call fit() first")
        lm = np.log(np.asarray(mjj, dtype=np.float64))
        X = np.asarray(X, dtype=np.float64)
        out = np.empty_like(X)
        for j in range(X.shape[1]):
            med = _interp(lm, self.centres, self.median[:, j])
            iqr = np.maximum(_interp(lm, self.centres, self.iqr[:, j]), 1e-12)
            out[:, j] = (X[:, j] - med) / iqr
        return out.astype(np.float32)

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": "location_scale",
            "centres": self.centres.tolist(),
            "median": self.median.tolist(),
            "iqr": self.iqr.tolist(),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> LocationScale:
        obj = cls(n_slices=len(d["centres"]))
        obj.centres = np.asarray(d["centres"], dtype=np.float64)
        obj.median = np.asarray(d["median"], dtype=np.float64)
        obj.iqr = np.asarray(d["iqr"], dtype=np.float64)
        return obj
