"""How good an unweighted sample is: chi2 per bin against the exact truth, tails and A_FB.

Every comparison is against the toy's exact bin probabilities, so a perfect sample of N events
has chi2 per bin near 1 whatever N; a generator with a systematic deviation D (the chi2
divergence of its shape from the truth) has chi2 = (bins - 1) + N D, growing with N. That gives
the headline number: the *equivalent events* of a generator, (bins - 1) / D, the size of a perfect
sample whose statistical scatter equals the generator's systematic error (in the spirit of
arXiv:2008.06545). Hit-or-miss events are perfect, so theirs is simply how many were kept.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from anomalyhunt.weighted_gan.toy import M_Z, DrellYanToy, WeightedSample, kish_ess

#: Half-width (GeV) of the Z-peak slice; A_FB is measured below, on and above it.
PEAK_HALF_WIDTH = 10.0


def pearson_chi2(counts: np.ndarray, probabilities: np.ndarray, n_events: int) -> float:
    """Sum over bins of (n_i - N p_i)^2 / (N p_i); events outside all bins count in N."""
    expected = n_events * np.asarray(probabilities, dtype=np.float64)
    ok = expected > 0
    return float(np.sum((np.asarray(counts)[ok] - expected[ok]) ** 2 / expected[ok]))


def weighted_chi2(sample: WeightedSample, probabilities: np.ndarray, edges: list) -> float:
    """The weighted sample's own chi2 against the truth, errors sqrt(sum w^2) per bin."""
    x = sample.x[:, : len(edges)]
    s, _ = np.histogramdd(x, bins=edges, weights=sample.w)
    s2, _ = np.histogramdd(x, bins=edges, weights=sample.w**2)
    ok = s2 > 0
    total = sample.w.sum()
    return float(np.sum((s - total * probabilities)[ok] ** 2 / s2[ok]))


def equivalent_events(chi2: float, n_events: int, n_bins: int) -> dict[str, float | bool]:
    """Size of a perfect sample as precise as a generator with this chi2 at ``n_events``.

    The excess over the statistical expectation (bins - 1) is N D; when it is below twice its
    own spread sqrt(2 (bins - 1)) the deviation is not resolved and the value is a lower limit.
    """
    dof = n_bins - 1
    resolution = 2 * np.sqrt(2 * dof)
    excess = chi2 - dof
    lower = bool(excess < resolution)
    return {"events": float(n_events * dof / max(excess, resolution)), "lower_limit": lower}


def asymmetry(x: np.ndarray, lo: float, hi: float) -> dict[str, float]:
    """Forward-backward asymmetry (F - B) / (F + B) of the events with lo <= m < hi, with error."""
    sel = (x[:, 0] >= lo) & (x[:, 0] < hi)
    forward, backward = int(np.sum(x[sel, 1] > 0)), int(np.sum(x[sel, 1] < 0))
    n = forward + backward
    if n == 0:
        return {"afb": float("nan"), "error": float("nan"), "events": 0}
    a = (forward - backward) / n
    # binomial error, kept from vanishing at |A| = 1 with few events
    return {"afb": a, "error": float(np.sqrt(max(1 - a * a, 1 / n) / n)), "events": n}


def mass_slices(toy: DrellYanToy, tail_min: float) -> dict[str, tuple[float, float]]:
    """The mass slices of the A_FB comparison: below, on and above the Z peak, and the tail."""
    return {
        "below_z": (toy.mass_min, M_Z - PEAK_HALF_WIDTH),
        "z_peak": (M_Z - PEAK_HALF_WIDTH, M_Z + PEAK_HALF_WIDTH),
        "above_z": (M_Z + PEAK_HALF_WIDTH, toy.mass_max),
        "tail": (tail_min, toy.mass_max),
    }


