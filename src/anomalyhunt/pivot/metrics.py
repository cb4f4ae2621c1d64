"""How independent of the nuisance, and how good, a classifier is (the paper's figures in numbers).

Independence: the Kolmogorov-Smirnov distance between ``f``'s output distributions at two
nuisance values (0 for a pivot; the paper's figure 2 shows these distributions at
``Z = -1, 0, +1``), and the binned mutual information ``I(f; z)`` (the search's own estimate,
:func:`anomalyhunt.scores.penalties.mutual_information`). Power: the ROC area and the
background rejection at a fixed signal efficiency, computed as the search's evaluation stage does
(:mod:`anomalyhunt.evaluate`). The cost of a nuisance to an analysis: the signal efficiency of one
fixed cut on ``f`` at ``z = -1, 0, +1``, whose spread is the systematic uncertainty the pivot
removes.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from scipy import stats

from anomalyhunt import evaluate
from anomalyhunt.scores.penalties import mutual_information

__all__ = ["cut_at_efficiency", "ks_distance", "mutual_information", "summarise"]


def ks_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Two-sample Kolmogorov-Smirnov statistic: the largest gap between the two CDFs (0 to 1)."""
    return float(stats.ks_2samp(np.asarray(a), np.asarray(b)).statistic)


def cut_at_efficiency(signal_scores: np.ndarray, efficiency: float) -> float:
    """The threshold on ``f`` that keeps the fraction ``efficiency`` of these signal events."""
    return float(np.quantile(np.asarray(signal_scores), 1.0 - float(efficiency)))


def summarise(
    test_y: np.ndarray,
    test_z: np.ndarray,
    test_scores: np.ndarray,
    conditional: Mapping[float, tuple[np.ndarray, np.ndarray]],
    *,
    efficiency: float,
    bins: int,
) -> dict[str, float]:
    """Every number of one classifier.

    Parameters
    ----------
    test_y, test_z, test_scores : arrays
        Class, nuisance and ``f``'s output of the test events (``z`` drawn from its prior).
    conditional : mapping z -> (y, scores)
        Class and ``f``'s output of events generated at fixed nuisance values; needs -1, 0 and +1.
    efficiency : float
        Signal efficiency (at ``z = 0``) of the working point.
    bins : int
        Bins of the mutual information.
    """
    sig = {z: s[y > 0.5] for z, (y, s) in conditional.items()}
    cut = cut_at_efficiency(sig[0.0], efficiency)
    eff = {z: float(np.mean(s >= cut)) for z, s in sig.items()}
    y0, s0 = conditional[0.0]
    bkg_eff = float(np.mean(s0[y0 < 0.5] >= cut))
    sig_test = test_y > 0.5
    return {
        "auc": evaluate.auc(test_y, test_scores),
        "background_rejection": 1.0 / bkg_eff if bkg_eff > 0 else float("inf"),
        "ks_signal_z_minus1_vs_plus1": ks_distance(sig[-1.0], sig[1.0]),
        "ks_all_z_minus1_vs_plus1": ks_distance(conditional[-1.0][1], conditional[1.0][1]),
        "mutual_information_f_z_nats": mutual_information(test_scores, test_z, bins),
        "mutual_information_f_z_signal_nats": mutual_information(
            test_scores[sig_test], test_z[sig_test], bins
        ),
        "signal_efficiency_z_minus1": eff[-1.0],
        "signal_efficiency_z_0": eff[0.0],
        "signal_efficiency_z_plus1": eff[1.0],
        "signal_efficiency_relative_spread": (eff[1.0] - eff[-1.0]) / (2.0 * eff[0.0]),
    }
