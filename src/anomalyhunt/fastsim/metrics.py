"""How close a fast simulation comes to the toy detector, in the numbers a physicist checks.

All compare the fast simulation's response with the true detector's for the *same* generator-level
muons, so any difference is the simulation's, not the kinematics':

* :func:`binned_distances`: per response feature and generator-level pT bin, the two-sample
  Kolmogorov-Smirnov statistic and the 1-D Wasserstein distance in units of the true spread;
* :func:`correlation_distance`: Frobenius norm of the difference of the response's correlation
  matrices (what per-feature distances cannot see);
* :func:`resolution`: the pT resolution (core width, tails, charge-dependent bias) against pT;
* :func:`microseconds_per_muon`: generation speed.

Two independent samples of the toy detector give the same numbers as a statistical floor.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np
from scipy.stats import ks_2samp, wasserstein_distance

from anomalyhunt.fastsim.toy import RESPONSE


def bin_index(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Bin of each value (-1 outside the edges)."""
    idx = np.searchsorted(edges, values, side="right") - 1
    idx[values == edges[-1]] = len(edges) - 2
    return np.where((idx >= 0) & (idx < len(edges) - 1), idx, -1)


def binned_distances(
    pt: np.ndarray, r_true: np.ndarray, r_gen: np.ndarray, edges: np.ndarray
) -> dict[str, Any]:
    """KS statistic and W1 / sigma_true per response feature and pT bin.

    Parameters
    ----------
    pt : array
        Generator-level pT of the muons (GeV).
    r_true, r_gen : array (n, 8)
        The true and the simulated response of the same muons.
    edges : array
        pT bin edges (GeV).

    Returns
    -------
    dict
        ``ks`` and ``w1_over_sigma``: {feature: [one per bin]}; ``ks_mean``, ``ks_max``,
        ``w1_over_sigma_mean`` over all features and bins; ``ks_by_pt_bin`` (mean over features).
    """
    idx = bin_index(pt, edges)
    ks = {f: [] for f in RESPONSE}
    w1 = {f: [] for f in RESPONSE}
    for b in range(len(edges) - 1):
        sel = idx == b
        for j, f in enumerate(RESPONSE):
            a, g = r_true[sel, j], r_gen[sel, j]
            if len(a) < 2 or len(g) < 2:
                ks[f].append(float("nan"))
                w1[f].append(float("nan"))
                continue
            ks[f].append(float(ks_2samp(a, g, method="asymp").statistic))
            w1[f].append(float(wasserstein_distance(a, g) / max(a.std(), 1e-12)))
    ks_all = np.array(list(ks.values()))
    w1_all = np.array(list(w1.values()))
    return {
        "ks": ks,
        "w1_over_sigma": w1,
        "ks_mean": float(np.nanmean(ks_all)),
        "ks_max": float(np.nanmax(ks_all)),
        "w1_over_sigma_mean": float(np.nanmean(w1_all)),
        "ks_by_pt_bin": [float(v) for v in np.nanmean(ks_all, axis=0)],
        "w1_over_sigma_by_feature": {f: float(np.nanmean(v)) for f, v in w1.items()},
    }


def correlation_distance(r_true: np.ndarray, r_gen: np.ndarray) -> float:
    """Frobenius norm of corr(r_gen) - corr(r_true) (Pearson, all muons pooled)."""
    return float(np.linalg.norm(np.corrcoef(r_gen.T) - np.corrcoef(r_true.T)))


def relative_pt_residual(theta: np.ndarray, x: np.ndarray) -> np.ndarray:
    """(pT_reco - pT) / pT per muon."""
    return x[:, 0] / theta[:, 0] - 1.0


def resolution(theta: np.ndarray, x: np.ndarray, edges: np.ndarray) -> dict[str, list[float]]:
    """pT resolution against generator-level pT, in percent.

    Per bin: ``core`` half the 16-84% width of (pT_reco - pT) / pT (a Gaussian's sigma, blind to
    the tails); ``tails`` the fraction (in %) further than 3 core widths from the median (0.27%
    for a Gaussian); ``bias_mu_plus`` and ``bias_mu_minus`` the median of (pT_reco - pT) / pT for
    each charge (a curvature bias moves them apart).
    """
    d = relative_pt_residual(theta, x)
    idx = bin_index(theta[:, 0], edges)
    out: dict[str, list[float]] = {"core": [], "tails": [], "bias_mu_plus": [], "bias_mu_minus": []}
    for b in range(len(edges) - 1):
        sel = idx == b
        v = d[sel]
        if len(v) < 10:
            for key in out:
                out[key].append(float("nan"))
            continue
        lo, med, hi = np.percentile(v, [15.865, 50, 84.135])
        core = (hi - lo) / 2
        out["core"].append(100 * float(core))
        out["tails"].append(100 * float(np.mean(np.abs(v - med) > 3 * core)))
        for key, q in (("bias_mu_plus", 1.0), ("bias_mu_minus", -1.0)):
            vq = d[sel & (theta[:, 3] == q)]
            out[key].append(100 * float(np.median(vq)) if len(vq) else float("nan"))
    return out


def resolution_deviation(model: dict[str, list[float]], truth: dict[str, list[float]]) -> float:
    """Mean |core_model / core_true - 1| over the pT bins (0 for a perfect simulation)."""
    m, t = np.asarray(model["core"]), np.asarray(truth["core"])
    return float(np.nanmean(np.abs(m / t - 1.0)))


def binned_mean(values: np.ndarray, key: np.ndarray, edges: np.ndarray) -> list[float]:
    """Mean of ``values`` in bins of ``key`` (an efficiency, with 0/1 or probability values)."""
    idx = bin_index(key, edges)
    return [
        float(np.mean(values[idx == b])) if np.any(idx == b) else float("nan")
        for b in range(len(edges) - 1)
    ]


def microseconds_per_muon(fn: Callable[[np.ndarray], Any], theta: np.ndarray) -> float:
    """Wall time per muon of ``fn(theta)``, best of three after a warm-up call."""
    fn(theta[: min(len(theta), 256)])
    best = np.inf
    for _ in range(3):
        t0 = time.perf_counter()
        fn(theta)
        best = min(best, time.perf_counter() - t0)
    return float(1e6 * best / max(len(theta), 1))