def evaluate(
    toy: DrellYanToy,
    sample: WeightedSample,
    kept: np.ndarray,
    generated: np.ndarray,
    *,
    edges: list[np.ndarray],
    tail_min: float,
    rejected: float,
) -> dict[str, Any]:
    """Every number of one toy: the weights, hit-or-miss, and the uwGAN against the truth.

    Parameters
    ----------
    toy : DrellYanToy
        The truth.
    sample : WeightedSample
        All weighted events (those the GAN trained on and its validation events).
    kept : array
        The events hit-or-miss unweighting of ``sample`` kept.
    generated : array
        Events from the trained uwGAN, inside the phase space.
    edges : list of array
        The comparison's bins: mass edges (and cos theta* edges for the 2-D toy).
    tail_min : float
        Masses above this (GeV) are the tail.
    rejected : float
        Fraction of the uwGAN's events that fell outside the phase space and were dropped.
    """
    dim = sample.x.shape[1]
    probs = toy.bin_probabilities(*edges)
    n_bins = int(probs.size)

    def chi2(x: np.ndarray) -> float:
        counts, _ = np.histogramdd(x, bins=edges)
        return pearson_chi2(counts, probs, len(x))

    n_kept, n_gen = len(kept), len(generated)
    chi2_gan = chi2(generated)
    same_size = generated[:n_kept]
    weights = {
        "events": len(sample),
        "mean": float(sample.w.mean()),
        "max": float(sample.w.max()),
        "unweighting_efficiency": float(sample.w.mean() / sample.w.max()),
        "kish_effective_events": kish_ess(sample.w),
        "chi2_per_bin": weighted_chi2(sample, probs, edges) / n_bins,
    }
    hit_or_miss = {
        "events": n_kept,
        "expected_events": float(sample.w.sum() / sample.w.max()),
        "chi2_per_bin": chi2(kept) / n_bins,
    }
    equivalent = equivalent_events(chi2_gan, n_gen, n_bins)
    uwgan = {
        "events": n_gen,
        "chi2_per_bin": chi2_gan / n_bins,
        "chi2_per_bin_at_hit_or_miss_size": chi2(same_size) / n_bins,
        "equivalent_events": equivalent["events"],
        "equivalent_events_is_lower_limit": equivalent["lower_limit"],
        "gain_over_hit_or_miss": equivalent["events"] / max(n_kept, 1),
        "rejected_outside_phase_space": float(rejected),
    }
    truth_tail = float(1 - toy.mass_cdf(np.array(tail_min)))
    kept_tail = int(np.sum(kept[:, 0] > tail_min))
    tail = {
        "mass_min_gev": tail_min,
        "truth_fraction": truth_tail,
        "weighted_events": int(np.sum(sample.x[:, 0] > tail_min)),
        "hit_or_miss_events": kept_tail,
        "hit_or_miss_over_truth": kept_tail / max(n_kept, 1) / truth_tail,
        "hit_or_miss_over_truth_error": float(np.sqrt(max(kept_tail, 1)))
        / max(n_kept, 1)
        / truth_tail,
        "uwgan_events": int(np.sum(generated[:, 0] > tail_min)),
        "uwgan_over_truth": float(np.mean(generated[:, 0] > tail_min)) / truth_tail,
    }
    out: dict[str, Any] = {
        "bins": n_bins,
        "weights": weights,
        "hit_or_miss": hit_or_miss,
        "uwgan": uwgan,
        "tail": tail,
    }
    if dim == 2:
        afb = {}
        for name, (lo, hi) in mass_slices(toy, tail_min).items():
            p = toy.bin_probabilities(np.array([lo, hi]), np.array([-1.0, 0.0, 1.0]))[0]
            afb[name] = {
                "mass_range_gev": [lo, hi],
                "truth": float((p[1] - p[0]) / (p[1] + p[0])),
                "hit_or_miss": asymmetry(kept, lo, hi),
                "uwgan": asymmetry(generated, lo, hi),
            }
        out["afb"] = afb
    return out
