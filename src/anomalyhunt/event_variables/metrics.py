"""How much the learned variable knows: correlations with the known variable, and I(V; m_A).

The learned V is defined up to a monotonic map (the classifier absorbs any relabelling), so its
agreement with the known variable is measured by the rank (Spearman) correlation, and by the
Pearson correlation for a look at linearity; the sign of V is arbitrary, so both are reported as
absolute values. The information is compared with one estimator for both variables: a plug-in
estimate on quantile bins (equal-population bins of each variable, so it is invariant under
monotonic maps as I itself is), less the bias ``(B - 1)^2 / 2N`` it shows for independent ones.
"""

from __future__ import annotations

import numpy as np
from scipy import stats


def quantile_bins(x: np.ndarray, bins: int) -> np.ndarray:
    """Bin index 0..bins-1 of each value, bins of equal population (ties broken by order)."""
    ranks = np.argsort(np.argsort(x, kind="stable"), kind="stable")
    return (ranks * int(bins) // len(x)).astype(np.int64)


def binned_mutual_information(a: np.ndarray, b: np.ndarray, bins: int) -> float:
    """Plug-in I(a; b) in nats on ``bins`` x ``bins`` quantile bins, bias-corrected.

    Parameters
    ----------
    a, b : arrays (n,)
        Paired samples.
    bins : int
        Quantile bins per variable; the estimate cannot exceed log(bins).
    """
    ia, ib = quantile_bins(a, bins), quantile_bins(b, bins)
    counts = np.bincount(ia * bins + ib, minlength=bins * bins).reshape(bins, bins)
    p = counts / counts.sum()
    pa, pb = p.sum(axis=1, keepdims=True), p.sum(axis=0, keepdims=True)
    nz = p > 0
    plug_in = float(np.sum(p[nz] * np.log(p[nz] / (pa @ pb)[nz])))
    return plug_in - (bins - 1) ** 2 / (2.0 * len(a))


def correlations(v: np.ndarray, known: np.ndarray) -> dict[str, float]:
    """|Spearman| and |Pearson| correlation of the learned and the known variable."""
    return {
        "spearman_with_known": float(abs(stats.spearmanr(v, known).statistic)),
        "pearson_with_known": float(abs(np.corrcoef(v, known)[0, 1])),
    }


def oriented(v: np.ndarray, mass: np.ndarray) -> np.ndarray:
    """V with its sign chosen to rise with the mass (for figures and Pearson's sign)."""
    return v if np.corrcoef(v, mass)[0, 1] >= 0 else -v
