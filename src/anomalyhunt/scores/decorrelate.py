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
from scipy.special import ndtri

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
                f"mjj decorrelation needs at least {10 * self.n_slices} events, got {len(X)}")
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
        return {"kind": "location_scale", "centres": self.centres.tolist(),
                "median": self.median.tolist(), "iqr": self.iqr.tolist()}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> LocationScale:
        obj = cls(n_slices=len(d["centres"]))
        obj.centres = np.asarray(d["centres"], dtype=np.float64)
        obj.median = np.asarray(d["median"], dtype=np.float64)
        obj.iqr = np.asarray(d["iqr"], dtype=np.float64)
        return obj


#: Probabilities at which the conditional quantile functions are tabulated: dense in the tails,
#: where a tight cut looks.
_PROBS = np.unique(np.concatenate([
    1.0 / (1.0 + np.exp(-np.linspace(-9.0, 9.0, 121))), np.linspace(0.02, 0.98, 49)]))
_GAUSS = ndtri(_PROBS)
#: Events per sideband slice below which the tails of a slice's quantiles are pure noise.
MIN_PER_SLICE = 500


class ConditionalQuantile:
    """Each feature replaced by its quantile at the event's own mjj, learnt from the sidebands only.

    Location and scale leave the tails' mjj dependence in (a jet mass tail grows faster with mjj
    than its median), and a cut at 0.1% looks at nothing but tails. Here each feature is first
    mapped to its normal score over all sideband events (so every tail is of Gaussian size), then
    that score's quantile function is tabulated in equal-count mjj slices of the sidebands and
    interpolated linearly in ln mjj between slice centres: across the SR from the two slices beside
    it, so the SR is never measured and a signal in it cannot decorrelate itself away. An event's
    feature becomes Phi^-1(F(x | mjj)); background features then carry no mjj in any quantile.
    (Quadratic fits of the quantiles in ln mjj were tried and left 2-20 times more tail dependence.)
    """

    def __init__(self, n_slices: int = 16) -> None:
        self.n_slices = n_slices
        self.marginal: np.ndarray | None = None  # (P, F): quantile values over all sidebands
        self.centres: np.ndarray | None = None  # (S,): ln mjj of the slices
        self.table: np.ndarray | None = None  # (S, P, F): normal-score quantiles per slice

    def _normal_score(self, X: np.ndarray) -> np.ndarray:
        z = np.empty_like(X)
        g = _GAUSS
        for j in range(X.shape[1]):
            q = self.marginal[:, j]
            z[:, j] = np.interp(X[:, j], q, g)
            # beyond the sidebands' range: continue the outermost slope, so extremes stay ordered
            for end, (k0, k1), sel in ((0, (0, 1), X[:, j] < q[0]), (-1, (-2, -1), X[:, j] > q[-1])):
                slope = (g[k1] - g[k0]) / max(q[k1] - q[k0], 1e-12)
                z[sel, j] = g[end] + slope * (X[sel, j] - q[end])
        return z

    def fit(self, X: np.ndarray, mjj: np.ndarray) -> ConditionalQuantile:
        """``X``, ``mjj``: sideband events (the SR must not be among them)."""
        X = np.asarray(X, dtype=np.float64)
        lm = np.log(np.asarray(mjj, dtype=np.float64))
        n_slices = int(min(self.n_slices, len(X) // MIN_PER_SLICE))
        if n_slices < 2:
            raise AnomalyHuntError(
                f"quantile decorrelation needs {2 * MIN_PER_SLICE} sideband events, got {len(X)}")
        self.marginal = np.maximum.accumulate(np.quantile(X, _PROBS, axis=0), axis=0)
        Z = self._normal_score(X)
        parts = np.array_split(np.argsort(lm, kind="stable"), n_slices)
        self.centres = np.array([np.median(lm[p]) for p in parts])
        table = np.stack([np.quantile(Z[p], _PROBS, axis=0) for p in parts])  # (S, P, F)
        self.table = np.maximum.accumulate(table, axis=1)  # a quantile function never decreases
        return self

    def transform(self, X: np.ndarray, mjj: np.ndarray, n_bins: int = 200) -> np.ndarray:
        if self.table is None:
            raise RuntimeError("ConditionalQuantile: call fit() first")
        Z = self._normal_score(np.asarray(X, dtype=np.float64))
        lm = np.log(np.asarray(mjj, dtype=np.float64))
        out = np.empty_like(Z)
        g, c = _GAUSS, self.centres
        # events grouped in fine ln mjj bins share one interpolated quantile function
        edges = np.linspace(lm.min(), lm.max() + 1e-12, n_bins + 1)
        which = np.clip(np.searchsorted(edges, lm, side="right") - 1, 0, n_bins - 1)
        for b in np.unique(which):
            rows = which == b
            x0 = 0.5 * (edges[b] + edges[b + 1])
            k = int(np.clip(np.searchsorted(c, x0) - 1, 0, c.size - 2))
            t = float(np.clip((x0 - c[k]) / (c[k + 1] - c[k]), 0.0, 1.0))  # held beyond the ends
            table = (1 - t) * self.table[k] + t * self.table[k + 1]
            for j in range(Z.shape[1]):
                zj, q = Z[rows, j], table[:, j]
                v = np.interp(zj, q, g)
                # beyond the tabulated tails: the offset from the last quantile is kept
                v = np.where(zj > q[-1], g[-1] + (zj - q[-1]), v)
                out[rows, j] = np.where(zj < q[0], g[0] + (zj - q[0]), v)
        return out.astype(np.float32)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": "quantile", "n_slices": self.n_slices, "marginal": self.marginal.tolist(),
                "centres": self.centres.tolist(), "table": self.table.tolist()}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ConditionalQuantile:
        obj = cls(n_slices=d["n_slices"])
        obj.marginal = np.asarray(d["marginal"], dtype=np.float64)
        obj.centres = np.asarray(d["centres"], dtype=np.float64)
        obj.table = np.asarray(d["table"], dtype=np.float64)
        return obj


def decorrelator_from_dict(d: dict[str, Any]) -> LocationScale | ConditionalQuantile:
    return ConditionalQuantile.from_dict(d) if d.get("kind") == "quantile" else LocationScale.from_dict(d)
