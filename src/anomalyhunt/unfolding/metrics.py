"""How an unfolding is judged: per-bin ratios to the truth, the triangular discriminator, and the
calibration of per-event posteriors.

* Ratio (arXiv:1912.00477): the unfolded histogram over the truth histogram of the same events,
  per bin; summarised by its largest deviation from 1 in the bulk (bins holding at least
  ``BULK_FRACTION`` of the truth) and by chi2/ndf with the Poisson errors of both histograms.
* Triangular discriminator (the common metric of the three methods, as in OmniFold studies):
  Delta(p, q) = 1/2 sum_i (p_i - q_i)^2 / (p_i + q_i) of unit-normalised histograms; 0 for equal
  shapes, 1 for disjoint ones. Quoted times 1000.
* Calibration (arXiv:2006.06685): for each quantile level tau, the fraction of events whose truth
  lies below the tau-quantile of its posterior; a calibrated posterior gives tau. Computed from
  the rank of the truth among the posterior samples (its probability integral transform).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from anomalyhunt.unfolding.toy import OBSERVABLES, wrap_phi

#: A bin counts as bulk when it holds at least this fraction of the truth.
BULK_FRACTION = 0.01
#: Quantile levels of the calibration curve.
TAUS = np.linspace(0.05, 0.95, 19)


def binning(truth: np.ndarray, bins: int) -> list[np.ndarray]:
    """Bin edges per observable: ``bins`` equal bins over the truth's 0.5-99.5% range."""
    edges = []
    for i, name in enumerate(OBSERVABLES):
        if name.startswith("phi"):
            lo, hi = -np.pi, np.pi
        else:
            lo, hi = np.percentile(truth[:, i], [0.5, 99.5])
        edges.append(np.linspace(lo, hi, bins + 1))
    return edges


def histogram(x: np.ndarray, edges: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
    """Fraction of the (weighted) events in each bin (events outside the edges count as lost)."""
    w = np.ones(len(x)) if weights is None else np.asarray(weights, dtype=np.float64)
    counts, _ = np.histogram(x, bins=edges, weights=w)
    return counts / w.sum()


def triangular(p: np.ndarray, q: np.ndarray) -> float:
    """Triangular discriminator of two unit-normalised histograms (0 when equal)."""
    s = p + q
    keep = s > 0
    return float(0.5 * np.sum((p[keep] - q[keep]) ** 2 / s[keep]))


def effective_counts(weights: np.ndarray | None, n: int) -> float:
    """Kish's effective number of events of a weighted sample (n when unweighted)."""
    if weights is None:
        return float(n)
    w = np.asarray(weights, dtype=np.float64)
    return float(w.sum() ** 2 / np.sum(w**2))


def compare(
    unfolded: np.ndarray,
    truth: np.ndarray,
    edges: Sequence[np.ndarray],
    weights: np.ndarray | None = None,
) -> dict[str, dict[str, Any]]:
    """Per observable: ratio per bin, its bulk deviation, chi2/ndf and the triangular discriminator.

    Parameters
    ----------
    unfolded : ndarray, shape (n_u, 15)
        Observables of the unfolded events (weighted with ``weights``, e.g. OmniFold's).
    truth : ndarray, shape (n_t, 15)
        Observables of the true parton events of the same detector events.
    edges : list of ndarray
        From :func:`binning`.
    """
    n_u = effective_counts(weights, len(unfolded))
    out = {}
    for i, name in enumerate(OBSERVABLES):
        p = histogram(unfolded[:, i], edges[i], weights)
        q = histogram(truth[:, i], edges[i])
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = np.where(q > 0, p / q, np.nan)
            var = p / n_u + q / len(truth)
            chi2 = np.where(var > 0, (p - q) ** 2 / var, 0.0)
        bulk = q >= BULK_FRACTION
        out[name] = {
            "ratio": [round(float(r), 4) if np.isfinite(r) else None for r in ratio],
            "max_ratio_deviation_bulk": float(np.nanmax(np.abs(ratio[bulk] - 1.0))),
            "chi2_ndf": float(chi2[var > 0].sum() / max(int((var > 0).sum()), 1)),
            "triangular_x1e3": 1e3 * triangular(p, q),
        }
    return out


def posterior_pit(samples: np.ndarray, truth: np.ndarray, detector: np.ndarray) -> np.ndarray:
    """Probability integral transform of each truth under its posterior, per observable.

    ``samples`` (S, n, 15) posterior observables, ``truth`` and ``detector`` (n, 15). Azimuths
    are compared as differences to the measured azimuth, so a posterior across +-pi is not torn.
    Ties (a posterior that puts mass exactly on the truth) count half.
    """
    samples, truth = samples.copy(), truth.copy()
    for i, name in enumerate(OBSERVABLES):
        if name.startswith("phi"):
            samples[..., i] = wrap_phi(samples[..., i] - detector[:, i])
            truth[:, i] = wrap_phi(truth[:, i] - detector[:, i])
    below = (samples < truth).mean(axis=0)
    equal = (samples == truth).mean(axis=0)
    return below + 0.5 * equal


def calibration(pit: np.ndarray) -> dict[str, Any]:
    """Calibration curve per observable from the PIT values (n, 15) and its largest deviation."""
    curves = {}
    worst = {}
    for i, name in enumerate(OBSERVABLES):
        frac = np.array([np.mean(pit[:, i] < t) for t in TAUS])
        curves[name] = [round(float(f), 4) for f in frac]
        worst[name] = float(np.max(np.abs(frac - TAUS)))
    return {
        "taus": [round(float(t), 3) for t in TAUS],
        "fraction_below": curves,
        "max_deviation": worst,
        "max_deviation_all": max(worst.values()),
    }


def posterior_width(samples: np.ndarray, prior: np.ndarray) -> dict[str, float]:
    """Median per-event posterior spread (16-84% half-width) over the prior's, per observable.

    Small for a sharp posterior; 1 for one that ignores the detector event. Azimuths skipped.
    """
    out = {}
    for i, name in enumerate(OBSERVABLES):
        if name.startswith("phi"):
            continue
        q16, q84 = np.percentile(samples[..., i], [16, 84], axis=0)
        p16, p84 = np.percentile(prior[:, i], [16, 84])
        out[name] = float(np.median(q84 - q16) / (p84 - p16))
    return out


def summary(comparison: Mapping[str, Mapping[str, Any]]) -> dict[str, float]:
    """Mean and worst triangular discriminator and bulk ratio deviation over the observables."""
    tri = [c["triangular_x1e3"] for c in comparison.values()]
    dev = [c["max_ratio_deviation_bulk"] for c in comparison.values()]
    return {
        "mean_triangular_x1e3": float(np.mean(tri)),
        "max_triangular_x1e3": float(np.max(tri)),
        "mean_max_ratio_deviation_bulk": float(np.mean(dev)),
    }


def ranking(per_method: Mapping[str, Mapping[str, Mapping[str, Any]]]) -> dict[str, list[str]]:
    """Per observable, the methods ordered from the smallest triangular discriminator."""
    out = {}
    for name in OBSERVABLES:
        scores = {m: c[name]["triangular_x1e3"] for m, c in per_method.items()}
        out[name] = sorted(scores, key=scores.get)
    return out
