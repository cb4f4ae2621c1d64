"""Spurious-signal test: how much signal a background-function mismatch fakes in a window.

A smooth background ("truth": e.g. the chosen sideband fit's expectation, or a more flexible
function) is fitted over the whole window with a background function from the family plus a
Gaussian signal at the SR centre (width = resolution x centre, free yield, which may go negative).
Any fitted yield is spurious: it comes only from the shape mismatch. It is quoted relative to the
statistical uncertainty of the yield, on the Asimov dataset (the truth itself; no fluctuations) and
optionally as the mean over Poisson pseudo-datasets. |S_spur| / sigma_S > 0.5 is flagged: the
function then biases the signal by more than half its statistical error and needs a systematic
(or a more flexible function).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy import stats

from anomalyhunt.errors import AnomalyHuntError
from anomalyhunt.stats.fit import fit_function
from anomalyhunt.stats.functions import bin_masks, get_function, json_clean

log = logging.getLogger(__name__)

#: |S_spur| / sigma_S above this flags the function.
DEFAULT_THRESHOLD = 0.5


def signal_template(edges: np.ndarray, centre: float, resolution: float) -> np.ndarray:
    """Fraction of a Gaussian (mean ``centre``, sigma = resolution x centre) in every bin."""
    if not (resolution > 0 and centre > 0):
        raise AnomalyHuntError("signal template: centre and resolution must be positive")
    return np.diff(stats.norm.cdf(np.asarray(edges, dtype=float), centre, resolution * centre))


def truth_counts(
    name: str, params: Sequence[float], edges: np.ndarray, total: float | None = None
) -> np.ndarray:
    """Bin-integrated counts of family member ``name`` (rescaled to ``total`` if given)."""
    mean = get_function(name).expected(np.asarray(edges, dtype=float), params)
    return mean * (total / mean.sum()) if total is not None else mean


def spurious_signal(
    edges: np.ndarray,
    truth: np.ndarray,
    sr: tuple[float, float],
    function: str = "dijet4",
    resolution: float = 0.05,
    n_toys: int = 0,
    seed: int = 0,
    threshold: float = DEFAULT_THRESHOLD,
    max_free: int | None = None,
) -> dict[str, Any]:
    """Fit ``function`` + Gaussian signal at the SR centre to background-only pseudo-data.

    ``truth`` is the expected background per bin over ``edges`` (the whole window is fitted).
    Returns a JSON-able dict: Asimov yield, its error and their ratio; with ``n_toys`` > 0 the mean
    and spread of the ratio over Poisson pseudo-datasets. ``ratio`` (toy mean if toys were run,
    else Asimov) decides ``flag`` = |ratio| > ``threshold``. A failed fit gives ratio None and
    flag None, never an exception. ``max_free`` fits the function with at most that many free
    parameters, as the nominal fit had them (a step-down or a sparse spectrum).
    """
    edges = np.asarray(edges, dtype=float)
    truth = np.asarray(truth, dtype=float)
    if truth.shape != (edges.size - 1,) or not np.all(np.isfinite(truth)) or np.any(truth < 0):
        raise AnomalyHuntError("spurious_signal: truth must be finite, >= 0, one value per bin")
    if not (edges[0] < sr[0] < sr[1] < edges[-1]):
        raise AnomalyHuntError("spurious_signal: the SR must lie inside the binned range")
    get_function(function)
    centre = 0.5 * (sr[0] + sr[1])
    template = signal_template(edges, centre, resolution)
    fit_mask = np.ones(edges.size - 1, dtype=bool)

    asimov = fit_function(function, edges, truth, fit_mask, template=template, max_free=max_free)
    out: dict[str, Any] = {
        "function": function,
        "centre": centre,
        "width": resolution * centre,
        "threshold": float(threshold),
        "max_free": max_free,
        "asimov": {
            "valid": asimov.valid,
            "message": asimov.message,
            "signal": json_clean(asimov.signal),
            "sigma_signal": json_clean(asimov.sigma_signal),
            "ratio": json_clean(asimov.signal / asimov.sigma_signal) if asimov.valid else None,
            "chi2": json_clean(asimov.chi2),
            "ndf": asimov.ndf,
        },
        "toys": None,
    }
    ratio = out["asimov"]["ratio"]
    if n_toys > 0:
        rng = np.random.default_rng(seed)
        ratios, yields = [], []
        for counts in rng.poisson(truth, size=(n_toys, truth.size)).astype(float):
            fit = fit_function(
                function, edges, counts, fit_mask, template=template, max_free=max_free
            )
            if fit.valid and fit.sigma_signal and fit.sigma_signal > 0:
                ratios.append(fit.signal / fit.sigma_signal)
                yields.append(fit.signal)
        r = np.asarray(ratios)
        out["toys"] = {
            "n": int(n_toys),
            "n_valid": int(r.size),
            "mean_ratio": json_clean(r.mean()) if r.size else None,
            # error of the mean: whether a toy-based flag is meaningful
            "mean_ratio_error": json_clean(r.std(ddof=1) / math.sqrt(r.size))
            if r.size > 1
            else None,
            "std_ratio": json_clean(r.std(ddof=1)) if r.size > 1 else None,
            "mean_signal": json_clean(np.mean(yields)) if yields else None,
        }
        ratio = out["toys"]["mean_ratio"]
    out["source"] = "toys" if n_toys > 0 else "asimov"
    out["ratio"] = ratio
    out["flag"] = None if ratio is None else bool(abs(ratio) > threshold)
    return out


def truth_shape(
    mjj: np.ndarray, edges: np.ndarray, sr: tuple[float, float], truth_function: str
) -> tuple[np.ndarray, str] | None:
    """Smooth background truth of a window: ``truth_function`` fitted to the uncut sidebands.

    The uncut spectrum has the most events, so its fit is the best-known smooth shape. A truth
    function that fails (dijet5 on a steep, sparse high-mass spectrum) falls back to the most
    flexible nested function that fits; the returned name says which. None when all fail (the
    test is then reported as not run).
    """
    from anomalyhunt.stats import select

    counts, _ = np.histogram(np.asarray(mjj), bins=edges)
    _, fit_mask = bin_masks(edges, *sr)
    fit = select.fit_with_fallback(truth_function, edges, counts.astype(float), fit_mask)
    if fit is None:
        return None
    if fit.function != truth_function:
        log.info(
            "spurious-signal truth %s failed in SR %s; using %s", truth_function, sr, fit.function
        )
    return fit.expected, fit.function


def check_cut(
    edges: np.ndarray,
    counts: np.ndarray,
    window: Any,
    truth: tuple[np.ndarray, str],
    function: str,
    opts: Any,
    n_free: int | None = None,
) -> dict[str, Any]:
    """Spurious-signal test of ``function`` at one cut's statistics (truth scaled to its sidebands).

    ``window`` needs ``sr``, ``opts`` ``resolution`` and ``spurious_threshold`` (a
    :class:`~anomalyhunt.bumphunt.HuntOptions`); ``n_free`` is the nominal fit's free parameters,
    so the test judges the model actually used.
    """
    truth_counts_, truth_function = truth
    _, fit_mask = bin_masks(edges, *window.sr)
    norm = truth_counts_[fit_mask].sum()
    if not norm > 0 or counts[fit_mask].sum() <= 0:
        return {"flag": None, "ratio": None, "message": "no sideband events"}
    scaled = truth_counts_ * counts[fit_mask].sum() / norm
    res = spurious_signal(
        edges,
        scaled,
        window.sr,
        function=function,
        resolution=opts.resolution,
        threshold=opts.spurious_threshold,
        max_free=n_free,
    )
    res["truth_function"] = truth_function
    return res
